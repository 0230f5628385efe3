//! Fixtures for tests of code that uses this crate (feature `test-util`): an issuer that
//! publishes a JWK Set and mints RFC 9068 access tokens, and a JSON patch helper. Keys are
//! generated per fixture; nothing here is fit for production. (The workspace's own process
//! launchers and test PKI live in its unpublished `tests/support` package.)
//!
//! ```
//! use serde_json::json;
//! use tower_pop::test_util::TestIssuer;
//! use tower_pop::{PopConfig, PopRequest, Verifier, ManualClock};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let now = 1_700_000_000;
//! let issuer = TestIssuer::new("https://as.example.com", "https://api.example.com");
//! let verifier = Verifier::new(PopConfig::builder()
//!     .public_origin("https://api.example.com")
//!     .issuer(issuer.issuer())
//!     .audience(issuer.audience())
//!     .jwks_json(issuer.jwks_json())
//!     .allow_bearer()
//!     .clock(std::sync::Arc::new(ManualClock::new(now)))
//!     .build().unwrap());
//! let token = issuer.token(now, json!({}));
//! let header = format!("Bearer {token}");
//! let request = PopRequest::new("GET", "/").authorization(header.as_bytes());
//! assert_eq!(verifier.verify(&request).await.unwrap().subject(), Some("alice"));
//! # }
//! ```

use serde_json::{Value, json};

use crate::dpop::signer::ProofSigner;
use crate::jose::Algorithm;

/// `base` with the members of `changes` replacing its own; a `null` member removes one.
#[must_use]
pub fn patch(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().cloned().unwrap_or_default() {
        match base.as_object_mut() {
            Some(object) if v.is_null() => {
                object.remove(&k);
            }
            Some(object) => {
                object.insert(k, v);
            }
            None => {}
        }
    }
    base
}

/// A JWK Set with `key`'s public key under `kid`, marked `use: sig` with its `alg`.
#[must_use]
pub fn jwks_for(key: &ProofSigner, kid: &str) -> String {
    let mut jwk: Value = serde_json::from_str(&key.public_jwk()).unwrap_or_default();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk["alg"] = json!(key.algorithm().as_str());
    json!({ "keys": [jwk] }).to_string()
}

/// An authorization server's signing side: an ES256 key published as a JWK Set under the kid
/// `as-1`, and access tokens for one audience.
#[derive(Debug)]
pub struct TestIssuer {
    key: ProofSigner,
    issuer: String,
    audience: String,
}

impl TestIssuer {
    /// The kid of the signing key.
    pub const KID: &'static str = "as-1";

    /// A fresh issuer key for `issuer` tokens aimed at `audience`.
    ///
    /// # Panics
    /// If the key cannot be generated.
    #[must_use]
    pub fn new(issuer: &str, audience: &str) -> Self {
        Self {
            key: ProofSigner::generate(Algorithm::ES256).expect("ES256 key generation"),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// The issuer identifier (`iss`).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience (`aud`).
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The signing key.
    #[must_use]
    pub fn key(&self) -> &ProofSigner {
        &self.key
    }

    /// A verifier configuration for `public_origin` that trusts this issuer (its name,
    /// audience and JWK Set); the rest is the builder's defaults, for the caller to change.
    pub fn config(&self, public_origin: &str) -> crate::config::PopConfigBuilder {
        crate::config::PopConfig::builder()
            .public_origin(public_origin)
            .issuer(self.issuer())
            .audience(self.audience())
            .jwks_json(self.jwks_json())
    }

    /// The JWK Set to configure the verifier with.
    #[must_use]
    pub fn jwks_json(&self) -> String {
        jwks_for(&self.key, Self::KID)
    }

    /// The RFC 9068 header: `typ` `at+jwt`, `alg` ES256, `kid`.
    #[must_use]
    pub fn header(&self) -> Value {
        json!({"typ": "at+jwt", "alg": "ES256", "kid": Self::KID})
    }

    /// RFC 9068 claims issued at `now`, valid 10 minutes, unbound (patch in a `cnf` to bind),
    /// with `changes` patched in.
    ///
    /// # Panics
    /// If the system's random generator fails (for the `jti`).
    #[must_use]
    pub fn claims(&self, now: u64, changes: Value) -> Value {
        let claims = json!({
            "iss": self.issuer, "aud": self.audience, "sub": "alice", "client_id": "c1",
            "iat": now, "exp": now + 600, "jti": self.key.random_jti().expect("system random generator"), "scope": "read",
        });
        patch(claims, changes)
    }

    /// A signed access token with [`claims`](Self::claims)`(now, changes)`.
    #[must_use]
    pub fn token(&self, now: u64, changes: Value) -> String {
        self.sign(&self.header(), &self.claims(now, changes))
    }

    /// A token bound to the DPoP key with thumbprint `jkt`.
    #[must_use]
    pub fn dpop_token(&self, now: u64, jkt: &str) -> String {
        self.token(now, json!({"cnf": {"jkt": jkt}}))
    }

    /// Sign any header and claims with the issuer key.
    ///
    /// # Panics
    /// If signing fails (the system's random generator failed).
    #[must_use]
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.key
            .sign_compact(header, claims)
            .expect("signing with the test issuer key")
    }
}
