//! Orchestration: credentials -> token -> binding -> proof -> certificate -> replay, and the one
//! [`Outcome`] every adapter translates.
//!
//! [`Verifier::verify`] runs the checks of RFC 9449 §4.3 and §7.1 (and RFC 8705 §3 for
//! certificate-bound tokens) on a [`PopRequest`] and returns the verified result or one error;
//! which proof a token needs is decided by the binding table of RFC 9449 §7.1-7.2 and RFC 8705
//! §3 (documented on [`Binding`]). [`Verifier::decide`] wraps that into an [`Outcome`] (verified,
//! anonymous, or refused with its challenge) and logs and counts each decision once, under the
//! target `tower_pop::verify`, by kind, scheme and binding only.
//!
//! The proof's `jti` is recorded only after every other check has passed, so an attacker
//! without a valid token and key cannot fill the replay store.
//!
//! ```
//! use tower_pop::{Outcome, PopConfig, PopErrorKind, PopRequest, RoutePolicy, Verifier};
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
//! let Outcome::Refused(refusal) = verifier.decide(&request, &RoutePolicy::new()).await else { panic!() };
//! assert_eq!(refusal.challenge().status(), 401);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::Instrument as _;

use crate::binding::{self, Requirement};
use crate::challenge::{Challenge, ChallengeParams, ResponseHeaders};
use crate::config::PopConfig;
use crate::credentials::{self, Credentials};
use crate::defaults;
use crate::dpop::htu;
use crate::dpop::known_key::KnownKey;
use crate::dpop::proof::{Proof, ProofBytes};
use crate::error::{AuthScheme, PopError, PopErrorKind};
use crate::extension::{Anonymous, Binding, Verified};
use crate::jose::Algorithm;
use crate::metadata::ResourceDocument;
use crate::mtls::{ClientCertificate, check_certificate_binding};
use crate::observe::failure_log::FailureLog;
use crate::observe::{self, Decision};
use crate::policy::RoutePolicy;
use crate::replay::quota::KeyQuota;
use crate::replay::{ReplayEntry, ReplayOutcome, namespaced_owner, proof_lifetime_secs};
use crate::request::{FieldValues, PopRequest};
use crate::token::issuers::TrustedIssuers;
use crate::token::jwt::{JwtValidator, Lookup};
use crate::token::{Confirmation, TokenInfo};

/// Verifies sender-constrained access tokens. Cheap to share: wrap it in an `Arc`.
pub struct Verifier {
    config: PopConfig,
    tokens: TrustedIssuers<JwtValidator>,
    challenge: Arc<ChallengeParams>,
    key_quota: KeyQuota,
    store_failures: FailureLog,
    /// Refusals for our other failures (authorization server, key sets), logged once per burst.
    faults: FailureLog,
    /// [`replay_key`]'s hasher, the namespace taken in.
    replay_hasher: Sha256,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Exactly one `DPoP` field (RFC 9449 §4.3 step 1, RFC 9449 §7.1). A comma, which would join
/// several, is looked for by [`parse_single_proof`] only when parsing fails: no proof that
/// parses can hold one.
fn single_proof(values: FieldValues<'_>) -> Result<&[u8], PopErrorKind> {
    let value = values.first.ok_or(PopErrorKind::MissingProof)?;
    if values.count > 1 {
        return Err(PopErrorKind::MultipleProofs);
    }
    Ok(value)
}

/// Checks 1-7 of RFC 9449 §4.3 on the request's `DPoP` fields, decoding into `bytes`, for a
/// cached token whose remembered key is `known`, if it is ([`Proof::parse_knowing`]).
fn parse_single_proof<'a>(
    values: FieldValues<'a>,
    allowed: &[Algorithm],
    bytes: &'a mut ProofBytes,
    known: Option<&'a KnownKey>,
) -> Result<Proof<'a>, PopErrorKind> {
    let value = single_proof(values)?;
    // A proof that parses is all base64url and dots: ASCII, no comma. So a value with a comma
    // or with bytes that are not UTF-8 fails here, and only then are they looked for: its error
    // is the comma's (several proofs), else the encoding's (malformed), as if checked first.
    let kept = |header: &[u8]| known?.kept_header(header, allowed);
    Proof::parse_knowing(value, allowed, bytes, kept).map_err(|kind| {
        if value.contains(&b',') {
            PopErrorKind::MultipleProofs
        } else if std::str::from_utf8(value).is_err() {
            PopErrorKind::MalformedProof
        } else {
            kind
        }
    })
}

/// The hasher of [`replay_key`] with the API's namespace already taken in: one 64-byte block,
/// compressed once at start-up, so the namespace costs nothing per request.
fn replay_hasher(namespace: &[u8; 32]) -> Sha256 {
    let mut h = Sha256::new();
    let mut block = [0u8; 64];
    let tag = b"tower-pop/dpop-jti/v2";
    block[..tag.len()].copy_from_slice(tag);
    block[32..].copy_from_slice(namespace);
    h.update(block);
    h
}

/// SHA-256 over (namespace, thumbprint, `jti`) from `hasher` ([`replay_hasher`]); the
/// namespace block and the thumbprint have fixed lengths, so no ambiguity.
fn replay_key(hasher: &Sha256, jkt: &str, jti: &str) -> [u8; 32] {
    let mut h = hasher.clone();
    h.update(jkt.as_bytes());
    h.update(b"\0");
    h.update(jti.as_bytes());
    h.finalize().into()
}

impl Verifier {
    /// A verifier for `config`.
    #[must_use]
    pub fn new(config: PopConfig) -> Self {
        let challenge = Arc::new(
            ChallengeParams::new(
                &config.dpop_algorithms,
                config.realm.as_deref(),
                config.allow_bearer,
            )
            .with_resource_metadata(config.resource.as_ref().map(|r| r.url().to_owned())),
        );
        let mut tokens = TrustedIssuers::default();
        for (issuer, keys) in &config.issuers {
            let validator = JwtValidator::new(
                issuer.clone(),
                config.audience.clone(),
                config.token_algorithms.clone(),
                config.token_leeway,
                keys.clone(),
                config.token_profile,
                config.token_cache,
            );
            // The configuration refused duplicates already.
            let _ = tokens.insert(issuer.clone(), validator);
        }
        observe::describe();
        let lifetime = proof_lifetime_secs(config.proof_max_age, config.proof_future_skew);
        Self {
            key_quota: KeyQuota::new(config.proof_key_quota, lifetime),
            store_failures: FailureLog::default(),
            faults: FailureLog::default(),
            replay_hasher: replay_hasher(&config.replay_namespace),
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

    /// The RFC 9728 metadata document, when configured
    /// ([`PopConfigBuilder::resource_metadata`](crate::config::PopConfigBuilder::resource_metadata)).
    #[must_use]
    pub fn resource_document(&self) -> Option<&ResourceDocument> {
        self.config.resource.as_ref()
    }

    /// How `error` is written on the wire (status and `WWW-Authenticate`).
    #[must_use]
    pub fn challenge(&self, error: &PopError) -> Challenge {
        let challenge = Challenge::for_error(error, &self.challenge);
        match (&self.config.nonces, error.kind()) {
            (Some(nonces), PopErrorKind::NonceRequired | PopErrorKind::InvalidNonce) => {
                let nonce = nonces.current(self.config.clock.now_unix());
                challenge.with_headers(ResponseHeaders::default().with_nonce(nonce))
            }
            _ => challenge,
        }
    }

    /// Verify a request and decide what the adapter does with it under `policy`: call the
    /// service with a [`Verified`] (or, when the policy allows anonymous requests and no
    /// credentials were sent, an [`Anonymous`] marker), or answer with the [`Refusal`]. A
    /// verified request whose token lacks a scope the policy requires is refused with 403
    /// `insufficient_scope` (authentication first: a bad token or proof is still a 401). Every
    /// decision is logged and counted here, once (targets, fields and metrics in the crate
    /// docs): refusals under `tower_pop::verify` with their kind and scheme only (never a token,
    /// proof or key), client faults at `debug`, our own failures at `warn`.
    pub async fn decide(&self, request: &PopRequest<'_>, policy: &RoutePolicy) -> Outcome {
        let started = observe::Started::now();
        // FAPI 2.0: every response carries an interaction id, and each decision logs it.
        let interaction = self
            .config
            .fapi2
            .then(|| crate::fapi2::interaction_id(request.interaction_id.first));
        // Events of the stores and key sets consulted on the way nest under this span.
        let span = tracing::debug_span!(
            target: observe::VERIFY,
            "verify",
            interaction_id = interaction.as_deref()
        );
        let (result, header_consulted) = self
            .verify_noting_forwarded(request)
            .instrument(span.clone())
            .await;
        let result = result.and_then(|verified| policy.check_scopes(verified));
        let outcome = match result {
            Ok(mut verified) => {
                verified.response_headers = verified
                    .response_headers
                    .with_interaction_id(interaction.clone());
                Outcome::Verified(verified)
            }
            Err(error)
                if policy.allows_anonymous()
                    && error.kind() == PopErrorKind::MissingCredentials =>
            {
                let challenge = self.challenge(&error);
                let headers = challenge.headers().clone().with_interaction_id(interaction);
                Outcome::Anonymous(Anonymous {
                    challenge: challenge.with_headers(headers),
                })
            }
            Err(error) => {
                let challenge = self.challenge(&error);
                let headers = challenge
                    .headers()
                    .clone()
                    .with_no_store(header_consulted)
                    .with_interaction_id(interaction);
                Outcome::Refused(Refusal {
                    challenge: challenge.with_headers(headers),
                    error,
                })
            }
        };
        span.in_scope(|| {
            observe::decided(outcome.decision(), started, &self.faults, || {
                self.config.clock.now_unix()
            });
        });
        outcome
    }

    /// The outcome for a request that `verified` already belongs to, when it came from this
    /// verifier (the same layer wrapped twice on one route, or nested routers): `policy` is
    /// applied to it again, but the proof is not verified (nor its `jti` recorded) twice.
    /// `None` when `verified` came from another verifier: then verify as usual.
    #[must_use]
    pub fn reuse(&self, verified: &Verified, policy: &RoutePolicy) -> Option<Outcome> {
        if !verified.is_from(&self.challenge) {
            return None;
        }
        Some(match policy.check_scopes(verified.clone()) {
            Ok(verified) => Outcome::Verified(verified),
            Err(error) => Outcome::Refused(Refusal {
                challenge: self.challenge(&error),
                error,
            }),
        })
    }

    /// Verify a request.
    ///
    /// # Errors
    /// The first check that failed; see [`PopErrorKind`].
    pub async fn verify(&self, request: &PopRequest<'_>) -> Result<Verified, PopError> {
        self.verify_noting_forwarded(request).await.0
    }

    /// [`verify`](Self::verify), and whether a proxy's certificate header was read to decide
    /// (then the response, refusal or not, must carry `Cache-Control: no-store`).
    async fn verify_noting_forwarded(
        &self,
        request: &PopRequest<'_>,
    ) -> (Result<Verified, PopError>, bool) {
        let credentials = match credentials::parse(request.authorization) {
            Ok(credentials) => credentials,
            Err(error) => return (Err(error), false),
        };
        let scheme = credentials.scheme;
        #[cfg(feature = "lifetime")]
        let token = credentials.token;
        let now = self.config.clock.now_unix();
        let certificate = ClientCertificate::new(request, self.config.forwarded.as_ref());
        let result = self.check(request, credentials, &certificate, now).await;
        let header_consulted = certificate.header_consulted();
        let result = result
            .map(|granted| {
                // The `exp` itself, not the leeway past it that skewed clocks are given: a
                // stream ends when its token does.
                let expires_at = granted
                    .token
                    .claims
                    .get("exp")
                    .and_then(serde_json::Value::as_u64)
                    .map_or(granted.token.valid_until, |exp| {
                        exp.min(granted.token.valid_until)
                    });
                Verified {
                    claims: Arc::clone(&granted.token.claims),
                    binding: granted.binding,
                    jkt: granted.jkt,
                    x5t_s256: granted.x5t_s256,
                    scheme,
                    challenge: Arc::clone(&self.challenge),
                    response_headers: granted.response_headers.with_no_store(header_consulted),
                    expires_at,
                    #[cfg(feature = "lifetime")]
                    lifetime: self.lifetime(token, expires_at),
                    proven: granted.proven,
                }
            })
            .map_err(|kind| PopError::with_scheme(kind, scheme));
        (result, header_consulted)
    }

    async fn check(
        &self,
        request: &PopRequest<'_>,
        credentials: Credentials<'_>,
        certificate: &ClientCertificate<'_>,
        now: u64,
    ) -> Result<Granted, PopErrorKind> {
        let config = &self.config;
        // A token already verified and cached may remember its proof key and the header its
        // first proof showed: a proof with that header then needs only its claims read. Only a
        // lookup: no signature work before the proof's structure is checked.
        // Not for a request without exactly one proof: it is refused before any token work.
        let lookup = (credentials.scheme == AuthScheme::Dpop && request.dpop.count == 1)
            .then(|| self.only_jwt_validator(credentials.token))
            .flatten()
            .map(|validator| validator.lookup(credentials.token, now));
        let known = lookup
            .as_ref()
            .and_then(Lookup::hit)
            .map(|token| &token.confirmation.jkt_key);
        // Cheap structural checks of the proof come before any signature work.
        let mut proof_bytes = ProofBytes::default();
        let proof = match credentials.scheme {
            AuthScheme::Dpop => Some(parse_single_proof(
                request.dpop,
                &config.dpop_algorithms,
                &mut proof_bytes,
                known,
            )?),
            AuthScheme::Bearer => None,
        };
        // A nonce costs one MAC: checked before any signature, and never instead of one.
        let nonce = match (&proof, &config.nonces) {
            (Some(proof), Some(nonces)) => Some(proof.check_nonce(nonces, now)?),
            _ => None,
        };
        let token = match &lookup {
            // Looked up already: a miss is verified without looking it up again.
            Some(lookup) => lookup.resolve().await?,
            None => self.token(credentials.token, now, request.peer_ip).await?,
        };
        // The token step may have waited (introspection, discovery): the proof's window and
        // its replay entry are judged by the clock as it is now, never by a reading from
        // before the wait, when the entry the proof left may already have been let go.
        let now = config.clock.now_unix().max(now);
        if now >= token.valid_until {
            return Err(PopErrorKind::TokenInvalid);
        }
        let requirement = binding::requirement(
            credentials.scheme,
            &token.confirmation,
            config.allow_bearer,
            request.dpop.count > 0,
        )?;
        let mut proven = None;
        let (binding, jkt, x5t) = match (requirement, proof) {
            (Requirement::Bearer, _) => (Binding::Bearer, None, None),
            (Requirement::Certificate { x5t_s256 }, _) => {
                let x5t = check_certificate_binding(x5t_s256, certificate.der())?;
                (Binding::Mtls, None, Some(x5t))
            }
            (
                Requirement::Dpop {
                    jkt,
                    certificate: x5t,
                },
                Some(proof),
            ) => {
                let cert_bound = x5t.map(|x5t_s256| (x5t_s256, certificate));
                let (jkt, x5t) = self
                    .check_proof(
                        request,
                        &token.token_hash,
                        proof,
                        (jkt, &token.confirmation, cert_bound),
                        now,
                    )
                    .await?;
                let binding = if x5t.is_some() {
                    Binding::DpopAndMtls
                } else {
                    Binding::Dpop
                };
                // Only a request signature reads it: no reference taken without the feature.
                if cfg!(feature = "httpsig") {
                    proven = token.confirmation.jkt_key.proven();
                }
                (binding, Some(jkt), x5t)
            }
            // The DPoP requirement comes only with the DPoP scheme, which parsed a proof.
            (Requirement::Dpop { .. }, None) => return Err(PopErrorKind::MissingProof),
        };
        let mut response_headers = ResponseHeaders::default();
        if let (Some(info), Some(nonces)) = (nonce, &config.nonces)
            && nonces.should_refresh(&info, now)
        {
            response_headers = response_headers.with_nonce(nonces.current(now));
        }
        Ok(Granted {
            token,
            binding,
            jkt,
            x5t_s256: x5t,
            response_headers,
            proven,
        })
    }

    /// How long a request with `token` stays authorized: until `expires_at`, and, for a token
    /// introspection answers for with a recheck interval, until it is revoked.
    #[cfg(feature = "lifetime")]
    fn lifetime(&self, token: &str, expires_at: u64) -> crate::lifetime::Lifetime {
        #[cfg(feature = "introspection")]
        if let Some(introspector) = &self.config.introspector
            && introspector.recheck_every().is_some()
            && !crate::token::introspection::looks_like_jwt(token)
        {
            return crate::lifetime::Lifetime::rechecked(expires_at, introspector, token);
        }
        let _ = token;
        crate::lifetime::Lifetime::until(expires_at)
    }

    /// The validator [`token`](Self::token) asks about `token` without reading it, when there
    /// is one: the only trusted issuer's, unless introspection answers for `token`.
    fn only_jwt_validator(&self, token: &str) -> Option<&JwtValidator> {
        #[cfg(feature = "introspection")]
        if self.config.introspector.is_some() && !crate::token::introspection::looks_like_jwt(token)
        {
            return None;
        }
        #[cfg(not(feature = "introspection"))]
        let _ = token;
        if self.tokens.len() == 1 {
            self.tokens.first()
        } else {
            None
        }
    }

    /// The access token's verified content: a JWT checked with the keys of the issuer it names
    /// (RFC 9068, RFC 8725 §3.8), or, with introspection configured, any other token asked
    /// about (RFC 7662).
    async fn token(
        &self,
        token: &str,
        now: u64,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Arc<TokenInfo>, PopErrorKind> {
        #[cfg(feature = "introspection")]
        if let Some(introspector) = &self.config.introspector
            && !crate::token::introspection::looks_like_jwt(token)
        {
            use crate::token::introspection::IntrospectionError as E;
            return introspector
                .token_info(token, now, peer)
                .await
                .map_err(|e| match e {
                    E::Unavailable => PopErrorKind::IntrospectionUnavailable,
                    E::UnsupportedBinding => PopErrorKind::UnsupportedBinding,
                    _ => PopErrorKind::TokenInvalid,
                });
        }
        #[cfg(not(feature = "introspection"))]
        let _ = peer;
        // One issuer: its validator checks `iss`; several: route by the claimed `iss` first.
        let validator = if self.tokens.len() == 1 {
            self.tokens.first()
        } else {
            self.tokens.route(token)
        };
        validator
            .ok_or(PopErrorKind::TokenInvalid)?
            .lookup(token, now)
            .resolve()
            .await
    }

    /// RFC 9449 §4.3 steps 5-12 and §7.1 on a parsed proof, then single use of its `jti`
    /// (§11.1); returns the proven key's thumbprint and, for a token that is also
    /// certificate-bound, the certificate's (checked before the `jti` is recorded).
    async fn check_proof(
        &self,
        request: &PopRequest<'_>,
        token_hash: &[u8; 32],
        mut proof: Proof<'_>,
        (cnf_jkt, cnf, certificate): (&str, &Confirmation, Option<(&str, &ClientCertificate<'_>)>),
        now: u64,
    ) -> Result<(String, Option<String>), PopErrorKind> {
        let config = &self.config;
        proof.check_htm(request.method())?;
        let path = request.path();
        if !htu::is_normal_path(path) {
            return Err(PopErrorKind::HtuMismatch);
        }
        // The configured origin is normal, and so is the path: a proof naming both exactly
        // passes without normalising either; any other spelling is compared in normal form.
        if !htu::names_exactly(&proof.htu, &config.public_origin, path) {
            let target = htu::normalize(&format!("{}{path}", config.public_origin))
                .ok_or(PopErrorKind::HtuMismatch)?;
            proof.check_htu(&target)?;
        }
        proof.check_iat(now, config.proof_max_age, config.proof_future_skew)?;
        // RFC 9449 §4.2: `ath` is the base64url SHA-256 of the token, already hashed once.
        proof.check_ath(token_hash)?;
        // The key binding, then the signature (a thief's key costs no signature check), through
        // the token's remembered key.
        cnf.jkt_key.verify(&mut proof, cnf_jkt)?;
        // The proven key's thumbprint is `cnf.jkt`, byte for byte (just compared).
        let jkt = cnf_jkt.to_owned();
        let x5t = certificate
            .map(|(x5t_s256, cert)| check_certificate_binding(x5t_s256, cert.der()))
            .transpose()?;
        // Kept until the iat check would refuse the proof anyway (RFC 9449 §11.1), and a
        // margin longer, for a request whose clock reading is a little older than another's.
        let expires_at = proof
            .iat
            .saturating_add(config.proof_max_age)
            .saturating_add(1)
            .saturating_add(defaults::REPLAY_RETENTION_MARGIN.as_secs());
        let entry = ReplayEntry::new(
            replay_key(&self.replay_hasher, &jkt, &proof.jti),
            now,
            expires_at,
        );
        drop(proof);
        self.record(entry, &cnf.jkt_owner, &jkt, now, PopErrorKind::Replayed)
            .await?;
        Ok((jkt, x5t))
    }

    /// Single use of `entry` for the key whose thumbprint is `thumbprint` (`owner` its
    /// [`owner_key`](crate::replay::owner_key)): the key's share of the store is bounded
    /// first (the in-memory quota, then the store's own per-owner quota), and `replayed` is the
    /// error when the entry is there already.
    pub(crate) async fn record(
        &self,
        entry: ReplayEntry,
        owner: &[u8; 32],
        thumbprint: &str,
        now: u64,
        replayed: PopErrorKind,
    ) -> Result<(), PopErrorKind> {
        let config = &self.config;
        let entry = entry.with_owner(namespaced_owner(owner, &config.replay_namespace));
        // One key's share of the store is bounded before anything is recorded for it.
        // Given back unless the entry is recorded, also when this future is dropped mid-call.
        let admission = self
            .key_quota
            .admission(thumbprint, now)
            .ok_or(PopErrorKind::ProofKeyOverQuota)?;
        let outcome = config.replay.insert_if_absent(entry).await;
        if matches!(outcome, Ok(ReplayOutcome::Fresh)) {
            admission.keep();
        }
        match outcome {
            Ok(ReplayOutcome::Fresh) => {
                self.store_succeeded();
                Ok(())
            }
            Ok(ReplayOutcome::Replayed) => {
                self.store_succeeded();
                Err(replayed)
            }
            Ok(ReplayOutcome::OverQuota) => {
                self.store_succeeded();
                Err(PopErrorKind::ProofKeyOverQuota)
            }
            Err(e) => {
                let kind = if e.is_full() {
                    PopErrorKind::ReplayStoreFull
                } else {
                    PopErrorKind::ReplayStoreUnavailable
                };
                self.store_failed(kind, now);
                Err(kind)
            }
        }
    }
}

impl Verifier {
    /// Log a replay-store failure: by kind only, never the store error's text (it may quote a
    /// connection URL, password included), once per burst and then at most every 10 s.
    fn store_failed(&self, kind: PopErrorKind, now: u64) {
        if let Some(failures) = self.store_failures.failed(now) {
            tracing::error!(
                target: "tower_pop::replay",
                kind = ?kind,
                failures,
                "DPoP replay store failing; refusing DPoP requests"
            );
        }
    }

    fn store_succeeded(&self) {
        if let Some(unlogged) = self.store_failures.succeeded() {
            tracing::info!(
                target: "tower_pop::replay",
                unlogged_failures = unlogged,
                "DPoP replay store answering again"
            );
        }
    }
}

/// What a successful check proved, before it is dressed as a [`Verified`].
struct Granted {
    token: Arc<TokenInfo>,
    binding: Binding,
    jkt: Option<String>,
    x5t_s256: Option<String>,
    response_headers: ResponseHeaders,
    proven: Option<crate::dpop::known_key::ProvenKey>,
}

/// What an adapter does with a request, decided by [`Verifier::decide`]. Adapters only translate
/// it into their framework's types; none of them re-decides it.
#[derive(Debug)]
#[must_use]
pub enum Outcome {
    /// Call the service with this [`Verified`] in the request extensions.
    Verified(Verified),
    /// No credentials and anonymous requests are allowed: call the service with this marker in
    /// the request extensions.
    Anonymous(Anonymous),
    /// Do not call the service: answer with this refusal.
    Refused(Refusal),
}

impl Outcome {
    /// The decision in the plain values that logs and metrics carry.
    fn decision(&self) -> Decision {
        match self {
            Self::Verified(verified) => Decision::Verified {
                binding: verified.binding().as_str(),
                scheme: verified.scheme(),
            },
            Self::Anonymous(_) => Decision::Anonymous,
            Self::Refused(refusal) => Decision::Refused {
                kind: refusal.error.kind(),
                scheme: refusal.error.scheme(),
            },
        }
    }
}

/// A refused request: the error and how it is written on the wire. Already logged.
#[derive(Debug, Clone)]
pub struct Refusal {
    error: PopError,
    challenge: Challenge,
}

impl Refusal {
    #[cfg(feature = "httpsig")]
    pub(crate) fn new(error: PopError, challenge: Challenge) -> Self {
        Self { error, challenge }
    }

    /// Why the request was refused.
    #[must_use]
    pub fn error(&self) -> &PopError {
        &self.error
    }

    /// The status and challenge headers the response must carry.
    #[must_use]
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The error, to store in the response extensions.
    #[must_use]
    pub fn into_error(self) -> PopError {
        self.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(value: &[u8]) -> FieldValues<'_> {
        let mut values = FieldValues::default();
        values.add(value);
        values
    }

    /// DPOP-01, DPOP-02: a comma or a byte that is not UTF-8 decides the error even when the
    /// proof fails for another reason first (here an algorithm outside the allow-list).
    #[test]
    fn comma_and_encoding_errors_win_however_parsing_fails() {
        let signer = crate::dpop::signer::ProofSigner::generate(Algorithm::ES256).expect("key");
        let proof = signer
            .proof_at("GET", "https://a.example/", None, None, 1)
            .expect("proof");
        let parse = |value: &[u8]| {
            let mut bytes = ProofBytes::default();
            parse_single_proof(fields(value), &[Algorithm::PS256], &mut bytes, None).err()
        };
        assert_eq!(
            parse(proof.as_bytes()),
            Some(PopErrorKind::UnsupportedAlgorithm)
        );
        let not_utf8 = [proof.as_bytes(), b"\xff"].concat();
        assert_eq!(parse(&not_utf8), Some(PopErrorKind::MalformedProof));
        let joined = format!("{proof}, {proof}");
        assert_eq!(parse(joined.as_bytes()), Some(PopErrorKind::MultipleProofs));
        let mut bytes = ProofBytes::default();
        assert!(
            parse_single_proof(
                fields(proof.as_bytes()),
                &[Algorithm::ES256],
                &mut bytes,
                None
            )
            .is_ok()
        );
    }

    async fn outcome(verifier: &Verifier, auth: &str, proof: &str) -> Result<(), PopErrorKind> {
        let request = PopRequest::new("GET", "/whoami")
            .authorization(auth.as_bytes())
            .dpop(proof.as_bytes());
        verifier
            .verify(&request)
            .await
            .map(drop)
            .map_err(|e| e.kind())
    }

    /// DPOP-16: a token remembers its first proof's header and key; a later proof with those
    /// header bytes is not read again, and every request-bound check still runs on it.
    #[tokio::test]
    async fn proofs_showing_the_remembered_header_are_checked_in_full() {
        use crate::dpop::signer::ProofSigner;
        use serde_json::json;
        const NOW: u64 = 1_700_000_000;
        const URL: &str = "https://api.example.com/whoami";
        let issuer =
            crate::test_util::TestIssuer::new("https://as.example.com", "https://api.example.com");
        let client = ProofSigner::generate(Algorithm::EdDSA).expect("key");
        let verifier = Verifier::new(
            PopConfig::builder()
                .public_origin("https://api.example.com")
                .issuer(issuer.issuer())
                .audience(issuer.audience())
                .jwks_json(issuer.jwks_json())
                .clock(Arc::new(crate::clock::ManualClock::new(NOW)))
                .build()
                .expect("configuration"),
        );
        let token = issuer.dpop_token(NOW, client.thumbprint());
        let auth = format!("DPoP {token}");
        let proof = |method: &str, token: &str, iat: u64| {
            client
                .proof_at(method, URL, Some(token), None, iat)
                .expect("proof")
        };
        let first = proof("GET", &token, NOW);
        assert_eq!(outcome(&verifier, &auth, &first).await, Ok(()));
        let header = first.split('.').next().expect("header");
        let lookup = verifier
            .only_jwt_validator(&token)
            .expect("one issuer")
            .lookup(&token, NOW);
        let known = &lookup.hit().expect("cached").confirmation.jkt_key;
        let allowed = &verifier.config.dpop_algorithms;
        assert!(
            known
                .kept_header(header.as_bytes(), &[Algorithm::EdDSA])
                .is_some(),
            "the key, remembered, and the header its proof showed"
        );

        let second = proof("GET", &token, NOW);
        assert!(second.starts_with(header), "the same header");
        let mut bytes = ProofBytes::default();
        let read = Proof::parse_knowing(second.as_bytes(), allowed, &mut bytes, |h| {
            known.kept_header(h, allowed)
        })
        .expect("parses");
        assert!(
            matches!(read.key, std::borrow::Cow::Borrowed(_)),
            "is not read again"
        );
        assert_eq!(outcome(&verifier, &auth, &second).await, Ok(()));
        assert_eq!(
            outcome(&verifier, &auth, &second).await,
            Err(PopErrorKind::Replayed)
        );
        let (input, signature) = proof("GET", &token, NOW)
            .rsplit_once('.')
            .map(|(i, s)| (i.to_owned(), s.to_owned()))
            .expect("compact");
        let mut signature = crate::jose::b64url_decode(signature).expect("b64");
        signature[9] ^= 1;
        let forged = format!("{input}.{}", crate::jose::b64url(&signature));
        assert_eq!(
            outcome(&verifier, &auth, &forged).await,
            Err(PopErrorKind::BadSignature)
        );
        assert_eq!(
            outcome(&verifier, &auth, &proof("POST", &token, NOW)).await,
            Err(PopErrorKind::HtmMismatch)
        );
        assert_eq!(
            outcome(&verifier, &auth, &proof("GET", &token, NOW - 600)).await,
            Err(PopErrorKind::IatOutOfWindow)
        );
        assert_eq!(
            outcome(&verifier, &auth, &proof("GET", "another token", NOW)).await,
            Err(PopErrorKind::AthMismatch)
        );
        // The same key under another spelling of the header: read, bound by its form.
        let mut other_header = client.proof_header();
        other_header["typ"] = json!("application/dpop+jwt");
        let claims = json!({"jti": "other-header", "htm": "GET", "htu": URL, "iat": NOW,
                            "ath": crate::jose::thumbprint::ath(&token)});
        let respelled = client.sign_compact(&other_header, &claims).expect("proof");
        assert_eq!(outcome(&verifier, &auth, &respelled).await, Ok(()));
        // Another key with the token: refused, as ever.
        let thief = ProofSigner::generate(Algorithm::EdDSA).expect("key");
        let stolen = thief
            .proof_at("GET", URL, Some(&token), None, NOW)
            .expect("proof");
        assert_eq!(
            outcome(&verifier, &auth, &stolen).await,
            Err(PopErrorKind::KeyBindingMismatch)
        );
    }
}
