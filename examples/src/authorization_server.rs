//! The tiny authorization server of the demos (`demo`, `browser_demo`): a token endpoint
//! (client credentials, RFC 6749 §4.4) that checks the client's DPoP proof (RFC 9449 §4.3, §5)
//! and issues a JWT access token (RFC 9068) bound to the proof key (`cnf.jkt`, RFC 9449 §6).
//!
//! A demo only: one fixed client, no login. A real browser app would use the authorization code
//! flow with PKCE; the DPoP part of its token request is the same as here.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde_json::json;
use subtle::ConstantTimeEq;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::{ProofSigner, SignerError};
use tower_pop::dpop::verify_token_request_proof;

/// The one client the demo authorization server knows.
pub const CLIENT_ID: &str = "demo-client";
/// Its secret (a demo: never ship a secret in a browser app).
pub const CLIENT_SECRET: &str = "demo-secret";
/// The audience of the tokens it issues.
pub const AUDIENCE: &str = "https://api.demo.test";
/// The `kid` of its signing key.
const KID: &str = "demo-as-1";

/// Seconds since the epoch (the demos' clock).
#[must_use]
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The authorization server: its issuer, token endpoint URL and signing key.
pub struct AuthorizationServer {
    issuer: String,
    token_url: String,
    key: ProofSigner,
}

impl std::fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The token request form (RFC 6749 §4.4.2, client credentials in the body, §2.3.1).
#[derive(serde::Deserialize)]
struct TokenForm {
    grant_type: String,
    client_id: String,
    client_secret: String,
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

impl AuthorizationServer {
    /// An authorization server at `issuer` (an origin such as `http://127.0.0.1:8400`), with
    /// its token endpoint at `issuer/token` and a fresh ES256 signing key.
    ///
    /// # Errors
    /// When no key can be generated.
    pub fn new(issuer: &str) -> Result<Arc<Self>, SignerError> {
        Ok(Arc::new(Self {
            issuer: issuer.to_owned(),
            token_url: format!("{issuer}/token"),
            key: ProofSigner::generate(Algorithm::ES256)?,
        }))
    }

    /// The issuer (`iss` of its tokens).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint URL (the `htu` its clients' proofs carry).
    #[must_use]
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Its JWK Set (the public signing key), for the resource server.
    #[must_use]
    pub fn jwks_json(&self) -> String {
        let mut jwk: serde_json::Value =
            serde_json::from_str(&self.key.public_jwk()).unwrap_or_default();
        jwk["kid"] = json!(KID);
        json!({ "keys": [jwk] }).to_string()
    }

    /// A router with the token endpoint, `POST /token`.
    pub fn router<S: Clone + Send + Sync + 'static>(self: &Arc<Self>) -> Router<S> {
        Router::new()
            .route("/token", post(token))
            .with_state(Arc::clone(self))
    }
}

/// The token endpoint: client credentials, with a DPoP proof (RFC 9449 §5).
async fn token(
    State(auth): State<Arc<AuthorizationServer>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
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
    // A token we cannot sign (no randomness, a failed signature) is a server error, never a
    // token with a guessable `jti` or no signature.
    let signed = auth.key.random_jti().and_then(|jti| {
        auth.key.sign_compact(
            &json!({"typ": "at+jwt", "alg": "ES256", "kid": KID}),
            &json!({
                "iss": auth.issuer, "aud": AUDIENCE, "sub": CLIENT_ID, "client_id": CLIENT_ID,
                "iat": now(), "exp": now() + 300, "jti": jti, "scope": "read",
                "cnf": { "jkt": jkt },
            }),
        )
    });
    let Ok(access_token) = signed else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    (
        // RFC 6749 §5.1: token responses are not cached.
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(json!({"access_token": access_token, "token_type": "DPoP", "expires_in": 300})),
    )
        .into_response()
}
