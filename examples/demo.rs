//! The whole idea in one command: a stolen DPoP-bound token does not work.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! One process, loopback only, runs three parties:
//! - a small **authorization server** whose token endpoint (client credentials) checks the
//!   client's DPoP proof and binds the JWT access token it issues to the proof key (`cnf.jkt`);
//! - a **resource server**: axum with tower-pop's `RequirePopLayer` in front of `/whoami`,
//!   requiring server nonces (RFC 9449 §9);
//! - a **client** that holds a DPoP key and makes every request through tower-pop's client
//!   middleware (`tower_pop::client`, a reqwest-middleware middleware): the token request
//!   through its token-endpoint helper, the API call through the middleware, which signs a
//!   proof and retries once when the server asks for a nonce.
//!
//! It shows, step by step: the bound request succeeds (after the one nonce retry); the same
//! token stolen and used with the attacker's own key (its own middleware) is refused; the
//! client's request, captured on the wire and replayed, is refused; the bound token sent as a
//! plain Bearer token is refused. It exits 0 only if all four come out that way.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use axum::routing::{any, post};
use axum_pop::{PopAuth, RequirePopLayer};
use examples_common::http::{Reply, send};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use serde_json::json;
use subtle::ConstantTimeEq;
use tower_pop::client::{DpopMiddleware, TokenRequest};
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::dpop::verify_token_request_proof;
use tower_pop::nonce::Nonces;
use tower_pop::{Algorithm, PopConfig, Verifier};

const CLIENT_ID: &str = "demo-client";
const CLIENT_SECRET: &str = "demo-secret";
const AUDIENCE: &str = "https://api.demo.test";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct AuthorizationServer {
    issuer: String,
    token_url: String,
    key: ProofSigner,
}

/// The token request form (RFC 6749 §4.4.2, client credentials in the body, §2.3.1).
#[derive(serde::Deserialize)]
struct TokenForm {
    grant_type: String,
    client_id: String,
    client_secret: String,
}

fn oauth_error(status: StatusCode, error: &str) -> axum::response::Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// The token endpoint: client credentials, with a DPoP proof (RFC 9449 §5).
async fn token(
    State(auth): State<Arc<AuthorizationServer>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> axum::response::Response {
    let id_ok = form.client_id == CLIENT_ID;
    let secret_ok = bool::from(
        form.client_secret
            .as_bytes()
            .ct_eq(CLIENT_SECRET.as_bytes()),
    );
    if form.grant_type != "client_credentials" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    if !(id_ok && secret_ok) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let proofs: Vec<_> = headers.get_all("dpop").iter().collect();
    let [proof] = proofs.as_slice() else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    };
    let algorithms = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::Ed25519];
    let checked = proof
        .to_str()
        .map(|p| verify_token_request_proof(p, "POST", &auth.token_url, now(), &algorithms));
    let Ok(Ok(jkt)) = checked else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    };
    let access_token = auth.key.sign_compact(
        &json!({"typ": "at+jwt", "alg": "ES256", "kid": "demo-as-1"}),
        &json!({
            "iss": auth.issuer, "aud": AUDIENCE, "sub": CLIENT_ID, "client_id": CLIENT_ID,
            "iat": now(), "exp": now() + 300, "jti": auth.key.random_jti().expect("signing"), "scope": "read",
            "cnf": { "jkt": jkt },
        }),
    ).expect("signing");
    Json(json!({"access_token": access_token, "token_type": "DPoP", "expires_in": 300}))
        .into_response()
}

fn short(value: &str) -> String {
    let head: String = value.chars().take(24).collect();
    format!("{head}…")
}

fn outcome(step: &str, reply: &Reply, expected: u16, failures: &mut u32) {
    let mark = if reply.status == expected {
        "yes"
    } else {
        "NO"
    };
    println!("   -> HTTP {} (expected {expected}: {mark})", reply.status);
    if let Some(challenge) = reply.header("www-authenticate") {
        println!("   -> WWW-Authenticate: {challenge}");
    }
    if reply.status != expected {
        println!("   !! {step}: unexpected answer");
        *failures += 1;
    }
}

/// What an eavesdropper on the client's connection sees: every request as sent, below the
/// DPoP middleware (so a retry shows up as a second request), headers and all.
#[derive(Clone, Default)]
struct WireTap(Arc<Mutex<Vec<Headers>>>);

/// A request's header fields, in order.
type Headers = Vec<(String, String)>;

impl WireTap {
    fn requests(&self) -> Vec<Headers> {
        self.0.lock().map(|seen| seen.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Middleware for WireTap {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut axum::http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let headers = req
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        if let Ok(mut seen) = self.0.lock() {
            seen.push(headers);
        }
        next.run(req, extensions).await
    }
}

/// A DPoP client: no proxy, no redirects (a redirected request would carry the first URL's
/// proof), 10 s timeout.
fn plain_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

fn with_middleware(dpop: &DpopMiddleware, tap: &WireTap) -> Result<ClientWithMiddleware, String> {
    Ok(ClientBuilder::new(plain_client()?)
        .with(dpop.clone())
        .with(tap.clone())
        .build())
}

/// GET `url` with `Authorization: DPoP <token>` through `client`.
async fn call(client: &ClientWithMiddleware, url: &str, token: &str) -> Result<Reply, String> {
    let response = client
        .get(url)
        .header("Authorization", format!("DPoP {token}"))
        .send()
        .await
        .map_err(|e| format!("request to {url} failed: {e}"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

async fn run() -> Result<u32, String> {
    let signer_error = |e: tower_pop::dpop::signer::SignerError| e.to_string();

    // The authorization server.
    let as_key = ProofSigner::generate(Algorithm::ES256).map_err(signer_error)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let as_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut jwk: serde_json::Value =
        serde_json::from_str(&as_key.public_jwk()).map_err(|e| e.to_string())?;
    jwk["kid"] = json!("demo-as-1");
    let jwks = json!({ "keys": [jwk] }).to_string();
    let auth = Arc::new(AuthorizationServer {
        issuer: format!("http://{as_addr}"),
        token_url: format!("http://{as_addr}/token"),
        key: as_key,
    });
    let issuer = auth.issuer.clone();
    let token_url = auth.token_url.clone();
    let as_router = Router::new().route("/token", post(token)).with_state(auth);
    tokio::spawn(async move {
        let _ = axum::serve(listener, as_router).await;
    });

    // The resource server, requiring nonces it issued (RFC 9449 §9). Plain http is for this
    // loopback demo only: DPoP needs TLS.
    let rs_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let rs_addr = rs_listener.local_addr().map_err(|e| e.to_string())?;
    let config = PopConfig::builder()
        .public_origin(format!("http://{rs_addr}"))
        .insecure_allow_http()
        .issuer(&issuer)
        .audience(AUDIENCE)
        .jwks_json(jwks)
        .require_nonce(Nonces::random().map_err(|e| e.to_string())?)
        .build()
        .map_err(|e| e.to_string())?;
    let rs_router = Router::new()
        .route(
            "/whoami",
            any(|auth: PopAuth| async move {
                Json(json!({"sub": auth.claims.get("sub"), "binding": auth.binding.as_str()}))
            }),
        )
        .route_layer(RequirePopLayer::new(Verifier::new(config)));
    tokio::spawn(async move {
        let _ = axum::serve(rs_listener, rs_router).await;
    });
    let whoami = format!("http://{rs_addr}/whoami");

    println!("tower-pop demo: a stolen DPoP-bound token does not work.\n");
    println!("Authorization server: {issuer}   Resource server: http://{rs_addr}\n");

    // The client gets a token bound to its key, through the middleware's token helper.
    let client = Arc::new(ProofSigner::generate(Algorithm::ES256).map_err(signer_error)?);
    let dpop = DpopMiddleware::new(Arc::clone(&client));
    println!(
        "The client holds a private key; its thumbprint (jkt) is {}.",
        client.thumbprint()
    );
    println!("It asks the authorization server for a token, signing a DPoP proof with that key.");
    let token = dpop
        .request_token(
            &plain_client()?,
            &token_url,
            &TokenRequest::client_credentials(CLIENT_ID, CLIENT_SECRET),
        )
        .await
        .map_err(|e| format!("token request failed: {e}"))?;
    println!(
        "   -> token_type DPoP (checked), access token {} bound to cnf.jkt = the client's key\n",
        short(token.secret())
    );
    let token = token.secret().to_owned();

    let (mut failures, mut retry_failures) = (0, 0);
    let mut step = |title: &str, reply: &Reply, expected: u16, explanation: &str| {
        outcome(title, reply, expected, &mut failures);
        if expected == 200 {
            println!("   -> {}\n", reply.body);
        } else {
            println!("   {explanation}\n");
        }
    };

    let title = "1. The client calls the API with the token; its middleware signs a fresh proof.";
    println!("{title}");
    let tap = WireTap::default();
    let reply = call(&with_middleware(&dpop, &tap)?, &whoami, &token).await?;
    let sent = tap.requests();
    if sent.len() == 2 {
        println!(
            "   -> the server asked for a nonce (401 use_dpop_nonce, DPoP-Nonce); \
             the middleware retried once with it"
        );
    } else {
        println!(
            "   !! expected exactly one nonce retry, saw {} request(s) on the wire",
            sent.len()
        );
        retry_failures += 1;
    }
    step(title, &reply, 200, "");

    let title =
        "2. An attacker stole the token (but not the key) and signs proofs with a key of its own.";
    println!("{title}");
    let thief = DpopMiddleware::new(ProofSigner::generate(Algorithm::ES256).map_err(signer_error)?);
    let reply = call(
        &with_middleware(&thief, &WireTap::default())?,
        &whoami,
        &token,
    )
    .await?;
    step(
        title,
        &reply,
        401,
        "The proof key's thumbprint is not the token's cnf.jkt: refused.",
    );

    let title = "3. The attacker replays the client's request from step 1, captured on the wire.";
    println!("{title}");
    let captured = sent.last().cloned().unwrap_or_default();
    let headers: Vec<(&str, &str)> = captured
        .iter()
        .filter(|(n, _)| n == "authorization" || n == "dpop")
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let reply = send(rs_addr, "GET", "/whoami", &headers).await;
    step(
        title,
        &reply,
        401,
        "Each proof's jti is accepted once: refused.",
    );

    let title = "4. The attacker sends the token as a plain Bearer token, without any proof.";
    println!("{title}");
    let bearer = format!("Bearer {token}");
    let reply = send(rs_addr, "GET", "/whoami", &[("Authorization", &bearer)]).await;
    step(
        title,
        &reply,
        401,
        "A token bound to a key is never accepted as a bearer token: refused.",
    );
    Ok(failures + retry_failures)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(0) => {
            println!("All four outcomes as expected: the bound token works only with its key.");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("{n} outcome(s) not as expected.");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}
