//! tower-pop's client side (feature `client`) over real HTTP on loopback: the reqwest middleware
//! and the tower layer against both example servers with `--require-nonce`, and the middleware
//! and the token-endpoint helper against an independent server (`interop/nonce_server.mjs`,
//! panva's `jose`), which needs `node` (the test fails without it, it is never skipped).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, Request, header::AUTHORIZATION};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tower::{Layer, ServiceExt, service_fn};
use tower_pop::Algorithm;
use tower_pop::client::{DpopMiddleware, SignDpopLayer, TokenError, TokenRequest};
use tower_pop::dpop::signer::ProofSigner;

use crate::server::{SERVERS, Server};

/// Counts the requests that reach the wire: it sits below the DPoP middleware, so a retry
/// counts twice.
struct Counter(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Middleware for Counter {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.0.fetch_add(1, Ordering::SeqCst);
        next.run(req, extensions).await
    }
}

/// No proxy, no redirects (a redirected request would carry the first URL's proof), 10 s.
fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn counted(dpop: &DpopMiddleware, calls: &Arc<AtomicUsize>) -> ClientWithMiddleware {
    ClientBuilder::new(plain())
        .with(dpop.clone())
        .with(Counter(Arc::clone(calls)))
        .build()
}

fn signer() -> Arc<ProofSigner> {
    Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap())
}

/// Per server and method, a fresh middleware (no nonce yet): the first request gets
/// `use_dpop_nonce` and gets through on exactly one retry; the second reuses the nonce of the
/// first's 200 and needs no retry. The URL's query must not reach `htu`.
#[tokio::test]
async fn reqwest_middleware_gets_through_require_nonce_with_one_retry() {
    for name in SERVERS {
        let s = Server::start(name, &["--require-nonce"]).await;
        let signer = signer();
        let token = s.token(Some(signer.thumbprint()));
        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let calls = Arc::new(AtomicUsize::new(0));
            let dpop = DpopMiddleware::new(Arc::clone(&signer));
            let client = counted(&dpop, &calls);
            for (round, wire_requests) in [(1, 2), (2, 3)] {
                let mut request = client
                    .request(method.clone(), s.url(&format!("/whoami?round={round}")))
                    .header(AUTHORIZATION, format!("DPoP {token}"));
                if method == reqwest::Method::POST {
                    // A replayable body: bytes, not a stream.
                    request = request.body(format!("{{\"round\":{round}}}"));
                }
                let r = request.send().await.unwrap();
                let context = format!("{name} {method} round {round}");
                assert_eq!(r.status(), 200, "{context}: {:?}", r.headers());
                assert_eq!(calls.load(Ordering::SeqCst), wire_requests, "{context}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["binding"], "dpop", "{context}");
                assert_eq!(body["jkt"], signer.thumbprint(), "{context}");
            }
            assert_eq!(dpop.nonces().len(), 1);
        }
    }
}

/// The same through the tower layer over hyper-util's legacy client, counting calls of the
/// service below the layer.
#[tokio::test]
async fn tower_layer_gets_through_require_nonce_with_one_retry() {
    for name in SERVERS {
        let s = Server::start(name, &["--require-nonce"]).await;
        let signer = signer();
        let token = s.token(Some(signer.thumbprint()));
        let http = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        for method in [http::Method::GET, http::Method::POST] {
            let calls = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&calls);
            let http = http.clone();
            let below = service_fn(move |req: Request<Full<Bytes>>| {
                counter.fetch_add(1, Ordering::SeqCst);
                http.request(req)
            });
            let client = SignDpopLayer::new(Arc::clone(&signer)).layer(below);
            for (round, wire_requests) in [(1, 2), (2, 3)] {
                let body = if method == http::Method::POST {
                    Full::new(Bytes::from(format!("{{\"round\":{round}}}")))
                } else {
                    Full::default()
                };
                let request = Request::builder()
                    .method(method.clone())
                    .uri(s.url(&format!("/whoami?round={round}")))
                    .header(AUTHORIZATION, format!("DPoP {token}"))
                    .body(body)
                    .unwrap();
                let r =
                    tokio::time::timeout(Duration::from_secs(10), client.clone().oneshot(request))
                        .await
                        .expect("an answer within 10 s")
                        .unwrap();
                let context = format!("{name} {method} round {round}");
                assert_eq!(r.status(), 200, "{context}: {:?}", r.headers());
                assert_eq!(calls.load(Ordering::SeqCst), wire_requests, "{context}");
                let bytes = r.into_body().collect().await.unwrap().to_bytes();
                let body: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(body["jkt"], signer.thumbprint(), "{context}");
            }
        }
    }
}

/// The independent server's URLs (see `nonce_server.mjs`).
struct NodeServer {
    token: String,
    bearer_token: String,
    resource: String,
    requests: String,
    _child: Child,
}

impl NodeServer {
    async fn start() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
        install_node_modules(&dir).await;
        let mut child = Command::new("node")
            .arg(dir.join("nonce_server.mjs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node (it is required, not optional): {e}"));
        let stdout = child.stdout.take().unwrap();
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("nonce_server.mjs starts within 30 s")
        .unwrap()
        .expect("a first line");
        let urls: Value = serde_json::from_str(&line).unwrap();
        let url = |k: &str| urls[k].as_str().unwrap().to_owned();
        Self {
            token: url("token"),
            bearer_token: url("bearer_token"),
            resource: url("resource"),
            requests: url("requests"),
            _child: child,
        }
    }

    /// How many requests reached the token endpoints and the resource.
    async fn requests(&self) -> (u64, u64) {
        let counts: Value = plain()
            .get(&self.requests)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            counts["token"].as_u64().unwrap(),
            counts["resource"].as_u64().unwrap(),
        )
    }
}

/// `jose` from `interop/package-lock.json`: `npm ci` when it is not installed yet (a fresh
/// clone), bounded to 5 minutes.
async fn install_node_modules(dir: &Path) {
    let installed: PathBuf = dir.join("node_modules/jose/package.json");
    if installed.exists() {
        return;
    }
    let status = tokio::time::timeout(
        Duration::from_secs(300),
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .status(),
    )
    .await
    .expect("npm ci within 5 minutes")
    .unwrap_or_else(|e| panic!("cannot run npm (required with node): {e}"));
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

/// Against a server we did not write: the token endpoint asks for a nonce (400
/// `use_dpop_nonce`) and the helper gets a DPoP token on one retry; the resource, on another
/// origin with nonces of its own, asks again (401) and the middleware gets through on one
/// retry; then the nonce is reused. A Bearer token type, bad client credentials, a request
/// without a proof and a thief's key are refused.
#[tokio::test]
#[ignore = "needs node and npm ci in examples/interop: run bash tests/run.sh"]
async fn client_gets_through_an_independent_nonce_server() {
    let node = NodeServer::start().await;
    let signer = signer();
    let dpop = DpopMiddleware::new(Arc::clone(&signer));
    let credentials = TokenRequest::client_credentials("node-client", "node-secret");

    let token = dpop
        .request_token(&plain(), &node.token, &credentials)
        .await
        .unwrap();
    assert_eq!(node.requests().await, (2, 0), "one refusal, one retry");
    assert_eq!(token.expires_in(), Some(Duration::from_secs(300)));

    // The nonce from the token answer is reused: no retry.
    let bearer = dpop
        .request_token(&plain(), &node.bearer_token, &credentials)
        .await
        .unwrap_err();
    assert!(
        matches!(&bearer, TokenError::NotDpop { token_type } if token_type == "Bearer"),
        "{bearer:?}"
    );
    assert_eq!(node.requests().await, (3, 0));
    let wrong = TokenRequest::client_credentials("node-client", "wrong-secret");
    let refused = dpop
        .request_token(&plain(), &node.token, &wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, TokenError::Refused { status: 401, error: Some(e) } if e == "invalid_client"),
        "{refused:?}"
    );
    for shown in [
        format!("{refused}"),
        format!("{refused:?}"),
        format!("{bearer:?}"),
    ] {
        assert!(
            !shown.contains("secret") && !shown.contains(token.secret()),
            "{shown}"
        );
    }

    // A 400 that is not use_dpop_nonce (chunked, as node sends it) comes back whole, unretried.
    let calls = Arc::new(AtomicUsize::new(0));
    let r = counted(&dpop, &calls)
        .post(&node.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(r.url().as_str(), node.token);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":"unsupported_grant_type"}"#
    );
    assert_eq!(node.requests().await, (5, 0));

    let calls = Arc::new(AtomicUsize::new(0));
    let client = counted(&dpop, &calls);
    for (method, wire_requests) in [(reqwest::Method::GET, 2), (reqwest::Method::POST, 3)] {
        let r = client
            .request(method.clone(), format!("{}?q=1#frag", node.resource))
            .header(AUTHORIZATION, token.authorization())
            .body("a replayable body")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}: {:?}", r.headers());
        assert_eq!(calls.load(Ordering::SeqCst), wire_requests, "{method}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["jkt"], signer.thumbprint());
        assert_eq!(body["method"], method.as_str());
    }
    assert_eq!(node.requests().await.1, 3);

    // The server does check: no proof, or a thief's key, is refused.
    let r = plain()
        .get(&node.resource)
        .header(AUTHORIZATION, token.authorization())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let thief_calls = Arc::new(AtomicUsize::new(0));
    let thief = counted(&DpopMiddleware::new(self::signer()), &thief_calls);
    let r = thief
        .get(&node.resource)
        .header(AUTHORIZATION, token.authorization())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert_eq!(
        thief_calls.load(Ordering::SeqCst),
        2,
        "one retry, then the refusal"
    );
}
