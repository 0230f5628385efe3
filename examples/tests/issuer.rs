//! Issuer integration on both example servers against a real authorization server on loopback
//! HTTPS (rcgen certificates): keys discovered from RFC 8414 metadata and rotated while
//! serving, several trusted issuers, RFC 7662 introspection of opaque tokens, RFC 9728
//! metadata and the `resource_metadata` challenge parameter, required scopes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::tls::{PemSource, TlsConfig};
use tower_pop_test_support::pki;

use crate::server::{AUDIENCE, SERVERS, Server, now};
use examples_common::http::{Reply, send};

/// A small authorization server: metadata, a JWK Set whose keys the test can rotate, and an
/// introspection endpoint answering from a table.
pub(crate) struct AuthServer {
    pub(crate) issuer: String,
    pub(crate) state: Arc<AsState>,
}

pub(crate) struct AsState {
    issuer: String,
    keys: Mutex<Vec<(String, Arc<ProofSigner>)>>,
    jwks_fetches: AtomicUsize,
    pub(crate) introspections: Mutex<HashMap<String, Value>>,
    introspection_headers: Mutex<Vec<HeaderMap>>,
    introspection_fails: Mutex<bool>,
    /// How long the introspection endpoint takes to answer.
    pub(crate) introspection_delay: Mutex<Duration>,
    pub(crate) introspection_calls: AtomicUsize,
}

impl AuthServer {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("https://{}", listener.local_addr().unwrap());
        let state = Arc::new(AsState {
            issuer: issuer.clone(),
            keys: Mutex::new(vec![(
                "k1".to_owned(),
                Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap()),
            )]),
            jwks_fetches: AtomicUsize::new(0),
            introspections: Mutex::new(HashMap::new()),
            introspection_headers: Mutex::new(Vec::new()),
            introspection_fails: Mutex::new(false),
            introspection_delay: Mutex::new(Duration::ZERO),
            introspection_calls: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks", get(jwks))
            .route("/introspect", post(introspect))
            .with_state(Arc::clone(&state));
        let server = &pki().server;
        let tls = TlsConfig::builder()
            .cert_chain(PemSource::Inline(server.cert_pem.clone().into()))
            .private_key(PemSource::Inline(server.key_pem.clone().into()))
            .build()
            .unwrap();
        tokio::spawn(axum_pop::tls::serve_tls(listener, tls, app));
        Self { issuer, state }
    }

    /// A token signed with the current key `kid`, with `claims` patched in.
    pub(crate) fn token(&self, kid: &str, claims: Value) -> String {
        let keys = self.state.keys.lock().unwrap();
        let key = &keys.iter().find(|(k, _)| k == kid).expect("a key").1;
        let base = json!({"iss": self.issuer, "aud": AUDIENCE, "sub": "alice", "client_id": "c1",
            "iat": now(), "exp": now() + 300, "jti": key.random_jti().unwrap(), "scope": "read"});
        key.sign_compact(
            &json!({"typ": "at+jwt", "alg": "ES256", "kid": kid}),
            &tower_pop::test_util::patch(base, claims),
        )
        .unwrap()
    }

    /// The flags that point a server at this server's introspection endpoint with the
    /// credentials it expects: client `rs`, secret `rs-secret` (in a scratch file).
    pub(crate) fn introspection_flags(&self) -> Vec<String> {
        // A file of its own per server: another test's write must not race this one's read.
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let n = FILES.fetch_add(1, Ordering::SeqCst);
        let secret = crate::scratch::file(&format!("rs-secret-{n}"));
        std::fs::write(&secret, "rs-secret\n").unwrap();
        [
            "--introspection-url".to_owned(),
            format!("{}/introspect", self.issuer),
            "--client-id".to_owned(),
            "rs".to_owned(),
            "--client-secret-file".to_owned(),
            secret.to_string_lossy().into_owned(),
        ]
        .into()
    }

    fn rotate_to(&self, kid: &str) {
        let key = Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap());
        *self.state.keys.lock().unwrap() = vec![(kid.to_owned(), key)];
    }
}

async fn metadata(State(s): State<Arc<AsState>>) -> Json<Value> {
    Json(
        json!({"issuer": s.issuer, "jwks_uri": format!("{}/jwks", s.issuer),
        "introspection_endpoint": format!("{}/introspect", s.issuer)}),
    )
}

async fn jwks(State(s): State<Arc<AsState>>) -> Json<Value> {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = s
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|(kid, key)| {
            let mut jwk: Value = serde_json::from_str(&key.public_jwk()).unwrap();
            jwk["kid"] = json!(kid);
            jwk
        })
        .collect();
    Json(json!({ "keys": keys }))
}

async fn introspect(
    State(s): State<Arc<AsState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.introspection_calls.fetch_add(1, Ordering::SeqCst);
    let delay = *s.introspection_delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    s.introspection_headers
        .lock()
        .unwrap()
        .push(headers.clone());
    if *s.introspection_fails.lock().unwrap() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // client_secret_basic: "rs" / "rs-secret", form-urlencoded then base64 (RFC 6749 §2.3.1).
    let expected = format!("Basic {}", base64_std("rs:rs-secret"));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = s
        .introspections
        .lock()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or(json!({"active": false}));
    Json(answer).into_response()
}

fn base64_std(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

pub(crate) fn ca_file() -> String {
    crate::scratch::write("issuer-ca.pem", &pki().ca_pem)
}

pub(crate) async fn start(name: &str, issuers: &[&str], extra: &[&str]) -> Server {
    let ca = ca_file();
    let mut args: Vec<&str> = Vec::new();
    for issuer in issuers {
        args.extend(["--issuer", issuer]);
    }
    args.extend(["--issuer-ca", &ca]);
    args.extend_from_slice(extra);
    Server::launch_discovering(name, &args).await
}

async fn bearer(s: &Server, token: &str) -> Reply {
    send(
        s.addr,
        "GET",
        "/whoami",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await
}

#[tokio::test]
async fn discovered_keys_rotation_and_several_issuers() {
    let (a, b) = (AuthServer::start().await, AuthServer::start().await);
    for name in SERVERS {
        discovery(name, &a, &b).await;
    }
}

async fn discovery(name: &str, a: &AuthServer, b: &AuthServer) {
    let s = start(name, &[&a.issuer, &b.issuer], &["--allow-bearer"]).await;
    // Each issuer's token with its own discovered key.
    let r = bearer(&s, &a.token("k1", json!({}))).await;
    assert_eq!(r.status, 200, "{name}: {r:?}");
    assert_eq!(r.json()["claims"]["iss"], a.issuer);
    let r = bearer(&s, &b.token("k1", json!({}))).await;
    assert_eq!(r.status, 200, "{name}: {r:?}");
    // A token naming issuer A but signed with B's key: refused (RFC 8725 §3.8).
    let forged = b.token("k1", json!({"iss": a.issuer}));
    assert_eq!(bearer(&s, &forged).await.status, 401, "{name}");
    // An issuer that is not trusted: refused without any key lookup.
    let stranger = b.token("k1", json!({"iss": "https://127.0.0.1:1"}));
    assert_eq!(bearer(&s, &stranger).await.status, 401, "{name}");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart() {
    let a = AuthServer::start().await;
    let servers = [
        start(SERVERS[0], &[&a.issuer], &["--allow-bearer"]).await,
        start(SERVERS[1], &[&a.issuer], &["--allow-bearer"]).await,
    ];
    for s in &servers {
        assert_eq!(bearer(s, &a.token("k1", json!({}))).await.status, 200);
    }
    // The authorization server rotates right after our start-up: a token signed with the new
    // key is accepted within 2 s (the first unknown kid after the first load refetches at
    // once), with no restart.
    a.rotate_to("k2");
    let fetches = a.state.jwks_fetches.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    for s in &servers {
        let r = bearer(s, &a.token("k2", json!({}))).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(a.state.jwks_fetches.load(Ordering::SeqCst) <= fetches + 2);
    // Another rotation right after: the miss interval now holds, no further fetch (401).
    let fetched = a.state.jwks_fetches.load(Ordering::SeqCst);
    a.rotate_to("k3");
    for s in &servers {
        assert_eq!(bearer(s, &a.token("k3", json!({}))).await.status, 401);
    }
    assert_eq!(a.state.jwks_fetches.load(Ordering::SeqCst), fetched);
}

#[tokio::test]
async fn introspection_metadata_and_scopes() {
    for name in SERVERS {
        // The helper checks the metadata against the flags (PRM-04), resource_metadata (PRM-06).
        introspection_and_metadata(name).await;
    }
}

async fn introspection_and_metadata(name: &str) {
    let a = AuthServer::start().await;
    let mut flags = a.introspection_flags();
    flags.extend(["--resource", "https://api.example.test/", "--scope", "read"].map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let s = start(name, &[&a.issuer], &flags).await;
    let key = ProofSigner::generate(Algorithm::ES256).unwrap();
    let active = json!({"active": true, "iss": a.issuer, "aud": AUDIENCE, "sub": "opaque-user",
        "scope": "read", "exp": now() + 300, "cnf": {"jkt": key.thumbprint()}});
    a.state
        .introspections
        .lock()
        .unwrap()
        .insert("opaque-good".into(), active.clone());
    let mut no_scope = active.clone();
    no_scope["scope"] = json!("write");
    a.state
        .introspections
        .lock()
        .unwrap()
        .insert("opaque-noscope".into(), no_scope);
    let mut string_true = active.clone();
    string_true["active"] = json!("true");
    a.state
        .introspections
        .lock()
        .unwrap()
        .insert("opaque-string".into(), string_true);
    let call = |token: &'static str| {
        let proof = key
            .proof("GET", &s.url("/whoami"), Some(token), None)
            .unwrap();
        let auth = format!("DPoP {token}");
        async move {
            send(
                s.addr,
                "GET",
                "/whoami",
                &[("Authorization", &auth), ("DPoP", &proof)],
            )
            .await
        }
    };
    let r = call("opaque-good").await;
    assert_eq!(r.status, 200, "{name}: {r:?}");
    assert_eq!(r.json()["sub"], "opaque-user");
    assert_eq!(r.json()["binding"], "dpop");
    // Only the token reached the authorization server: no proof, no client Authorization.
    for headers in a.state.introspection_headers.lock().unwrap().iter() {
        assert!(headers.get("dpop").is_none());
        assert!(
            !headers["authorization"]
                .to_str()
                .unwrap()
                .contains("opaque")
        );
    }
    assert_eq!(call("opaque-unknown").await.status, 401, "{name}");
    assert_eq!(
        call("opaque-string").await.status,
        401,
        "{name}: \"true\" is not active"
    );
    // Scope: a valid token without the required scope is 403 insufficient_scope.
    let r = call("opaque-noscope").await;
    assert_eq!(r.status, 403, "{name}: {r:?}");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        crate::server::error_in(challenge, "DPoP", "insufficient_scope"),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"read\""), "{challenge}");
    // The authorization server failing: 503, never a 200.
    *a.state.introspection_fails.lock().unwrap() = true;
    a.state
        .introspections
        .lock()
        .unwrap()
        .insert("opaque-other".into(), active);
    assert_eq!(call("opaque-other").await.status, 503, "{name}");
    // RFC 9728: the metadata document, without authentication, and the challenge parameter.
    let doc = send(s.addr, "GET", "/.well-known/oauth-protected-resource", &[]).await;
    assert_eq!(doc.status, 200, "{name}: {doc:?}");
    let doc = doc.json();
    assert_eq!(doc["resource"], "https://api.example.test/");
    assert_eq!(doc["authorization_servers"], json!([a.issuer]));
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "PS256", "EdDSA", "Ed25519"])
    );
    assert_eq!(doc["dpop_bound_access_tokens_required"], true);
    assert_eq!(doc["tls_client_certificate_bound_access_tokens"], false);
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    assert_eq!(doc["scopes_supported"], json!(["read"]));
    let none = send(s.addr, "GET", "/whoami", &[]).await;
    let challenge = none.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(
            "resource_metadata=\"https://api.example.test/.well-known/oauth-protected-resource\""
        ),
        "{challenge}"
    );
}
