//! The one error type of request verification, and the separate build-time [`ConfigError`].
//!
//! A [`PopError`] is opaque: callers branch on [`PopError::kind`], and the HTTP status, `error`
//! code and challenges are derived from that kind in exactly one place, [`crate::challenge::Challenge`].
//! `Display` and `Debug` never contain a token, proof, nonce or key: only the kind's fixed text.

mod config;

use std::fmt;

pub use config::*;

/// What went wrong while verifying a request.
///
/// The variants are grouped by whose fault it was: the client's (a 400 or 401 with an RFC 6750 /
/// RFC 9449 challenge) or ours (a 503 without detail). See [`crate::challenge::Challenge`] for the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PopErrorKind {
    /// No `Authorization` header, or only an unsupported scheme (RFC 6750 §3.1, RFC 9449 §4): 401 without `error`.
    MissingCredentials,
    /// More than one `Authorization` header, a folded one, or a scheme without credentials
    /// (RFC 6750 §2, RFC 6750 §3.1, RFC 9110 §5.3): 400 `invalid_request`.
    InvalidRequest,
    /// The access token failed validation: malformed, bad signature, wrong `typ`/`iss`/`aud`,
    /// expired, not yet valid, unknown key (RFC 9068 §4): 401 `invalid_token`.
    TokenInvalid,
    /// A DPoP-bound token (`cnf.jkt`) was sent with the `Bearer` scheme (RFC 9449 §7.2).
    BoundTokenAsBearer,
    /// An unbound token was sent as `Bearer` while proof of possession is required (RFC 9449 §7.1, FAPI 2.0 §5.3.4).
    BearerNotAllowed,
    /// The `DPoP` scheme was used with a token that carries no `cnf.jkt` (RFC 9449 §7.1).
    TokenNotDpopBound,
    /// The token's `cnf` is malformed or names only confirmation methods this server cannot check
    /// (RFC 7800 §3.1): never treated as a bearer token.
    UnsupportedBinding,
    /// The proof key's RFC 7638 thumbprint differs from the token's `cnf.jkt` (RFC 9449 §4.3 step 12 second bullet).
    KeyBindingMismatch,
    /// The client certificate is missing or its SHA-256 differs from `cnf["x5t#S256"]` (RFC 8705 §3).
    CertBindingMismatch,
    /// The `DPoP` scheme was used without a `DPoP` header (RFC 9449 §7.1).
    MissingProof,
    /// More than one `DPoP` header, or a folded one (RFC 9449 §4.3 step 1).
    MultipleProofs,
    /// The proof is not a well-formed compact JWS with the required members, or is too large
    /// (RFC 9449 §4.1, RFC 9449 §4.2, RFC 7515 §4.1.11, RFC 9449 §11.1).
    MalformedProof,
    /// The proof's `alg` is not in the configured allow-list (RFC 9449 §4.2).
    UnsupportedAlgorithm,
    /// The proof's `jwk` is not an acceptable public key for its `alg` (RFC 9449 §4.3 step 5, RFC 9449 §4.2, RFC 7638 §7).
    InvalidProofKey,
    /// The proof's signature does not verify with its `jwk` (RFC 9449 §4.3 step 6).
    BadSignature,
    /// The proof's `htm` differs from the request method (RFC 9449 §4.3 step 8).
    HtmMismatch,
    /// The proof's `htu` differs from the request's target URI (RFC 9449 §4.3 step 9).
    HtuMismatch,
    /// The proof's `iat` is outside the accepted window (RFC 9449 §4.3 step 11).
    IatOutOfWindow,
    /// The proof's `ath` differs from the hash of the presented access token (RFC 9449 §4.2).
    AthMismatch,
    /// The proof's `jti` was already used with this key within the window (RFC 9449 §11.1).
    Replayed,
    /// The replay store could not be reached: 503, the request is refused (RFC 9449 §7.1).
    ReplayStoreUnavailable,
    /// The server requires a nonce (RFC 9449 §9) and the proof carries none: 401
    /// `use_dpop_nonce` with a fresh `DPoP-Nonce`.
    NonceRequired,
    /// The proof's `nonce` is not one this server supplied, or no longer live (stale, forged,
    /// minted under another secret; RFC 9449 §4.3 step 10): 401 `use_dpop_nonce` with a fresh
    /// `DPoP-Nonce`.
    InvalidNonce,
    /// The issuer's keys could not be fetched and the token's key is not cached (RFC 8414
    /// discovery): 503, never a 200 with an unchecked signature.
    KeySetUnavailable,
    /// The introspection endpoint (RFC 7662) failed, refused our credentials or answered
    /// nonsense: 503.
    IntrospectionUnavailable,
    /// The token is valid and proven, but its `scope` lacks one the route requires (RFC 6750
    /// §3.1): 403 `insufficient_scope`, with the required scope in the challenge.
    InsufficientScope,
    /// The in-memory replay store is full of live entries: 503, the request is refused rather
    /// than risking an accepted replay.
    ReplayStoreFull,
    /// The proof is valid, but its key already holds its quota of proofs recorded within the
    /// proof window ([`PopConfigBuilder::proof_key_quota`](crate::config::PopConfigBuilder::proof_key_quota)):
    /// 429 with `Retry-After` (RFC 6585 §4), nothing recorded. Other keys are unaffected.
    ProofKeyOverQuota,
    /// A request signature is required and the request has none (RFC 9421 §3.2): 401
    /// `invalid_signature`, with `Accept-Signature` (RFC 9421 §5.1) saying what to sign.
    MissingSignature,
    /// `Signature-Input`, `Signature` or `Content-Digest` is not a valid structured field, or
    /// their labels do not match (RFC 9421 §4.1-4.2, RFC 8941): 400 `invalid_request`.
    MalformedSignature,
    /// No request signature covers every component the policy requires (RFC 9421 §3.2.1):
    /// 401 `invalid_signature` with `Accept-Signature`.
    SignatureCoverage,
    /// The request signature does not verify with the token's bound key, names another key
    /// (`keyid`) or algorithm (`alg`), or a covered component cannot be read (RFC 9421 §3.2):
    /// 401 `invalid_signature`.
    InvalidSignature,
    /// The signature's `created` is missing or outside the proof window, or its `expires` has
    /// passed (RFC 9421 §2.3, §3.2.1): 401 `invalid_signature`.
    SignatureExpired,
    /// `Content-Digest` is missing where the body must be covered, uses no accepted algorithm,
    /// or does not match the received body (RFC 9530 §2, RFC 9421 §7.2.8): 401
    /// `invalid_signature`.
    ContentDigestMismatch,
    /// The same request signature was already used (RFC 9421 §7.2.2): 401 `invalid_signature`.
    SignatureReplayed,
    /// The body to be checked against `Content-Digest` is larger than the configured bound
    /// (RFC 9530 §6.7): 413, nothing read beyond the bound.
    BodyTooLarge,
}

impl PopErrorKind {
    /// A stable `snake_case` name of the kind, for logs and metric labels (the
    /// `kind` field of `tower_pop::verify` events and the `kind` label of
    /// `tower_pop_requests_refused_total`): the variant's name in `snake_case`, e.g.
    /// `token_invalid`, `bad_signature`, `replayed`. It never changes for an existing kind; a new
    /// kind gets a new name. Not the RFC 6750 `error` code (several kinds share `invalid_token`).
    ///
    /// ```
    /// use tower_pop::PopErrorKind;
    /// assert_eq!(PopErrorKind::TokenInvalid.as_str(), "token_invalid");
    /// assert_eq!(PopErrorKind::IatOutOfWindow.as_str(), "iat_out_of_window");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidRequest => "invalid_request",
            Self::TokenInvalid => "token_invalid",
            Self::BoundTokenAsBearer => "bound_token_as_bearer",
            Self::BearerNotAllowed => "bearer_not_allowed",
            Self::TokenNotDpopBound => "token_not_dpop_bound",
            Self::UnsupportedBinding => "unsupported_binding",
            Self::KeyBindingMismatch => "key_binding_mismatch",
            Self::CertBindingMismatch => "cert_binding_mismatch",
            Self::MissingProof => "missing_proof",
            Self::MultipleProofs => "multiple_proofs",
            Self::MalformedProof => "malformed_proof",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::InvalidProofKey => "invalid_proof_key",
            Self::BadSignature => "bad_signature",
            Self::HtmMismatch => "htm_mismatch",
            Self::HtuMismatch => "htu_mismatch",
            Self::IatOutOfWindow => "iat_out_of_window",
            Self::AthMismatch => "ath_mismatch",
            Self::Replayed => "replayed",
            Self::ReplayStoreUnavailable => "replay_store_unavailable",
            Self::NonceRequired => "nonce_required",
            Self::InvalidNonce => "invalid_nonce",
            Self::KeySetUnavailable => "key_set_unavailable",
            Self::IntrospectionUnavailable => "introspection_unavailable",
            Self::InsufficientScope => "insufficient_scope",
            Self::ReplayStoreFull => "replay_store_full",
            Self::ProofKeyOverQuota => "proof_key_over_quota",
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::SignatureCoverage => "signature_coverage",
            Self::InvalidSignature => "invalid_signature",
            Self::SignatureExpired => "signature_expired",
            Self::ContentDigestMismatch => "content_digest_mismatch",
            Self::SignatureReplayed => "signature_replayed",
            Self::BodyTooLarge => "body_too_large",
        }
    }

    /// A short, fixed description of the kind; safe to log and to send as `error_description`.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::MissingCredentials => "no access token",
            Self::InvalidRequest => "malformed or multiple credentials",
            Self::TokenInvalid => "invalid access token",
            Self::BoundTokenAsBearer => "DPoP-bound token sent as bearer token",
            Self::BearerNotAllowed => "sender-constrained token required",
            Self::TokenNotDpopBound => "token is not DPoP-bound",
            Self::UnsupportedBinding => "unsupported token confirmation method",
            Self::KeyBindingMismatch => "invalid DPoP key binding",
            Self::CertBindingMismatch => "invalid certificate binding",
            Self::MissingProof => "missing DPoP proof",
            Self::MultipleProofs => "more than one DPoP proof",
            Self::MalformedProof => "malformed DPoP proof",
            Self::UnsupportedAlgorithm => "unsupported DPoP proof algorithm",
            Self::InvalidProofKey => "invalid DPoP proof key",
            Self::BadSignature => "invalid DPoP proof signature",
            Self::HtmMismatch => "DPoP proof htm mismatch",
            Self::HtuMismatch => "DPoP proof htu mismatch",
            Self::IatOutOfWindow => "DPoP proof iat outside the accepted window",
            Self::AthMismatch => "DPoP proof ath mismatch",
            Self::Replayed => "DPoP proof replayed",
            Self::NonceRequired => "DPoP nonce required",
            Self::InvalidNonce => "DPoP nonce invalid or expired",
            Self::InsufficientScope => "insufficient scope",
            Self::KeySetUnavailable => "issuer keys unavailable",
            Self::IntrospectionUnavailable => "introspection unavailable",
            Self::ReplayStoreUnavailable => "replay store unavailable",
            Self::ReplayStoreFull => "replay store full",
            Self::ProofKeyOverQuota => "too many DPoP proofs for this key",
            Self::MissingSignature => "missing request signature",
            Self::MalformedSignature => "malformed request signature fields",
            Self::SignatureCoverage => "request signature does not cover the required components",
            Self::InvalidSignature => "invalid request signature",
            Self::SignatureExpired => "request signature created outside the accepted window",
            Self::ContentDigestMismatch => "content digest missing or does not match the body",
            Self::SignatureReplayed => "request signature replayed",
            Self::BodyTooLarge => "request body too large to check",
        }
    }

    /// Whether the fault is the server's (a dependency failed) rather than the client's.
    #[must_use]
    pub fn is_server_fault(self) -> bool {
        matches!(
            self,
            Self::ReplayStoreUnavailable
                | Self::ReplayStoreFull
                | Self::KeySetUnavailable
                | Self::IntrospectionUnavailable
        )
    }
}

/// The `Authorization` scheme a client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthScheme {
    /// `Bearer` (RFC 6750); also the scheme of certificate-bound tokens (RFC 8705 §3).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1).
    Dpop,
}

impl AuthScheme {
    /// The scheme name as written in challenges.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

/// Why a request was refused.
///
/// Opaque on purpose: match on [`kind`](Self::kind); the status code and challenge come from
/// [`crate::verifier::Verifier::challenge`].
#[derive(Clone, PartialEq, Eq)]
pub struct PopError {
    kind: PopErrorKind,
    scheme: Option<AuthScheme>,
    scope: Option<std::sync::Arc<str>>,
}

impl PopError {
    pub(crate) fn new(kind: PopErrorKind) -> Self {
        Self {
            kind,
            scheme: None,
            scope: None,
        }
    }

    pub(crate) fn with_scheme(kind: PopErrorKind, scheme: AuthScheme) -> Self {
        Self {
            kind,
            scheme: Some(scheme),
            scope: None,
        }
    }

    /// [`PopErrorKind::InsufficientScope`] for a client that used `scheme`, naming the scopes
    /// the route requires (space-delimited, RFC 6749 §3.3).
    pub(crate) fn insufficient_scope(scheme: AuthScheme, required: std::sync::Arc<str>) -> Self {
        Self {
            kind: PopErrorKind::InsufficientScope,
            scheme: Some(scheme),
            scope: Some(required),
        }
    }

    /// For [`PopErrorKind::InsufficientScope`]: the scopes the route requires.
    #[must_use]
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The scheme the client used, when it was recognised; its challenge carries the error
    /// (RFC 9449 §7.2).
    #[must_use]
    pub fn scheme(&self) -> Option<AuthScheme> {
        self.scheme
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> PopErrorKind {
        self.kind
    }
}

impl From<PopErrorKind> for PopError {
    fn from(kind: PopErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Debug for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PopError")
            .field("kind", &self.kind)
            .field("scheme", &self.scheme)
            .field("scope", &self.scope)
            .finish()
    }
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.description())
    }
}

impl std::error::Error for PopError {}

#[cfg(test)]
mod tests {
    use super::PopErrorKind::{self, *};

    /// Every kind with its label, as documented (metric label values are a public interface).
    const LABELS: [(PopErrorKind, &str); 36] = [
        (MissingCredentials, "missing_credentials"),
        (InvalidRequest, "invalid_request"),
        (TokenInvalid, "token_invalid"),
        (BoundTokenAsBearer, "bound_token_as_bearer"),
        (BearerNotAllowed, "bearer_not_allowed"),
        (TokenNotDpopBound, "token_not_dpop_bound"),
        (UnsupportedBinding, "unsupported_binding"),
        (KeyBindingMismatch, "key_binding_mismatch"),
        (CertBindingMismatch, "cert_binding_mismatch"),
        (MissingProof, "missing_proof"),
        (MultipleProofs, "multiple_proofs"),
        (MalformedProof, "malformed_proof"),
        (UnsupportedAlgorithm, "unsupported_algorithm"),
        (InvalidProofKey, "invalid_proof_key"),
        (BadSignature, "bad_signature"),
        (HtmMismatch, "htm_mismatch"),
        (HtuMismatch, "htu_mismatch"),
        (IatOutOfWindow, "iat_out_of_window"),
        (AthMismatch, "ath_mismatch"),
        (Replayed, "replayed"),
        (ReplayStoreUnavailable, "replay_store_unavailable"),
        (NonceRequired, "nonce_required"),
        (InvalidNonce, "invalid_nonce"),
        (KeySetUnavailable, "key_set_unavailable"),
        (IntrospectionUnavailable, "introspection_unavailable"),
        (InsufficientScope, "insufficient_scope"),
        (ReplayStoreFull, "replay_store_full"),
        (ProofKeyOverQuota, "proof_key_over_quota"),
        (MissingSignature, "missing_signature"),
        (MalformedSignature, "malformed_signature"),
        (SignatureCoverage, "signature_coverage"),
        (InvalidSignature, "invalid_signature"),
        (SignatureExpired, "signature_expired"),
        (ContentDigestMismatch, "content_digest_mismatch"),
        (SignatureReplayed, "signature_replayed"),
        (BodyTooLarge, "body_too_large"),
    ];

    /// Fails to compile when a kind is added, so `LABELS` cannot silently miss it.
    fn position(kind: PopErrorKind) -> usize {
        match kind {
            MissingCredentials => 0,
            InvalidRequest => 1,
            TokenInvalid => 2,
            BoundTokenAsBearer => 3,
            BearerNotAllowed => 4,
            TokenNotDpopBound => 5,
            UnsupportedBinding => 6,
            KeyBindingMismatch => 7,
            CertBindingMismatch => 8,
            MissingProof => 9,
            MultipleProofs => 10,
            MalformedProof => 11,
            UnsupportedAlgorithm => 12,
            InvalidProofKey => 13,
            BadSignature => 14,
            HtmMismatch => 15,
            HtuMismatch => 16,
            IatOutOfWindow => 17,
            AthMismatch => 18,
            Replayed => 19,
            ReplayStoreUnavailable => 20,
            NonceRequired => 21,
            InvalidNonce => 22,
            KeySetUnavailable => 23,
            IntrospectionUnavailable => 24,
            InsufficientScope => 25,
            ReplayStoreFull => 26,
            ProofKeyOverQuota => 27,
            MissingSignature => 28,
            MalformedSignature => 29,
            SignatureCoverage => 30,
            InvalidSignature => 31,
            SignatureExpired => 32,
            ContentDigestMismatch => 33,
            SignatureReplayed => 34,
            BodyTooLarge => 35,
        }
    }

    #[test]
    fn every_kind_has_a_stable_distinct_snake_case_label() {
        let mut seen = std::collections::HashSet::new();
        for (i, (kind, label)) in LABELS.iter().enumerate() {
            assert_eq!(position(*kind), i, "{kind:?} listed out of place or twice");
            assert_eq!(kind.as_str(), *label, "{kind:?}");
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && !label.starts_with('_')
                    && !label.ends_with('_'),
                "{label} is not snake_case"
            );
            assert!(seen.insert(*label), "{label} used twice");
        }
    }
}
