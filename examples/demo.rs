//! The whole idea in one command: a stolen DPoP-bound token does not work.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! One process, loopback only, runs three parties:
//! - a small **authorization server** whose token endpoint (client credentials) checks the
//!   client's DPoP proof and binds the JWT access token it issues to the proof key (`cnf.jkt`);
//! - a **resource server**: axum with tower-pop's `RequirePopLayer` in front of `/whoami`;
//! - a **client** that holds a DPoP key.
//!
//! It shows, step by step: the bound request succeeds; the same token stolen and replayed
//! without the key is refused; a replayed proof is refused; the bound token sent as a plain
//! Bearer token is refused. It exits 0 only if all four come out that way.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use axum::routing::{any, post};
use axum_pop::{PopAuth, RequirePopLayer};
use examples_common::http::{Reply, client as http_client, send};
use serde_json::json;
use subtle::ConstantTimeEq;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::dpop::verify_token_request_proof;
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
struct TokenRequest {
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
    Form(form): Form<TokenRequest>,
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
            "iat": now(), "exp": now() + 300, "jti": auth.key.random_jti(), "scope": "read",
            "cnf": { "jkt": jkt },
        }),
    );
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

    // The resource server. Plain http is for this loopback demo only: DPoP needs TLS.
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

    // The client gets a token bound to its key.
    let client = ProofSigner::generate(Algorithm::ES256).map_err(signer_error)?;
    println!(
        "The client holds a private key; its thumbprint (jkt) is {}.",
        client.thumbprint()
    );
    println!("It asks the authorization server for a token, signing a DPoP proof with that key.");
    let proof = client.proof("POST", &token_url, None, None);
    let response = http_client()
        .post(&token_url)
        .header("DPoP", &proof)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .map_err(|e| format!("token request failed: {e}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("token endpoint answered HTTP {status}, not JSON: {e}"))?;
    let token = body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            format!("the token endpoint answered HTTP {status} without a token: {body}")
        })?;
    if body["token_type"] != "DPoP" {
        return Err(format!(
            "token_type is {}, not DPoP (RFC 9449 §5)",
            body["token_type"]
        ));
    }
    println!(
        "   -> token_type {}, access token {} bound to cnf.jkt = the client's key\n",
        body["token_type"],
        short(&token)
    );
    let auth_header = format!("DPoP {token}");
    let bearer_header = format!("Bearer {token}");
    let thief = ProofSigner::generate(Algorithm::ES256).map_err(signer_error)?;
    let proof = client.proof("GET", &whoami, Some(&token), None);
    let stolen = thief.proof("GET", &whoami, Some(&token), None);
    let dpop = |proof: &str| {
        vec![
            ("Authorization", auth_header.clone()),
            ("DPoP", proof.to_owned()),
        ]
    };
    let steps = [
        (
            "1. The client calls the API with the token and a fresh proof signed by its key.",
            dpop(&proof),
            200,
            "",
        ),
        (
            "2. An attacker stole the token (but not the key) and signs proofs with a key of its own.",
            dpop(&stolen),
            401,
            "The proof key's thumbprint is not the token's cnf.jkt: refused.",
        ),
        (
            "3. The attacker replays the client's own request from step 1 (token and proof).",
            dpop(&proof),
            401,
            "Each proof's jti is accepted once: refused.",
        ),
        (
            "4. The attacker sends the token as a plain Bearer token, without any proof.",
            vec![("Authorization", bearer_header)],
            401,
            "A token bound to a key is never accepted as a bearer token: refused.",
        ),
    ];
    let mut failures = 0;
    for (title, headers, expected, explanation) in steps {
        println!("{title}");
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = send(rs_addr, "GET", "/whoami", &headers).await;
        outcome(title, &reply, expected, &mut failures);
        if expected == 200 {
            println!("   -> {}\n", reply.body);
        } else {
            println!("   {explanation}\n");
        }
    }
    Ok(failures)
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
