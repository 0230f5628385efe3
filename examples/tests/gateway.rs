//! `pop_gateway` over loopback in front of real upstreams: an axum app started here and a Node
//! server (`node -e`), both counting the requests they receive, so a refusal that reached the
//! upstream cannot pass; and in forward-auth mode behind a real nginx running
//! `examples/gateway/nginx-forward-auth.conf`. Needs `node` and `nginx` on PATH.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use http_body_util::BodyExt as _;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;
use tower_pop_test_support::{Identity, free_port, pki};

use crate::nginx::Nginx;
use crate::server::{AUDIENCE, ISSUER, Server, now};
use examples_common::http::{Reply, client, send, send_raw, send_with_body};

// ---------------------------------------------------------------------------------------------
// Upstreams

/// An axum upstream on loopback that counts every request and answers with what it received:
/// `{"method", "uri", "headers": {name: value}, "len", "sha256"}`. `/bytes/N` answers N bytes of
/// [`pattern`]; `/slow` answers after 10 s.
pub(crate) struct Upstream {
    addr: SocketAddr,
    count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    digest(&SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn echo(State(count): State<Arc<AtomicUsize>>, request: Request) -> impl IntoResponse {
    count.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<String> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(", ")));
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return (http::StatusCode::BAD_REQUEST, "body failed").into_response(),
    };
    let answer = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "len": body.len(),
        "sha256": sha256_hex(&body),
    });
    (
        [("x-upstream", "axum"), ("connection", "x-upstream-hop")],
        axum::Json(answer),
    )
        .into_response()
}

impl Upstream {
    pub(crate) async fn start() -> Self {
        let count = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route(
                "/bytes/{n}",
                get(
                    |State(count): State<Arc<AtomicUsize>>, Path(n): Path<usize>| async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        Body::from(pattern(n.min(64 << 20)))
                    },
                ),
            )
            .route(
                "/slow",
                any(|State(count): State<Arc<AtomicUsize>>| async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    "late"
                }),
            )
            .fallback(echo)
            .with_state(Arc::clone(&count));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, count, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// A Node server: `GET /__count` answers how many other requests it got; any other request is
/// counted and answered with `{"method", "url", "version", "headers", "trailers", "len"}`.
struct NodeUpstream {
    addr: SocketAddr,
    _child: tokio::process::Child,
}

/// The Node server's script; its arguments are the module (`http`, or `http2` for HTTP/2 without
/// TLS, prior knowledge: h2c) and the `x-upstream` value it answers with.
const NODE_UPSTREAM: &str = r#"
const [module, tag] = process.argv.slice(1);
let n = 0;
const server = require(module).createServer((q, r) => {
  if (q.url === "/__count") { r.end(String(n)); return; }
  n++;
  let len = 0;
  q.on("data", (c) => { len += c.length; });
  q.on("end", () => {
    r.setHeader("content-type", "application/json");
    r.setHeader("x-upstream", tag);
    r.end(JSON.stringify({ method: q.method, url: q.url, version: q.httpVersion, headers: q.headers, trailers: q.trailers, len }));
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
"#;

impl NodeUpstream {
    /// `module` `http` (HTTP/1.1) or `http2` (h2c), answering with `x-upstream: tag`.
    async fn start(module: &str, tag: &str) -> Self {
        let mut child = tokio::process::Command::new("node")
            .args(["-e", NODE_UPSTREAM, module, tag])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node on PATH (apt-get install nodejs)");
        let stdout = child.stdout.take().unwrap();
        let line = tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("node starts within 10 s")
        .unwrap()
        .expect("a port");
        let port: u16 = line.trim().parse().unwrap();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _child: child,
        }
    }

    async fn count(&self) -> usize {
        send(self.addr, "GET", "/__count", &[])
            .await
            .body
            .parse()
            .unwrap()
    }

    /// [`count`](Self::count) of an h2c server.
    async fn count_h2c(&self) -> usize {
        let client = reqwest::Client::builder()
            .no_proxy()
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let url = format!("http://{}/__count", self.addr);
        let body = client.get(url).send().await.unwrap().text().await.unwrap();
        body.parse().unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

pub(crate) async fn gateway(upstream: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--upstream", upstream];
    args.extend_from_slice(extra);
    Server::start_with(
        "pop_gateway",
        &args,
        Arc::new(TestIssuer::new(ISSUER, AUDIENCE)),
    )
    .await
}

/// A client key and a token bound to it.
fn bound(gw: &Server) -> (ProofSigner, String) {
    let key = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = gw.token(Some(key.thumbprint()));
    (key, token)
}

/// Authorization and DPoP fields for `method path` at `gw`.
fn dpop_fields(
    gw: &Server,
    key: &ProofSigner,
    token: &str,
    method: &str,
    path: &str,
) -> [(String, String); 2] {
    let proof = key.proof(method, &gw.url(path), Some(token), None).unwrap();
    [
        ("Authorization".to_owned(), format!("DPoP {token}")),
        ("DPoP".to_owned(), proof),
    ]
}

fn refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[track_caller]
fn assert_challenge(r: &Reply, status: u16, code: Option<&str>) {
    assert_eq!(r.status, status, "{r:?}");
    let challenge = r.header("www-authenticate").expect("a challenge");
    match code {
        Some(code) => assert!(
            challenge.contains(&format!("error=\"{code}\"")),
            "{challenge}"
        ),
        None => {
            assert!(challenge.starts_with(r#"DPoP realm=""#), "{challenge}");
            assert!(
                challenge.ends_with(r#", algs="ES256 PS256 EdDSA Ed25519""#),
                "{challenge}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Proxy mode

#[tokio::test]
async fn a_dpop_request_reaches_the_upstream_with_the_identity_and_without_the_proof() {
    let up = Upstream::start().await;
    let gw = gateway(&up.url(), &[]).await;
    let (key, token) = bound(&gw);
    let mut fields = dpop_fields(&gw, &key, &token, "POST", "/api/items").to_vec();
    for (n, v) in [
        ("X-Pop-Sub", "admin"),
        ("X-Pop-Role", "root"),
        ("Client-Cert", ":AAAA:"),
        ("ssl-client-cert", "forged"),
        ("Connection", "x-secret"),
        ("X-Secret", "hop"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("Forwarded", "for=203.0.113.7"),
        ("Accept", "application/json"),
    ] {
        fields.push((n.to_owned(), v.to_owned()));
    }
    let r = send_with_body(
        gw.addr,
        "POST",
        "/api/items?x=1&y=%20",
        &refs(&fields),
        "hello",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("x-upstream"),
        Some("axum"),
        "upstream fields reach the client"
    );
    assert!(r.header("x-upstream-hop").is_none());
    let seen = r.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/api/items?x=1&y=%20");
    assert_eq!(seen["sha256"], sha256_hex(b"hello"));
    let h = &seen["headers"];
    assert_eq!(h["x-pop-sub"], "alice", "{h}");
    assert_eq!(h["x-pop-binding"], "dpop");
    assert_eq!(h["x-pop-jkt"], key.thumbprint());
    assert_eq!(h["x-pop-client-id"], "c1");
    assert_eq!(h["x-pop-scope"], "read");
    assert_eq!(h["accept"], "application/json");
    for gone in [
        "dpop",
        "authorization",
        "x-pop-role",
        "client-cert",
        "ssl-client-cert",
        "x-secret",
        "x-pop-x5t-s256",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
    // The forged forwarding fields are replaced: the client is 127.0.0.1, not 203.0.113.7.
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        h["forwarded"],
        format!("for=127.0.0.1;host=\"{}\";proto=http", gw.addr)
    );
    assert_eq!(h["host"], up.addr.to_string());
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn refused_requests_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let gw = gateway(&up.url(), &["--scope", "read"]).await;
    let (key, token) = bound(&gw);

    let r = send(gw.addr, "GET", "/x", &[]).await;
    assert_challenge(&r, 401, None);
    // A stolen token used with the thief's own key.
    let thief = ProofSigner::generate(Algorithm::ES256).unwrap();
    let r = send(
        gw.addr,
        "GET",
        "/x",
        &refs(&dpop_fields(&gw, &thief, &token, "GET", "/x")),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    // The token alone, as a bearer token.
    let bearer = format!("Bearer {token}");
    let r = send(gw.addr, "GET", "/x", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 401, "{r:?}");
    // A proof for another path.
    let r = send(
        gw.addr,
        "GET",
        "/x",
        &refs(&dpop_fields(&gw, &key, &token, "GET", "/y")),
    )
    .await;
    assert_challenge(&r, 401, Some("invalid_dpop_proof"));
    // Without the required scope.
    let unscoped = gw.issuer.token(
        now(),
        json!({"cnf": {"jkt": key.thumbprint()}, "scope": "other"}),
    );
    let r = send(
        gw.addr,
        "GET",
        "/x",
        &refs(&dpop_fields(&gw, &key, &unscoped, "GET", "/x")),
    )
    .await;
    assert_challenge(&r, 403, Some("insufficient_scope"));
    // A valid token whose `sub` cannot be a field value: refused, never mangled or dropped.
    for sub in [
        json!("al\u{e9}ce"),
        json!("alice\r\nX-Pop-Scope: admin"),
        json!(42),
    ] {
        let odd = gw
            .issuer
            .token(now(), json!({"cnf": {"jkt": key.thumbprint()}, "sub": sub}));
        let r = send(
            gw.addr,
            "GET",
            "/x",
            &refs(&dpop_fields(&gw, &key, &odd, "GET", "/x")),
        )
        .await;
        assert_challenge(&r, 401, Some("invalid_token"));
    }
    assert_eq!(up.count(), 0);

    // Accepted once, then the same proof again: a replay.
    let fields = dpop_fields(&gw, &key, &token, "GET", "/x");
    assert_eq!(send(gw.addr, "GET", "/x", &refs(&fields)).await.status, 200);
    let r = send(gw.addr, "GET", "/x", &refs(&fields)).await;
    assert_challenge(&r, 401, Some("invalid_dpop_proof"));
    assert_eq!(up.count(), 1);
}

#[tokio::test]
#[ignore = "needs node: run bash tests/run.sh"]
async fn a_node_upstream_gets_the_identity_and_authorization_only_by_flag() {
    let node = NodeUpstream::start("http", "node").await;
    let url = format!("http://{}", node.addr);
    let gw = gateway(&url, &["--forward-authorization"]).await;
    let (key, token) = bound(&gw);
    let mut fields = dpop_fields(&gw, &key, &token, "GET", "/hello").to_vec();
    fields.push(("X-Pop-Sub".to_owned(), "admin".to_owned()));
    let r = send(gw.addr, "GET", "/hello", &refs(&fields)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-upstream"), Some("node"));
    let h = &r.json()["headers"];
    // Node joins repeated fields with ", ": a forged one that survived would show here.
    assert_eq!(h["x-pop-sub"], "alice", "{h}");
    assert_eq!(h["x-pop-binding"], "dpop");
    assert_eq!(h["authorization"], format!("DPoP {token}"));
    assert!(h.get("dpop").is_none(), "{h}");
    // Replayed, stolen: refused before Node.
    let r = send(gw.addr, "GET", "/hello", &refs(&fields)).await;
    assert_challenge(&r, 401, Some("invalid_dpop_proof"));
    let thief = ProofSigner::generate(Algorithm::ES256).unwrap();
    let r = send(
        gw.addr,
        "GET",
        "/hello",
        &refs(&dpop_fields(&gw, &thief, &token, "GET", "/hello")),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(node.count().await, 1);

    // Without the flag, Authorization is removed.
    let gw = gateway(&url, &[]).await;
    let (key, token) = bound(&gw);
    let r = send(
        gw.addr,
        "GET",
        "/hello",
        &refs(&dpop_fields(&gw, &key, &token, "GET", "/hello")),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let h = &r.json()["headers"];
    assert!(h.get("authorization").is_none(), "{h}");
    assert_eq!(h["x-pop-sub"], "alice");
}

#[tokio::test]
async fn bodies_stream_both_ways_and_are_bounded() {
    const BIG: usize = 8 << 20;
    let up = Upstream::start().await;
    let gw = gateway(&up.url(), &["--max-body-bytes", &(9u64 << 20).to_string()]).await;
    let (key, token) = bound(&gw);

    let upload = pattern(BIG);
    let mut request = client().post(gw.url("/upload")).body(upload.clone());
    for (n, v) in dpop_fields(&gw, &key, &token, "POST", "/upload") {
        request = request.header(n, v);
    }
    let r = Reply::read(request.send().await.unwrap()).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["len"], BIG);
    assert_eq!(r.json()["sha256"], sha256_hex(&upload));

    let path = format!("/bytes/{BIG}");
    let mut request = client().get(gw.url(&path));
    for (n, v) in dpop_fields(&gw, &key, &token, "GET", &path) {
        request = request.header(n, v);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), BIG);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(BIG)));
    assert_eq!(up.count(), 2);

    // Over the limit, declared: 413 before the upstream is contacted.
    let small = gateway(&up.url(), &["--max-body-bytes", "1000"]).await;
    let (key, token) = bound(&small);
    let fields = dpop_fields(&small, &key, &token, "POST", "/upload");
    let r = send_with_body(
        small.addr,
        "POST",
        "/upload",
        &refs(&fields),
        &"x".repeat(1001),
    )
    .await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body, "request body too large\n");
    assert_eq!(up.count(), 2);
    // Over the limit, chunked (no length to look at): cut off while streaming, 413.
    let fields = dpop_fields(&small, &key, &token, "POST", "/upload");
    let mut raw = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nDPoP: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        small.addr, fields[0].1, fields[1].1
    );
    for _ in 0..3 {
        raw.push_str(&format!("258\r\n{}\r\n", "y".repeat(600)));
    }
    raw.push_str("0\r\n\r\n");
    let r = send_raw(small.addr, raw.as_bytes()).await;
    assert_eq!(r.status, 413, "{r:?}");
    // Within the limit, chunked: forwarded whole.
    let fields = dpop_fields(&small, &key, &token, "POST", "/upload");
    let raw = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nDPoP: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{}\r\n0\r\n\r\n",
        small.addr,
        fields[0].1,
        fields[1].1,
        "z".repeat(600)
    );
    let r = send_raw(small.addr, raw.as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.contains(&sha256_hex("z".repeat(600).as_bytes())),
        "{r:?}"
    );
}

#[tokio::test]
async fn an_upstream_that_is_down_is_502_and_a_slow_one_504() {
    let gw = gateway(&format!("http://127.0.0.1:{}", free_port()), &[]).await;
    let (key, token) = bound(&gw);
    let r = send(
        gw.addr,
        "GET",
        "/x",
        &refs(&dpop_fields(&gw, &key, &token, "GET", "/x")),
    )
    .await;
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.body, "bad gateway\n");
    assert_eq!(send(gw.addr, "GET", "/health", &[]).await.status, 200);

    let up = Upstream::start().await;
    let gw = gateway(&up.url(), &["--upstream-timeout-secs", "1"]).await;
    let (key, token) = bound(&gw);
    let r = send(
        gw.addr,
        "GET",
        "/slow",
        &refs(&dpop_fields(&gw, &key, &token, "GET", "/slow")),
    )
    .await;
    assert_eq!(r.status, 504, "{r:?}");
    assert_eq!(r.body, "gateway timeout\n");
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn health_and_public_paths_need_no_token_and_nothing_else_does() {
    let up = Upstream::start().await;
    let gw = gateway(
        &up.url(),
        &["--public-path", "/public", "--public-path", "/static/"],
    )
    .await;
    let r = send(gw.addr, "GET", "/health", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(up.count(), 0, "/health is the gateway's own");

    let r = send(
        gw.addr,
        "GET",
        "/public/page?q=1",
        &[("X-Pop-Sub", "admin")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let h = &r.json()["headers"];
    assert!(h.get("x-pop-sub").is_none(), "{h}");
    assert_eq!(
        send(gw.addr, "GET", "/static/app.js", &[]).await.status,
        200
    );
    assert_eq!(send(gw.addr, "GET", "/static", &[]).await.status, 200);
    assert_eq!(up.count(), 3);

    for path in ["/publicity", "/private", "/static-admin/x"] {
        assert_challenge(&send(gw.addr, "GET", path, &[]).await, 401, None);
    }
    // Paths an upstream could resolve out of the prefix: raw bytes, no client normalizes them.
    for path in [
        "/public/../private",
        "/public/%2e%2e/private",
        "/public/..%2fprivate",
        "/public/..;/private",
    ] {
        let raw = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            gw.addr
        );
        let r = send_raw(gw.addr, raw.as_bytes()).await;
        assert_eq!(r.status, 401, "{path}: {r:?}");
    }
    assert_eq!(up.count(), 3);
}

/// Every field an upstream framework may read to override the path, the method or the client
/// address, with a value that would: the built-in list, and one named by --strip-header.
const OVERRIDES: [(&str, &str); 12] = [
    ("X-Original-URL", "/admin"),
    ("X-Rewrite-URL", "/admin"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("X-HTTP-Method", "DELETE"),
    ("X-Method-Override", "DELETE"),
    ("X-Forwarded-Prefix", "/admin"),
    ("X-Forwarded-Port", "8443"),
    ("X-Real-IP", "10.0.0.1"),
    ("True-Client-IP", "10.0.0.1"),
    ("X-Client-IP", "10.0.0.1"),
    ("CF-Connecting-IP", "10.0.0.1"),
    ("X-Tenant", "other"),
];

#[track_caller]
fn assert_no_overrides(seen: &serde_json::Value) {
    let h = &seen["headers"];
    for (name, _) in OVERRIDES {
        assert!(
            h.get(name.to_ascii_lowercase()).is_none(),
            "{name} reached the upstream: {h}"
        );
    }
}

#[tokio::test]
async fn override_fields_never_reach_the_upstream_also_on_public_paths() {
    let up = Upstream::start().await;
    let gw = gateway(
        &up.url(),
        &["--public-path", "/public", "--strip-header", "X-Tenant"],
    )
    .await;
    let r = send(gw.addr, "GET", "/public/page", &OVERRIDES).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.json()["method"].as_str(), r.json()["uri"].as_str()),
        (Some("GET"), Some("/public/page"))
    );
    assert_no_overrides(&r.json());
    let (key, token) = bound(&gw);
    let mut fields = dpop_fields(&gw, &key, &token, "GET", "/hello").to_vec();
    fields.extend(OVERRIDES.map(|(n, v)| (n.to_owned(), v.to_owned())));
    let r = send(gw.addr, "GET", "/hello", &refs(&fields)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["headers"]["x-pop-sub"], "alice");
    assert_no_overrides(&r.json());
    assert_eq!(up.count(), 2);
}

/// A small Python upstream echoing what it receives: `{"method", "path", "headers"}`.
const PYTHON_UPSTREAM: &str = r#"
import http.server, json, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def answer(self):
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_DELETE = answer
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Echo)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

#[tokio::test]
#[ignore = "needs python3: run bash tests/run.sh"]
async fn a_python_upstream_never_sees_a_method_or_path_override() {
    let mut python = tokio::process::Command::new("python3")
        .args(["-c", PYTHON_UPSTREAM])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 on PATH");
    let stdout = python.stdout.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("python starts within 10 s")
    .unwrap()
    .expect("a port");
    let upstream = format!("http://127.0.0.1:{}", line.trim());
    let gw = gateway(&upstream, &["--public-path", "/public"]).await;
    let r = send(
        gw.addr,
        "GET",
        "/public/page",
        &[
            ("X-Original-URL", "/admin"),
            ("X-HTTP-Method-Override", "DELETE"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = r.json();
    assert_eq!(
        (seen["method"].as_str(), seen["path"].as_str()),
        (Some("GET"), Some("/public/page"))
    );
    let h = &seen["headers"];
    assert!(
        h.get("x-original-url").is_none() && h.get("x-http-method-override").is_none(),
        "{h}"
    );
    assert!(
        h.get("x-forwarded-for").is_some(),
        "the upstream saw the gateway's fields: {h}"
    );
}

#[tokio::test]
#[ignore = "needs node: run bash tests/run.sh"]
async fn request_trailers_never_reach_the_upstream() {
    use http_body_util::{BodyExt as _, Full};
    for (module, extra) in [("http", None), ("http2", Some("--upstream-http2"))] {
        let node = NodeUpstream::start(module, module).await;
        let mut args = vec!["--public-path", "/public"];
        args.extend(extra);
        let gw = gateway(&format!("http://{}", node.addr), &args).await;
        // HTTP/1.1, chunked, with trailers a client would forge an identity or a route with.
        let raw = format!(
            "POST /public/upload HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\
             Trailer: X-Pop-Sub, X-Original-URL\r\nConnection: close\r\n\r\n\
             5\r\nhello\r\n0\r\nX-Pop-Sub: admin\r\nX-Original-URL: /admin\r\n\r\n",
            gw.addr
        );
        let r = send_raw(gw.addr, raw.as_bytes()).await;
        assert_eq!(r.status, 200, "{module}: {r:?}");
        // The raw reply may be chunked: the JSON object inside it.
        let (start, end) = (r.body.find('{').unwrap(), r.body.rfind('}').unwrap());
        let seen: serde_json::Value = serde_json::from_str(&r.body[start..=end]).unwrap();
        assert_eq!(seen["len"], 5, "{module}: the body arrives: {r:?}");
        assert_eq!(seen["trailers"], json!({}), "{module}: {r:?}");
        // HTTP/2 (h2c), with trailers.
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-pop-sub", http::HeaderValue::from_static("admin"));
        trailers.insert("x-original-url", http::HeaderValue::from_static("/admin"));
        let body = Full::new(bytes::Bytes::from_static(b"hello")).with_trailers(
            std::future::ready(Some(Ok::<_, std::convert::Infallible>(trailers))),
        );
        let request = http::Request::post(format!("http://{}/public/upload", gw.addr))
            .body(body)
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), 200, "{module}");
        let seen: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(seen["len"], 5, "{module}: {seen}");
        assert_eq!(seen["trailers"], json!({}), "{module}: {seen}");
    }
}

#[tokio::test]
async fn nonces_are_asked_for_and_refreshed_through_the_gateway() {
    let up = Upstream::start().await;
    let gw = gateway(&up.url(), &["--require-nonce"]).await;
    let (key, token) = bound(&gw);
    let r = send(
        gw.addr,
        "GET",
        "/x",
        &refs(&dpop_fields(&gw, &key, &token, "GET", "/x")),
    )
    .await;
    assert_challenge(&r, 401, Some("use_dpop_nonce"));
    let nonce = r.header("dpop-nonce").expect("a DPoP-Nonce").to_owned();
    let proof = key
        .proof("GET", &gw.url("/x"), Some(&token), Some(&nonce))
        .unwrap();
    let auth = format!("DPoP {token}");
    let r = send(
        gw.addr,
        "GET",
        "/x",
        &[("Authorization", &auth), ("DPoP", &proof)],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["headers"]["x-pop-sub"], "alice");
    assert_eq!(up.count(), 1);
}

#[tokio::test]
#[ignore = "needs node: run bash tests/run.sh"]
async fn certificate_bound_tokens_over_tls_and_http2_both_sides() {
    let pki = pki();
    let node = NodeUpstream::start("http2", "node-h2c").await;
    let mut flags = crate::mtls::tls_flags();
    flags.push("--upstream-http2".into());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let gw = gateway(&format!("http://{}", node.addr), &flags).await;
    assert_eq!(gw.scheme, "https");
    let token = gw
        .issuer
        .token(now(), json!({"cnf": {"x5t#S256": pki.client_a.x5t()}}));
    let bearer = format!("Bearer {token}");
    let client_a = https_client(Some(&pki.client_a));
    let response = client_a
        .get(gw.url("/cert"))
        .header("Authorization", &bearer)
        .header("X-Pop-X5t-S256", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.version(),
        http::Version::HTTP_2,
        "h2 from the client (ALPN)"
    );
    let r = Reply::read(response).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-upstream"), Some("node-h2c"));
    let seen = r.json();
    assert_eq!(seen["version"], "2.0", "h2c to the upstream");
    let h = &seen["headers"];
    assert_eq!(h["x-pop-binding"], "mtls", "{h}");
    assert_eq!(h["x-pop-x5t-s256"], pki.client_a.x5t());
    assert_eq!(h["x-pop-sub"], "alice");
    assert!(
        h.get("authorization").is_none() && h.get("x-pop-jkt").is_none(),
        "{h}"
    );
    assert_eq!(
        h["forwarded"],
        format!("for=127.0.0.1;host=\"{}\";proto=https", gw.addr)
    );
    // Another client's certificate, or none: the token is not theirs.
    for client in [https_client(Some(&pki.client_b)), https_client(None)] {
        let r = Reply::read(
            client
                .get(gw.url("/cert"))
                .header("Authorization", &bearer)
                .send()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 401, "{r:?}");
    }
    assert_eq!(node.count_h2c().await, 1);
}

/// A client on 127.0.0.2, the address the forward-auth tests trust as the proxy.
fn trusted_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A forward-auth gateway for `proxy`, trusting 127.0.0.2, with a public path `/public`.
async fn forward_auth_gateway(proxy: &str, public: &str) -> Server {
    Server::start_with(
        "pop_gateway",
        &[
            "--forward-auth",
            proxy,
            "--trusted-proxy",
            "127.0.0.2/32",
            "--public-url",
            public,
            "--public-path",
            "/public",
        ],
        Arc::new(TestIssuer::new(ISSUER, AUDIENCE)),
    )
    .await
}

#[tokio::test]
async fn traefik_sub_requests_are_read_from_traefiks_fields_only() {
    let public = "https://api.example.test";
    let gw = forward_auth_gateway("traefik", public).await;
    let (key, token) = bound(&gw);
    let auth = format!("DPoP {token}");
    let url = format!("{public}/api/items?x=1");
    let ask = |host: &str, extra: &[(&str, &str)]| {
        let mut request = trusted_client()
            .get(format!("http://{}/", gw.addr))
            .header("Authorization", &auth)
            .header("DPoP", key.proof("GET", &url, Some(&token), None).unwrap())
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Uri", "/api/items?x=1")
            .header("X-Forwarded-Host", host)
            .header("X-Forwarded-Proto", "https");
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        async move { Reply::read(request.send().await.unwrap()).await.unwrap() }
    };
    let r = ask("api.example.test:443", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-pop-sub"), Some("alice"));
    assert_eq!(r.header("x-pop-client-id"), Some("c1"));
    // A forwarded host that is not --public-url: 403, no identity.
    let r = ask("other.example", &[]).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.header("x-pop-sub").is_none());
    // nginx's fields from a client change nothing behind Traefik.
    let r = ask(
        "api.example.test",
        &[
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/public/x"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("x-pop-sub"),
        Some("alice"),
        "verified as /api/items"
    );
}

#[tokio::test]
async fn envoy_sub_requests_are_the_request_itself_whatever_the_client_adds() {
    let public = "https://api.example.test";
    let gw = forward_auth_gateway("envoy", public).await;
    let (key, token) = bound(&gw);
    let auth = format!("DPoP {token}");
    // Envoy's check request: the original method, path and Host.
    let check = |path: &str, host: &str, extra: &[(&str, &str)]| {
        let proof = key
            .proof("GET", &format!("{public}{path}"), Some(&token), None)
            .unwrap();
        let mut request = trusted_client()
            .get(format!("http://{}{path}", gw.addr))
            .header("Host", host)
            .header("Authorization", &auth)
            .header("DPoP", proof);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        async move { Reply::read(request.send().await.unwrap()).await.unwrap() }
    };
    let r = check("/api/items?x=1", "api.example.test", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-pop-binding"), Some("dpop"));
    // A client asking for /admin without a token, naming a public path in fields that nginx or
    // Traefik would set: still /admin, still 401.
    let unauthenticated = trusted_client()
        .get(format!("http://{}/admin", gw.addr))
        .header("Host", "api.example.test")
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/public/x")
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Uri", "/public/x")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    // A proof for /admin used with X-Original-URI naming another path: checked against /admin.
    let r = check(
        "/admin",
        "api.example.test",
        &[
            ("X-Original-URI", "/elsewhere"),
            ("X-Original-Method", "POST"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    // The Host must be --public-url's.
    let r = check("/api/items", "other.example", &[]).await;
    assert_eq!(r.status, 403, "{r:?}");
    // Every request from the proxy is a sub-request: /health needs a token like any path.
    let r = trusted_client()
        .get(format!("http://{}/health", gw.addr))
        .header("Host", "api.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The public path itself passes.
    let r = trusted_client()
        .get(format!("http://{}/public/x", gw.addr))
        .header("Host", "api.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// An HTTPS client trusting the test CA, presenting `identity`.
fn https_client(identity: Option<&Identity>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki().ca_pem.as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([ca]);
    if let Some(identity) = identity {
        let pem = format!("{}{}", identity.cert_pem, identity.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Forward-auth mode behind a real nginx

/// nginx running `examples/gateway/nginx-forward-auth.conf`.
fn start_nginx(port: u16, gateway: SocketAddr, upstream: SocketAddr) -> Nginx {
    let dir = std::env::temp_dir().join(format!(
        "tower-pop-gateway-nginx-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("gateway")
        .join("nginx-forward-auth.conf");
    let conf = std::fs::read_to_string(template)
        .unwrap()
        .replace("@PREFIX@", &dir.display().to_string())
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace("@GATEWAY@", &gateway.to_string())
        .replace("@BIND@", "127.0.0.2")
        .replace("@UPSTREAM@", &upstream.to_string());
    Nginx::run(dir, &conf, port)
}

#[tokio::test]
#[ignore = "needs nginx: run bash tests/run.sh"]
async fn forward_auth_through_a_real_nginx() {
    let up = Upstream::start().await;
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let gw = Server::start_with(
        "pop_gateway",
        &[
            "--forward-auth",
            "nginx",
            "--trusted-proxy",
            "127.0.0.2/32",
            "--public-url",
            &public,
            "--require-nonce",
            "--scope",
            "read",
            "--public-path",
            "/public",
        ],
        issuer,
    )
    .await;
    let nginx = start_nginx(port, gw.addr, up.addr);
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let key = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = gw.token(Some(key.thumbprint()));
    let auth = format!("DPoP {token}");
    let url = format!("{public}/api/items?x=1");

    // No token: nginx answers with the gateway's challenge.
    let r = send(front, "GET", "/api/items?x=1", &[]).await;
    assert_challenge(&r, 401, None);
    // A proof without a nonce: the challenge and the nonce, copied by nginx.
    let proof = key.proof("GET", &url, Some(&token), None).unwrap();
    let r = send(
        front,
        "GET",
        "/api/items?x=1",
        &[("Authorization", &auth), ("DPoP", &proof)],
    )
    .await;
    assert_challenge(&r, 401, Some("use_dpop_nonce"));
    let nonce = r
        .header("dpop-nonce")
        .unwrap_or_else(|| panic!("nginx copies DPoP-Nonce: {r:?} {}", nginx.log()))
        .to_owned();
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // With the nonce: the upstream gets the identity, not the proof nor a forged identity.
    let proof = key.proof("GET", &url, Some(&token), Some(&nonce)).unwrap();
    let fields = [
        ("Authorization", auth.as_str()),
        ("DPoP", proof.as_str()),
        ("X-Pop-Sub", "admin"),
    ];
    let r = send(front, "GET", "/api/items?x=1", &fields).await;
    assert_eq!(r.status, 200, "{r:?} {}", nginx.log());
    let seen = r.json();
    assert_eq!(seen["uri"], "/api/items?x=1");
    let h = &seen["headers"];
    assert_eq!(h["x-pop-sub"], "alice", "{h}");
    assert_eq!(h["x-pop-binding"], "dpop");
    assert_eq!(h["x-pop-jkt"], key.thumbprint());
    assert!(
        h.get("dpop").is_none() && h.get("authorization").is_none(),
        "{h}"
    );
    // The same proof again, a thief's proof, a proof for another URI, no scope: refused.
    let r = send(front, "GET", "/api/items?x=1", &fields).await;
    assert_challenge(&r, 401, Some("invalid_dpop_proof"));
    let thief = ProofSigner::generate(Algorithm::ES256).unwrap();
    let proof = thief
        .proof("GET", &url, Some(&token), Some(&nonce))
        .unwrap();
    let r = send(
        front,
        "GET",
        "/api/items?x=1",
        &[("Authorization", &auth), ("DPoP", &proof)],
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    let proof = key
        .proof(
            "GET",
            &format!("{public}/other"),
            Some(&token),
            Some(&nonce),
        )
        .unwrap();
    let r = send(
        front,
        "GET",
        "/api/items?x=1",
        &[("Authorization", &auth), ("DPoP", &proof)],
    )
    .await;
    assert_challenge(&r, 401, Some("invalid_dpop_proof"));
    let unscoped = gw.issuer.token(
        now(),
        json!({"cnf": {"jkt": key.thumbprint()}, "scope": "other"}),
    );
    let proof = key
        .proof("GET", &url, Some(&unscoped), Some(&nonce))
        .unwrap();
    let unscoped_auth = format!("DPoP {unscoped}");
    let r = send(
        front,
        "GET",
        "/api/items?x=1",
        &[("Authorization", &unscoped_auth), ("DPoP", &proof)],
    )
    .await;
    assert_challenge(&r, 403, Some("insufficient_scope"));
    assert_eq!(up.count(), 1);

    // Straight to the gateway from a peer that is not a trusted proxy: refused, fail closed.
    let proof = key.proof("GET", &url, Some(&token), Some(&nonce)).unwrap();
    let forged = [
        ("Authorization", auth.as_str()),
        ("DPoP", proof.as_str()),
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/api/items?x=1"),
    ];
    let r = send(gw.addr, "GET", "/auth", &forged).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.header("x-pop-sub").is_none());

    // Behind nginx, Traefik's fields name nothing: a client could have set them.
    let proof = key.proof("GET", &url, Some(&token), Some(&nonce)).unwrap();
    let r = trusted_client()
        .get(format!("http://{}/", gw.addr))
        .header("Authorization", &auth)
        .header("DPoP", proof)
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Uri", "/api/items?x=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(up.count(), 1);

    // A --public-path passes nginx without a token, and without identity fields.
    let r = send(front, "GET", "/public/page", &[("X-Pop-Sub", "admin")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json()["headers"].get("x-pop-sub").is_none(), "{r:?}");
    assert_eq!(up.count(), 2);
}
