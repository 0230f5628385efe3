//! A real nginx in front of both example servers, the deployment the proxy-certificate support
//! is for: nginx terminates TLS, verifies the client certificate against the CA and forwards it
//! as `ssl-client-cert: $ssl_client_escaped_cert` from 127.0.0.2; the servers trust only
//! 127.0.0.2 (RFC 9440 §2, §4). Needs `nginx` on PATH (`apt-get install nginx-light`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;
use tower_pop::test_util::TestIssuer;
use tower_pop_test_support::{Identity, free_port, pki};

use crate::mtls::{get, https_client};
use crate::server::{AUDIENCE, ISSUER, SERVERS, Server, now};

/// nginx as a child process in its own directory (removed on drop), stopped by its pid on drop.
pub(crate) struct Nginx {
    child: Child,
    port: u16,
    pub(crate) dir: PathBuf,
}

impl Nginx {
    /// nginx with configuration `conf` in `dir` (which holds its `tmp/`), serving on loopback
    /// `port`: returns once the port accepts connections.
    pub(crate) fn run(dir: PathBuf, conf: &str, port: u16) -> Self {
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-e", "stderr"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx on PATH (apt-get install nginx-light)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                log(&dir)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, dir }
    }

    /// nginx on loopback `port` in a new directory `tower-pop-nginx-<name>-<pid>` (with
    /// `files` written into it), its `http` block holding `http(directory)` after the settings
    /// every test shares (no access log, temporary files in the directory).
    pub(crate) fn run_http(
        name: &str,
        port: u16,
        worker_connections: u32,
        files: &[(&str, &str)],
        http: impl FnOnce(&str) -> String,
    ) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tower-pop-nginx-{name}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        for (file, contents) in files {
            std::fs::write(dir.join(file), contents).unwrap();
        }
        let d = dir.display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections {worker_connections}; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy; fastcgi_temp_path {d}/tmp/fcgi;
  uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
{}
}}
",
            http(&d.to_string())
        );
        Self::run(dir, &conf, port)
    }

    /// nginx's error log so far, for failure messages.
    pub(crate) fn log(&self) -> String {
        log(&self.dir)
    }

    fn start(backend: std::net::SocketAddr) -> Self {
        let pki = pki();
        let port = free_port();
        let server = |d: &str| {
            format!(
                "  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key;
    ssl_client_certificate {d}/ca.pem; ssl_verify_client optional;
    location / {{
      proxy_pass http://{backend};
      proxy_bind 127.0.0.2;
      proxy_set_header ssl-client-cert $ssl_client_escaped_cert;
    }}
  }}"
            )
        };
        let files = [
            ("server.pem", pki.server.cert_pem.as_str()),
            ("server.key", pki.server.key_pem.as_str()),
            ("ca.pem", pki.ca_pem.as_str()),
        ];
        Self::run_http(&backend.port().to_string(), port, 64, &files, server)
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn escaped(identity: &Identity) -> String {
    utf8_percent_encode(&identity.cert_pem, NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
#[ignore = "needs nginx: run bash tests/run.sh"]
async fn behind_a_real_nginx_only_the_proxy_is_believed() {
    for name in SERVERS {
        behind_nginx(name).await;
    }
}

async fn behind_nginx(name: &str) {
    let pki = pki();
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let s = Server::start_with(
        name,
        &[
            "--trusted-proxy",
            "127.0.0.2/32",
            "--client-cert-header",
            "nginx",
            "--public-url",
            "https://api.example.test",
        ],
        issuer,
    )
    .await;
    let nginx = Nginx::start(s.addr);
    let token = s
        .issuer
        .token(now(), json!({"cnf": {"x5t#S256": pki.client_a.x5t()}}));
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let url = nginx.url("/whoami");

    let r = get(&https_client(Some(&pki.client_a)), &url, &auth)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{name}: {r:?} {}", log(&nginx.dir));
    assert_eq!(r.json()["x5t#S256"], pki.client_a.x5t());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = get(&https_client(Some(&pki.client_b)), &url, &auth)
        .await
        .unwrap();
    assert_eq!(r.status, 401, "{name}: {r:?}");
    let r = get(&https_client(None), &url, &auth).await.unwrap();
    assert_eq!(r.status, 401, "{name}: {r:?}");
    // Client B claims A's certificate in the header: nginx overwrites it with B's own.
    let spoof = escaped(&pki.client_a);
    let r = get(
        &https_client(Some(&pki.client_b)),
        &url,
        &[auth[0], ("ssl-client-cert", &spoof)],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401, "{name}: {r:?}");
    // Around nginx, straight to the server from 127.0.0.1 with A's certificate in the header.
    let direct = format!("http://{}/whoami", s.addr);
    let r = get(
        &reqwest::Client::new(),
        &direct,
        &[auth[0], ("ssl-client-cert", &spoof)],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401, "{name}: {r:?}");
}
