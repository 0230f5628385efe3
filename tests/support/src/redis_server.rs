//! A real `redis-server` for tests: started on a free port of 127.0.0.1 with its own temporary
//! directory and no persistence, stopped by its pid on drop. Needs `redis-server` and
//! `redis-cli` on `PATH` (Debian: `apt-get install redis-server`). Every wait is bounded.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A `redis-server` child on a free loopback port, killed (by its pid) on drop.
pub struct RedisServer {
    child: Option<Child>,
    /// The server program: `redis-server` on `PATH`, or another (Valkey's `valkey-server`).
    program: PathBuf,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// Serve TLS only, with `cert.pem`/`key.pem` in `dir` issued by `ca.pem`.
    tls: bool,
}

// Arguments may hold a password (`--requirepass`): Debug shows the port only.
impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Writes a test PKI into a server directory.
type WritePki<'a> = Box<dyn FnOnce(&Path) + 'a>;

static SERVERS: AtomicUsize = AtomicUsize::new(0);

/// A loopback port nothing listens on right now.
///
/// # Panics
/// If no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A loopback port below 55536 that is free, with the port 10000 above it free too (a Redis
/// Cluster node's bus port).
fn cluster_port() -> u16 {
    for _ in 0..1000 {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = listener.local_addr().map(|a| a.port()) else {
            continue;
        };
        drop(listener);
        // Ephemeral ports are often above 55535: shift them down into 20000-45535.
        let candidate = if port > 55_535 { port - 30_000 } else { port };
        if candidate >= 1024
            && TcpListener::bind(("127.0.0.1", candidate)).is_ok()
            && TcpListener::bind(("127.0.0.1", candidate + 10_000)).is_ok()
        {
            return candidate;
        }
    }
    panic!("no free port pair for a cluster node");
}

impl RedisServer {
    /// A plain server with default settings.
    ///
    /// # Panics
    /// If `redis-server` is not on `PATH` or does not start within 10 s.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A plain server with extra `redis-server` arguments (e.g. `--requirepass`).
    ///
    /// # Panics
    /// If `redis-server` is not on `PATH` or does not start within 10 s.
    #[must_use]
    pub fn start_with(extra: &[&str]) -> Self {
        Self::launch(extra, None)
    }

    /// A TLS-only server: `write_pki(dir)` must write `ca.pem`, and `cert.pem`/`key.pem` that
    /// the CA issued for IP 127.0.0.1, into the server's directory.
    #[must_use]
    pub fn start_tls(write_pki: impl FnOnce(&Path)) -> Self {
        Self::launch(&[], Some(Box::new(write_pki)))
    }

    /// The port it listens on (127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its working directory (removed on drop).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A cluster node (with `extra`) run by `program` (`redis-server` or a compatible server
    /// such as `valkey-server`): on a port whose cluster bus port (+10000) is free too.
    #[must_use]
    pub fn start_cluster_node(program: &Path, extra: &[&str]) -> Self {
        Self::launch_on(program, extra, None, cluster_port)
    }

    fn launch(extra: &[&str], write_pki: Option<WritePki<'_>>) -> Self {
        Self::launch_on(Path::new("redis-server"), extra, write_pki, free_port)
    }

    fn launch_on(
        program: &Path,
        extra: &[&str],
        write_pki: Option<WritePki<'_>>,
        pick: fn() -> u16,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tower-pop-redis-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let tls = write_pki.is_some();
        if let Some(write_pki) = write_pki {
            write_pki(&dir);
        }
        let mut server = Self {
            child: None,
            program: program.to_path_buf(),
            port: 0,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls,
        };
        // Another process may take the free port between our probe and redis binding it.
        for _ in 0..5 {
            server.port = pick();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start");
    }

    /// Start on `self.port`; true once it answers `PING` (bounded wait).
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let mut cmd = Command::new(&self.program);
        if self.tls {
            cmd.args([
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(self.dir.join("cert.pem"))
            .arg("--tls-key-file")
            .arg(self.dir.join("key.pem"))
            .arg("--tls-ca-cert-file")
            .arg(self.dir.join("ca.pem"));
        } else {
            cmd.args(["--port", &port]);
        }
        let mut child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} (redis-server: apt-get install redis-server): {e}",
                    self.program.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // exited: port taken, most likely
            }
            if self.cli(&["PING"]).as_deref() == Some("PONG") {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Restart on the same port after [`kill`](Self::kill).
    ///
    /// # Panics
    /// If it does not come back within 10 s.
    pub fn restart(&mut self) {
        assert!(self.spawn(), "redis-server did not restart on its port");
    }

    /// Stop it (SIGKILL to its pid) and wait until the port refuses connections.
    ///
    /// # Panics
    /// If the process cannot be killed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill redis-server"); // SIGKILL to this child's pid
            child.wait().expect("reap redis-server");
        }
        // Wait (bounded) until the port refuses connections.
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop (`SIGSTOP`) or continue (`SIGCONT`) the process: a stopped server reads nothing,
    /// as if cut off from the network, without losing its connections.
    ///
    /// # Panics
    /// If `kill` cannot be run.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "STOP" } else { "CONT" };
            let status = Command::new("kill")
                .args(["-s", signal, &child.id().to_string()])
                .status()
                .expect("kill on PATH");
            assert!(status.success(), "kill -s {signal}");
        }
    }

    /// Its process id while it runs (to read its CPU time).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `redis://127.0.0.1:PORT/0`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `redis-cli` against this server with `input` (commands, one a line) on its standard
    /// input, all on one connection; output trimmed, `None` if it failed.
    #[must_use]
    pub fn pipe(&self, input: &str) -> Option<String> {
        use std::io::Write as _;
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(input.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `redis-cli` against this server, output trimmed; `None` if it failed.
    #[must_use]
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.tls {
            cmd.arg("--tls")
                .arg("--cacert")
                .arg(self.dir.join("ca.pem"));
        }
        if let Some(i) = self.extra.iter().position(|a| a == "--requirepass") {
            cmd.args(["--no-auth-warning", "-a", &self.extra[i + 1]]);
        }
        let out = cmd.args(args).stderr(Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
