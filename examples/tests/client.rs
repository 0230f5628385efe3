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
use http::{Request, header::AUTHORIZATION};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tower::{Layer, ServiceExt, service_fn};
use tower_pop::Algorithm;
use tower_pop::client::{DpopMiddleware, SignDpopLayer, TokenError, TokenRequest};
use tower_pop::dpop::signer::ProofSigner;

use crate::server::{SERVERS, Server};
use examples_common::http::WireCounter;

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
        .with(WireCounter(Arc::clone(calls)))
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

/// A loopback server for the redirect tests: every request is recorded (method, path, the
/// `DPoP`, `Authorization` and `Cookie` fields, the body), and `answer` decides the reply.
struct Recorder {
    addr: std::net::SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Answer = Arc<dyn Fn(&str, &str) -> axum::response::Response + Send + Sync>;

impl Recorder {
    async fn start(
        answer: impl Fn(&str, &str) -> axum::response::Response + Send + Sync + 'static,
    ) -> Self {
        use axum::extract::{Request as AxumRequest, State};
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let answer: Answer = Arc::new(answer);
        let state = (Arc::clone(&seen), answer);
        let app = axum::Router::new()
            .fallback(
                |State((seen, answer)): State<(Arc<std::sync::Mutex<Vec<Value>>>, Answer)>,
                 request: AxumRequest| async move {
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let field = |name: &str| {
                        parts
                            .headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    seen.lock().unwrap().push(serde_json::json!({
                        "method": parts.method.as_str(),
                        "path": parts.uri.path(),
                        "dpop": field("dpop"),
                        "authorization": field("authorization"),
                        "cookie": field("cookie"),
                        "body": String::from_utf8_lossy(&body),
                    }));
                    answer(parts.method.as_str(), parts.uri.path())
                },
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

fn redirect(status: u16, location: &str) -> axum::response::Response {
    axum::response::Response::builder()
        .status(status)
        .header("location", location)
        .body(axum::body::Body::empty())
        .unwrap()
}

/// The `htu` of a compact proof.
fn htu_of(proof: &str) -> String {
    use base64::Engine as _;
    let payload = proof.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["htu"].as_str().unwrap().to_owned()
}

/// Another origin, which answers everything with 200 and a nonce of its own.
async fn elsewhere() -> Recorder {
    Recorder::start(|_, _| {
        axum::response::Response::builder()
            .header("dpop-nonce", "nonce-from-elsewhere")
            .body(axum::body::Body::from("elsewhere"))
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn request_token_never_follows_a_redirect() {
    let other = elsewhere().await;
    let location = other.url("/steal");
    let endpoint = Recorder::start(move |_, path| match path {
        "/token307" => redirect(307, &location),
        "/token308" => redirect(308, &location),
        _ => redirect(302, &location),
    })
    .await;
    let dpop = DpopMiddleware::new(signer());
    let request = TokenRequest::client_credentials("client", "the-client-secret");
    let following = reqwest::Client::builder().no_proxy().build().unwrap();
    for (client, gets) in [(plain(), 0), (following, 1)] {
        for path in ["/token307", "/token308", "/token302"] {
            let error = dpop
                .request_token(&client, &endpoint.url(path), &request)
                .await
                .unwrap_err();
            assert!(
                matches!(error, TokenError::Redirected { .. }),
                "{path}: {error}"
            );
        }
        // The form reached the token endpoint only: a 307 or 308 is not repeated, and the GET
        // a following client makes after a 302 carries no form.
        let stolen = other.seen();
        assert_eq!(stolen.len(), gets, "{stolen:?}");
        assert!(
            stolen
                .iter()
                .all(|r| r["method"] == "GET" && r["body"] == ""),
            "{stolen:?}"
        );
    }
    assert!(endpoint.seen().iter().all(|r| r["method"] == "POST"));
}

#[tokio::test]
async fn the_middleware_resigns_same_origin_redirects_and_carries_nothing_across() {
    let other = elsewhere().await;
    let location = other.url("/steal");
    let first = Recorder::start(move |_, path| match path {
        "/start" => redirect(302, "/next"),
        "/post" => redirect(307, "/posted"),
        "/posted" => axum::response::Response::new(axum::body::Body::from("posted")),
        _ => redirect(302, &location),
    })
    .await;
    let dpop = DpopMiddleware::new(signer());
    let client = ClientBuilder::new(plain()).with(dpop.clone()).build();
    let response = client
        .get(first.url("/start"))
        .header(AUTHORIZATION, "DPoP the-token")
        .header("cookie", "session=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = first.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // Same origin: a new proof for each URL, with the token.
    for (request, path) in seen.iter().zip(["/start", "/next"]) {
        assert_eq!(request["path"], path);
        assert_eq!(htu_of(request["dpop"].as_str().unwrap()), first.url(path));
        assert_eq!(request["authorization"], "DPoP the-token");
    }
    // The other origin: no proof, no token, no cookie.
    let reached = other.seen();
    assert_eq!(reached.len(), 1, "{reached:?}");
    assert!(
        reached[0]["dpop"].is_null()
            && reached[0]["authorization"].is_null()
            && reached[0]["cookie"].is_null(),
        "{reached:?}"
    );
    // Its nonce is remembered under its own origin, not the first one's.
    assert!(dpop.nonces().get(&first.origin()).is_none());
    assert_eq!(
        dpop.nonces().get(&other.origin()).as_deref(),
        Some("nonce-from-elsewhere")
    );

    // 307 repeats the method and body, with a proof for the new URL.
    let response = client
        .post(first.url("/post"))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "posted");
    let posted = first.seen().into_iter().last().unwrap();
    assert_eq!(
        (posted["method"].as_str(), posted["body"].as_str()),
        (Some("POST"), Some("payload"))
    );
    assert_eq!(
        htu_of(posted["dpop"].as_str().unwrap()),
        first.url("/posted")
    );

    // With no redirects allowed, the 3xx comes back.
    let none = ClientBuilder::new(plain())
        .with(dpop.clone().max_redirects(0))
        .build();
    let response = none.get(first.url("/start")).send().await.unwrap();
    assert_eq!(response.status(), 302);
}

/// Issue #27: both client paths sign requests (RFC 9421, the DPoP key, `Content-Digest` for the
/// body) when asked, against both servers with `--require-signature --require-nonce`: the
/// nonce retry gets a new proof and a new signature. Unsigned, the same requests get 401.
#[tokio::test]
async fn both_client_paths_sign_requests_for_require_signature() {
    use tower_pop::httpsig::sign::{REQUEST_COMPONENTS, SignatureOptions};
    let options = || SignatureOptions::new(&REQUEST_COMPONENTS);
    for name in SERVERS {
        let s = Server::start(name, &["--require-signature", "--require-nonce"]).await;
        let signer = signer();
        let token = s.token(Some(signer.thumbprint()));
        for sign in [true, false] {
            let dpop = DpopMiddleware::new(Arc::clone(&signer));
            let dpop = if sign {
                dpop.sign_requests(options())
            } else {
                dpop
            };
            let client = ClientBuilder::new(plain()).with(dpop).build();
            let r = client
                .post(s.url("/whoami?via=reqwest"))
                .header(AUTHORIZATION, format!("DPoP {token}"))
                .header("content-type", "application/json")
                .body(r#"{"amount": 100}"#)
                .send()
                .await
                .unwrap();
            let expected = if sign { 200 } else { 401 };
            assert_eq!(
                r.status(),
                expected,
                "{name} middleware signing={sign}: {:?}",
                r.headers()
            );

            let http = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let layer = SignDpopLayer::new(Arc::clone(&signer));
            let layer = if sign {
                layer.sign_requests(options())
            } else {
                layer
            };
            let client = layer.layer(service_fn(move |req: Request<Full<Bytes>>| {
                http.request(req)
            }));
            let request = Request::post(s.url("/whoami?via=tower"))
                .header(AUTHORIZATION, format!("DPoP {token}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(br#"{"amount": 100}"#)))
                .unwrap();
            let r = tokio::time::timeout(Duration::from_secs(10), client.oneshot(request))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            assert_eq!(
                r.status(),
                expected,
                "{name} layer signing={sign}: {:?}",
                r.headers()
            );
        }
    }
}
