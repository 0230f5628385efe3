//! Orchestration: credentials -> token -> binding -> proof -> replay.
//!
//! [`Verifier::verify`] runs every check of RFC 9449 §4.3 and §7.1 (and RFC 8705 §3 for
//! certificate-bound tokens) on a [`PopRequest`] and returns the verified result or one error.
//! The binding policy (RFC 9449 §7.2, SPEC-CHECKLIST DPOP-18..21, CNF-03..04):
//!
//! | scheme | token's `cnf` | outcome |
//! |---|---|---|
//! | `DPoP` | `jkt` | proof verified against it (plus the certificate if `x5t#S256` is also there) |
//! | `DPoP` | none, or only `x5t#S256` | 401 `invalid_token` (DPOP-21) |
//! | `Bearer` | `jkt` | 401 `invalid_token`, with or without a `DPoP` header (downgrade, DPOP-20) |
//! | `Bearer` | `x5t#S256` | client certificate verified against it (RFC 8705) |
//! | `Bearer` | none | accepted only with `allow_bearer`; otherwise 401 `invalid_token` |
//! | any | present but unusable | 401 `invalid_token`, never bearer (CNF-03) |
//!
//! The proof's `jti` is recorded only after every other check has passed, so an attacker
//! without a valid token and key cannot fill the replay store.
//!
//! ```
//! use tower_pop::{PopConfig, PopErrorKind, PopRequest, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let verifier = Verifier::new(
//!     PopConfig::builder()
//!         .public_origin("https://resource.example.org")
//!         .issuer("https://server.example.com")
//!         .audience("https://resource.example.org")
//!         .jwks_json(r#"{"keys":[]}"#)
//!         .build()
//!         .expect("valid configuration"),
//! );
//! // A DPoP-scheme request without a proof is refused before any token work.
//! let request = PopRequest::new("GET", "/protectedresource")
//!     .authorization(b"DPoP Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU");
//! let error = verifier.verify(&request).await.unwrap_err();
//! assert_eq!(error.kind(), PopErrorKind::MissingProof);
//! assert_eq!(verifier.challenge(&error).status(), 401);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::challenge::{Challenge, ChallengeParams};
use crate::config::PopConfig;
use crate::credentials::{self, Credentials};
use crate::dpop::htu;
use crate::dpop::proof::Proof;
use crate::error::{AuthScheme, PopError, PopErrorKind};
use crate::extension::{Binding, Verified};
use crate::mtls::check_certificate_binding;
use crate::replay::{ReplayEntry, ReplayOutcome};
use crate::request::{FieldValues, PopRequest};
use crate::thumbprint;
use crate::token::TokenInfo;
use crate::token::jwt::JwtValidator;

/// Verifies sender-constrained access tokens. Cheap to share: wrap it in an `Arc`.
pub struct Verifier {
    config: PopConfig,
    tokens: JwtValidator,
    challenge: Arc<ChallengeParams>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Exactly one `DPoP` field without a comma (DPOP-01, DPOP-18), as UTF-8.
fn single_proof(values: FieldValues<'_>) -> Result<&str, PopErrorKind> {
    let value = values.first.ok_or(PopErrorKind::MissingProof)?;
    if values.count > 1 || value.contains(&b',') {
        return Err(PopErrorKind::MultipleProofs);
    }
    std::str::from_utf8(value).map_err(|_| PopErrorKind::MalformedProof)
}

/// SHA-256 over (thumbprint, `jti`); the thumbprint has a fixed length, so no ambiguity.
fn replay_key(jkt: &str, jti: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tower-pop/dpop-jti/v1\0");
    h.update(jkt.as_bytes());
    h.update(b"\0");
    h.update(jti.as_bytes());
    h.finalize().into()
}

impl Verifier {
    /// A verifier for `config`.
    #[must_use]
    pub fn new(config: PopConfig) -> Self {
        // jsonwebtoken panics at verification time if it cannot tell which crypto backend to
        // use, which happens when another crate in the application also enables its
        // `rust_crypto` feature. Installing ours first (a no-op if one is already installed)
        // rules that out.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        let challenge = Arc::new(ChallengeParams::new(
            &config.dpop_algorithms,
            config.realm.as_deref(),
        ));
        let mut config = config;
        let keys = std::mem::take(&mut config.keys);
        let tokens = JwtValidator::new(
            config.issuer.clone(),
            config.audience.clone(),
            config.token_algorithms.clone(),
            config.token_leeway,
            keys,
            config.token_cache_capacity,
        );
        Self {
            config,
            tokens,
            challenge,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PopConfig {
        &self.config
    }

    /// How `error` is written on the wire (status and `WWW-Authenticate`).
    #[must_use]
    pub fn challenge(&self, error: &PopError) -> Challenge {
        Challenge::for_error(error, &self.challenge)
    }

    /// Log a refusal (client faults at `debug`, our own failures at `warn`, by kind only: never
    /// a token, proof or key) and return its challenge. Adapters call this for every refusal.
    #[must_use]
    pub fn refuse(&self, error: &PopError) -> Challenge {
        if error.kind().is_server_fault() {
            tracing::warn!(kind = ?error.kind(), "request refused: server-side failure");
        } else {
            tracing::debug!(kind = ?error.kind(), scheme = ?error.scheme(), "request refused");
        }
        self.challenge(error)
    }

    /// Verify a request.
    ///
    /// # Errors
    /// The first check that failed; see [`PopErrorKind`].
    pub async fn verify(&self, request: &PopRequest<'_>) -> Result<Verified, PopError> {
        let credentials = credentials::parse(request.authorization)?;
        let scheme = credentials.scheme;
        let now = self.config.clock.now_unix();
        let result = match scheme {
            AuthScheme::Dpop => self.verify_dpop(request, credentials, now).await,
            AuthScheme::Bearer => self.verify_bearer(request, credentials, now),
        };
        result
            .map(|granted| Verified {
                claims: Arc::clone(&granted.token.claims),
                binding: granted.binding,
                jkt: granted.jkt,
                x5t_s256: granted.x5t_s256,
                scheme,
                challenge: Arc::clone(&self.challenge),
            })
            .map_err(|kind| PopError::with_scheme(kind, scheme))
    }

    fn verify_bearer(
        &self,
        request: &PopRequest<'_>,
        credentials: Credentials<'_>,
        now: u64,
    ) -> Result<Granted, PopErrorKind> {
        let token = self.tokens.verify(credentials.token, now)?;
        let cnf = &token.confirmation;
        if cnf.jkt.is_some() {
            return Err(PopErrorKind::BoundTokenAsBearer);
        }
        if let Some(x5t) = &cnf.x5t_s256 {
            let x5t = check_certificate_binding(x5t, request.peer_certificate)?;
            return Ok(Granted::new(token, Binding::Mtls, None, Some(x5t)));
        }
        if self.config.allow_bearer {
            Ok(Granted::new(token, Binding::Bearer, None, None))
        } else {
            Err(PopErrorKind::BearerNotAllowed)
        }
    }

    async fn verify_dpop(
        &self,
        request: &PopRequest<'_>,
        credentials: Credentials<'_>,
        now: u64,
    ) -> Result<Granted, PopErrorKind> {
        let config = &self.config;
        // Cheap structural checks of the proof come before any signature work.
        let proof = Proof::parse(single_proof(request.dpop)?, &config.dpop_algorithms)?;
        let token = self.tokens.verify(credentials.token, now)?;
        let cnf = &token.confirmation;
        let cnf_jkt = cnf.jkt.as_deref().ok_or(PopErrorKind::TokenNotDpopBound)?;
        proof.check_htm(request.method())?;
        if !htu::is_normal_path(request.path()) {
            return Err(PopErrorKind::HtuMismatch);
        }
        let target = htu::normalize(&format!("{}{}", config.public_origin, request.path()))
            .ok_or(PopErrorKind::HtuMismatch)?;
        proof.check_htu(&target)?;
        proof.check_iat(now, config.proof_max_age, config.proof_future_skew)?;
        proof.check_ath(&thumbprint::ath(credentials.token))?;
        proof.check_signature()?;
        let jkt = proof.check_key_binding(cnf_jkt)?;
        let x5t = match &cnf.x5t_s256 {
            Some(x5t) => Some(check_certificate_binding(x5t, request.peer_certificate)?),
            None => None,
        };
        // Kept until the iat check would refuse the proof anyway (RPL-04).
        let expires_at = proof
            .iat
            .saturating_add(config.proof_max_age)
            .saturating_add(1);
        let entry = ReplayEntry::new(replay_key(&jkt, &proof.jti), now, expires_at);
        drop(proof);
        match config.replay.insert_if_absent(entry).await {
            Ok(ReplayOutcome::Fresh) => {}
            Ok(ReplayOutcome::Replayed) => return Err(PopErrorKind::Replayed),
            Err(e) if e.is_full() => {
                tracing::error!(
                    "DPoP replay store is full; refusing requests until entries expire"
                );
                return Err(PopErrorKind::ReplayStoreFull);
            }
            Err(e) => {
                tracing::error!(error = %e, source = ?std::error::Error::source(&e).map(ToString::to_string), "DPoP replay store unavailable");
                return Err(PopErrorKind::ReplayStoreUnavailable);
            }
        }
        let binding = if x5t.is_some() {
            Binding::DpopAndMtls
        } else {
            Binding::Dpop
        };
        Ok(Granted::new(token, binding, Some(jkt), x5t))
    }
}

/// What a successful check proved, before it is dressed as a [`Verified`].
struct Granted {
    token: Arc<TokenInfo>,
    binding: Binding,
    jkt: Option<String>,
    x5t_s256: Option<String>,
}

impl Granted {
    fn new(
        token: Arc<TokenInfo>,
        binding: Binding,
        jkt: Option<String>,
        x5t_s256: Option<String>,
    ) -> Self {
        Self {
            token,
            binding,
            jkt,
            x5t_s256,
        }
    }
}
