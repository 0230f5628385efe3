//! **The one place** that maps an error to HTTP: status code, RFC 6750 / RFC 9449 `error` code,
//! and the `WWW-Authenticate` challenges (SPEC-CHECKLIST table 0.3).
//!
//! Which challenges, in which order (RFC 9110 §11.6.1 allows several; many clients read only
//! the first):
//!
//! - The challenge of the scheme the request used comes first and carries the `error` (RFC 9449
//!   §7.2; Figure 20 answers a DPoP request with the `DPoP` challenge). Without credentials, the
//!   `DPoP` challenge comes first. When the scheme cannot be told (two `Authorization`
//!   fields), the error goes into both, `DPoP` first (RFC 9449 Figure 19).
//! - `Bearer` is offered only when bearer tokens can succeed (`allow_bearer`) or the error is
//!   about a Bearer request (a DPoP-bound token sent as Bearer: RFC 9449 §7.2): a client is
//!   never invited to a scheme that cannot work.
//! - `DPoP` always carries `algs` from the configured allow-list (RFC 9449 §7.1, §5.1 /
//!   RFC 9728 §2); every challenge carries the configured `realm` (RFC 6750 §3) and, with
//!   resource metadata, `resource_metadata` (RFC 9728 §5.1).
//!
//! A request without credentials gets challenges without `error` (RFC 6750 §3.1). `error_description` is a fixed text
//! per error kind: never input-derived, so it never carries a token, a proof, `"` or `\`
//! (RFC 6750 §3, RFC 9449 §7.1). Failures of our own dependencies are 503 without a challenge, and
//! a proof key over its quota is 429 (RFC 6585 §4) without one; both carry `Retry-After`.
//!
//! The result is plain data, so every adapter (tower, actix) writes the same response.
//!
//! ```
//! use tower_pop::{Challenge, PopConfig, Verifier, PopRequest};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let verifier = Verifier::new(PopConfig::builder()
//!     .public_origin("https://resource.example.org")
//!     .issuer("https://server.example.com")
//!     .audience("https://resource.example.org")
//!     .dpop_algorithms([tower_pop::Algorithm::ES256, tower_pop::Algorithm::PS256])
//!     .jwks_json(r#"{"keys":[]}"#)
//!     .build().unwrap());
//! let error = verifier.verify(&PopRequest::new("GET", "/")).await.unwrap_err();
//! let challenge: Challenge = verifier.challenge(&error);
//! assert_eq!(challenge.status(), 401);
//! assert_eq!(challenge.www_authenticate(), Some(r#"DPoP algs="ES256 PS256""#));
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use crate::error::{AuthScheme, PopError, PopErrorKind};
use crate::jose::Algorithm;

/// Headers a response must carry beyond the challenge: a fresh `DPoP-Nonce` (RFC 9449 §8.2,
/// §9) and `Cache-Control: no-store`, which goes with every nonce and with every decision made
/// from a certificate forwarded by a proxy (so no cache serves it to another client). Both the
/// refusals ([`Challenge::headers`]) and the verified requests
/// ([`Verified::response_headers`](crate::extension::Verified::response_headers)) carry one.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ResponseHeaders {
    dpop_nonce: Option<Arc<str>>,
    no_store: bool,
    retry_after: bool,
    /// FAPI 2.0 `x-fapi-interaction-id`.
    interaction_id: Option<Arc<str>>,
    /// RFC 9421 §5.1 `Accept-Signature`, on refusals for a missing or unfit request signature.
    accept_signature: Option<Arc<str>>,
}

// A nonce is a credential-like value: Debug says only whether there is one.
impl fmt::Debug for ResponseHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseHeaders")
            .field("dpop_nonce", &self.dpop_nonce.is_some())
            .field("no_store", &self.no_store)
            .field("retry_after", &self.retry_after)
            .field("interaction_id", &self.interaction_id)
            .field("accept_signature", &self.accept_signature)
            .finish()
    }
}

impl ResponseHeaders {
    pub(crate) fn with_nonce(mut self, nonce: Arc<str>) -> Self {
        self.dpop_nonce = Some(nonce);
        self.no_store = true;
        self
    }

    pub(crate) fn with_no_store(mut self, no_store: bool) -> Self {
        self.no_store |= no_store;
        self
    }

    pub(crate) fn with_interaction_id(mut self, id: Option<Arc<str>>) -> Self {
        self.interaction_id = id;
        self
    }

    #[cfg(feature = "httpsig")]
    pub(crate) fn with_accept_signature(mut self, value: Arc<str>) -> Self {
        self.accept_signature = Some(value);
        self
    }

    /// The `Accept-Signature` to send (RFC 9421 §5.1): what a request signature must cover.
    #[must_use]
    pub fn accept_signature(&self) -> Option<&str> {
        self.accept_signature.as_deref()
    }

    /// The `x-fapi-interaction-id` to send, with the FAPI 2.0 profile on.
    #[must_use]
    pub fn interaction_id(&self) -> Option<&str> {
        self.interaction_id.as_deref()
    }

    /// `Retry-After` in seconds, on 503 answers (our own dependency failed) and 429 answers (a
    /// proof key over its quota).
    #[must_use]
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after.then_some(RETRY_AFTER_SECS)
    }

    /// The `DPoP-Nonce` value to send, if any.
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    /// Whether the response must carry `Cache-Control: no-store`.
    #[must_use]
    pub fn no_store(&self) -> bool {
        self.no_store
    }

    /// The headers as lowercase `(name, value)` pairs, for adapters that write them with their
    /// own types (actix-web).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let nonce = self.dpop_nonce.as_deref().map(|n| ("dpop-nonce", n));
        let no_store = self.no_store.then_some(("cache-control", "no-store"));
        // A retry after a short pause is the right move for every 503 and 429 we send.
        let retry = self.retry_after.then_some(("retry-after", RETRY_AFTER));
        let interaction = self
            .interaction_id
            .as_deref()
            .map(|id| ("x-fapi-interaction-id", id));
        let accept = self
            .accept_signature
            .as_deref()
            .map(|value| ("accept-signature", value));
        nonce
            .into_iter()
            .chain(no_store)
            .chain(retry)
            .chain(interaction)
            .chain(accept)
    }

    /// Set these headers on `response`, replacing any of the same names.
    pub fn apply<B>(&self, response: &mut http::Response<B>) {
        for (name, value) in self.iter() {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                response
                    .headers_mut()
                    .insert(http::HeaderName::from_static(name), value);
            }
        }
    }
}

/// What gRPC percent-encodes in `grpc-message`: controls, space and the characters outside
/// printable ASCII that its spec names (as tonic does).
const GRPC_MESSAGE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'?')
    .add(b'{')
    .add(b'}');

/// The `Retry-After` of our 503 answers, in seconds.
const RETRY_AFTER_SECS: u32 = 2;
/// [`RETRY_AFTER_SECS`] as the header value.
const RETRY_AFTER: &str = "2";

/// How a refusal is written on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    status: u16,
    www_authenticate: Option<String>,
    headers: ResponseHeaders,
    /// The error's fixed description: a gRPC refusal's `grpc-message`.
    message: &'static str,
}

impl Challenge {
    /// The HTTP status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `WWW-Authenticate` value, absent for server-side failures (503).
    #[must_use]
    pub fn www_authenticate(&self) -> Option<&str> {
        self.www_authenticate.as_deref()
    }

    /// The other headers the refusal carries (`DPoP-Nonce`, `Cache-Control`).
    #[must_use]
    pub fn headers(&self) -> &ResponseHeaders {
        &self.headers
    }

    pub(crate) fn with_headers(mut self, headers: ResponseHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// The refusal as an `http` 1.x response: this status, this `WWW-Authenticate` and
    /// [`headers`](Self::headers), an empty body. (actix-web, on `http` 0.2, writes the same
    /// values with its own types.)
    #[must_use]
    pub fn to_response<B: Default>(&self) -> http::Response<B> {
        let mut response = http::Response::new(B::default());
        self.apply(&mut response);
        response
    }

    /// Set this status, `WWW-Authenticate` and [`headers`](Self::headers) on `response`,
    /// replacing any the response had: whatever body a custom rejection builds, the protocol
    /// headers stay right.
    pub fn apply<B>(&self, response: &mut http::Response<B>) {
        self.headers.apply(response);
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::UNAUTHORIZED);
        let headers = response.headers_mut();
        headers.remove(http::header::WWW_AUTHENTICATE);
        if let Some(value) = self
            .www_authenticate
            .as_deref()
            .and_then(|v| http::HeaderValue::from_str(v).ok())
        {
            headers.insert(http::header::WWW_AUTHENTICATE, value);
        }
    }

    /// The gRPC status code of this refusal (gRPC's HTTP/2 protocol and status codes):
    /// `UNAUTHENTICATED` (16) for a 401, `PERMISSION_DENIED` (7) for a 403
    /// (`insufficient_scope`), `INVALID_ARGUMENT` (3) for a 400, `RESOURCE_EXHAUSTED` (8) for a
    /// 413 or 429, `UNAVAILABLE` (14) for a 503.
    #[must_use]
    pub fn grpc_code(&self) -> u8 {
        match self.status {
            401 => 16,
            403 => 7,
            400 => 3,
            413 | 429 => 8,
            503 => 14,
            _ => 13,
        }
    }

    /// Write this refusal as a gRPC trailers-only response on `response`: HTTP status 200,
    /// `content-type: application/grpc`, `grpc-status` ([`grpc_code`](Self::grpc_code)),
    /// `grpc-message` (the error's fixed description, percent-encoded: never a token or proof),
    /// and the same `WWW-Authenticate`, `DPoP-Nonce`, `Retry-After` and other headers as over
    /// HTTP, as response metadata. The body must be empty (end of stream), as the default
    /// rejection's is: a gRPC client reads a status only from a response without messages.
    pub fn apply_grpc<B>(&self, response: &mut http::Response<B>) {
        self.apply(response);
        *response.status_mut() = http::StatusCode::OK;
        let headers = response.headers_mut();
        headers.remove(http::header::CONTENT_LENGTH);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert(
            "grpc-status",
            http::HeaderValue::from(u16::from(self.grpc_code())),
        );
        let message = percent_encoding::utf8_percent_encode(self.message, GRPC_MESSAGE).to_string();
        if let Ok(message) = http::HeaderValue::from_str(&message) {
            headers.insert("grpc-message", message);
        }
    }

    pub(crate) fn for_error(error: &PopError, params: &ChallengeParams) -> Self {
        let kind = error.kind();
        let status = error.status();
        let Some(code) = error.error_code() else {
            let www_authenticate = (status == 401).then(|| params.render(None, kind, None));
            let headers = ResponseHeaders {
                retry_after: status == 503 || status == 429,
                ..ResponseHeaders::default()
            };
            return Self {
                status,
                www_authenticate,
                headers,
                message: kind.description(),
            };
        };
        Self {
            status,
            www_authenticate: Some(params.render(
                Some((code, error.scheme())),
                kind,
                error.required_scope(),
            )),
            headers: ResponseHeaders::default(),
            message: kind.description(),
        }
    }
}

impl PopError {
    /// The HTTP status for this error: 400, 401, 403, 413, 429 or 503.
    ///
    /// A proof key over its quota is 429 (RFC 6585 §4) with `Retry-After`, not 401
    /// `invalid_dpop_proof`: the proof is valid, and a 401 would tell the client to sign a new
    /// proof and retry at once, which is the load being refused; 429 tells it to wait.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self.kind() {
            PopErrorKind::InvalidRequest | PopErrorKind::MalformedSignature => 400,
            PopErrorKind::BodyTooLarge => 413,
            PopErrorKind::InsufficientScope => 403,
            PopErrorKind::ProofKeyOverQuota => 429,
            k if k.is_server_fault() => 503,
            _ => 401,
        }
    }

    /// The `error` code of the challenge (RFC 6750 §3.1, RFC 9449 §7.1, §12.2), or `None` when
    /// the challenge carries no error (no credentials, or a server-side failure).
    #[must_use]
    pub fn error_code(&self) -> Option<&'static str> {
        use PopErrorKind::*;
        match self.kind() {
            MissingCredentials
            | ReplayStoreUnavailable
            | ReplayStoreFull
            | ProofKeyOverQuota
            | KeySetUnavailable
            | IntrospectionUnavailable
            | BodyTooLarge => None,
            InvalidRequest | MalformedSignature => Some("invalid_request"),
            TokenInvalid | BoundTokenAsBearer | BearerNotAllowed | TokenNotDpopBound
            | UnsupportedBinding | KeyBindingMismatch | CertBindingMismatch => {
                Some("invalid_token")
            }
            MissingProof | MultipleProofs | MalformedProof | UnsupportedAlgorithm
            | InvalidProofKey | BadSignature | HtmMismatch | HtuMismatch | IatOutOfWindow
            | AthMismatch | Replayed => Some("invalid_dpop_proof"),
            NonceRequired | InvalidNonce => Some("use_dpop_nonce"),
            InsufficientScope => Some("insufficient_scope"),
            // RFC 9421 defines no challenge; an extension code (RFC 6749 §8.5) names the
            // failure, and `error_description` says which check failed.
            MissingSignature
            | SignatureCoverage
            | InvalidSignature
            | SignatureExpired
            | ContentDigestMismatch
            | SignatureReplayed => Some("invalid_signature"),
        }
    }
}

/// What the challenges advertise, fixed at configuration time.
#[derive(Debug, Clone)]
pub(crate) struct ChallengeParams {
    algs: String,
    realm: Option<String>,
    /// Whether bearer tokens can succeed: then `Bearer` is offered to every request.
    allow_bearer: bool,
    /// RFC 9728 §5.1: where the protected resource metadata is.
    resource_metadata: Option<String>,
}

impl ChallengeParams {
    pub(crate) fn new(algs: &[Algorithm], realm: Option<&str>, allow_bearer: bool) -> Self {
        let algs = algs
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            algs,
            realm: realm.map(str::to_owned),
            allow_bearer,
            resource_metadata: None,
        }
    }

    pub(crate) fn with_resource_metadata(mut self, url: Option<String>) -> Self {
        self.resource_metadata = url;
        self
    }

    fn render(
        &self,
        error: Option<(&str, Option<AuthScheme>)>,
        kind: PopErrorKind,
        scope: Option<&str>,
    ) -> String {
        let used = error.and_then(|(_, used)| used);
        let carries = |scheme: AuthScheme| match error {
            Some((code, used)) if used.is_none_or(|u| u == scheme) => Some(code),
            _ => None,
        };
        // An error whose scheme cannot be told concerns a Bearer request too.
        let bearer = self.allow_bearer
            || used == Some(AuthScheme::Bearer)
            || (error.is_some() && used.is_none());
        let challenge = |scheme: AuthScheme| {
            let mut params = Vec::new();
            if let Some(realm) = &self.realm {
                params.push(format!("realm=\"{realm}\""));
            }
            if let Some(code) = carries(scheme) {
                params.push(format!("error=\"{code}\""));
                params.push(format!("error_description=\"{}\"", kind.description()));
                if let Some(scope) = scope {
                    params.push(format!("scope=\"{scope}\""));
                }
            }
            if scheme == AuthScheme::Dpop {
                params.push(format!("algs=\"{}\"", self.algs));
            }
            if let Some(url) = &self.resource_metadata {
                params.push(format!("resource_metadata=\"{url}\""));
            }
            if params.is_empty() {
                scheme.as_str().to_owned()
            } else {
                format!("{} {}", scheme.as_str(), params.join(", "))
            }
        };
        match (used, bearer) {
            (Some(AuthScheme::Bearer), _) => format!(
                "{}, {}",
                challenge(AuthScheme::Bearer),
                challenge(AuthScheme::Dpop)
            ),
            (_, true) => format!(
                "{}, {}",
                challenge(AuthScheme::Dpop),
                challenge(AuthScheme::Bearer)
            ),
            (_, false) => challenge(AuthScheme::Dpop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(allow_bearer: bool) -> ChallengeParams {
        ChallengeParams::new(&[Algorithm::ES256, Algorithm::PS256], None, allow_bearer)
    }

    fn www_with(
        kind: PopErrorKind,
        scheme: Option<AuthScheme>,
        allow_bearer: bool,
    ) -> (u16, Option<String>) {
        let error = match scheme {
            Some(s) => PopError::with_scheme(kind, s),
            None => PopError::new(kind),
        };
        let c = Challenge::for_error(&error, &params(allow_bearer));
        (c.status, c.www_authenticate)
    }

    fn www(kind: PopErrorKind, scheme: Option<AuthScheme>) -> (u16, Option<String>) {
        www_with(kind, scheme, false)
    }

    #[test]
    fn no_credentials_offers_dpop_first_and_bearer_only_when_it_can_succeed() {
        assert_eq!(
            www(PopErrorKind::MissingCredentials, None),
            (401, Some(r#"DPoP algs="ES256 PS256""#.into()))
        );
        assert_eq!(
            www_with(PopErrorKind::MissingCredentials, None, true),
            (401, Some(r#"DPoP algs="ES256 PS256", Bearer"#.into()))
        );
    }

    #[test]
    fn a_bearer_request_gets_the_bearer_challenge_first_figure_18() {
        for allow_bearer in [false, true] {
            // 401 invalid_token in the Bearer challenge only, none in DPoP's (BRR-06, BRR-08).
            assert_eq!(
                www_with(PopErrorKind::TokenInvalid, Some(AuthScheme::Bearer), allow_bearer),
                (401, Some(r#"Bearer error="invalid_token", error_description="invalid access token", DPoP algs="ES256 PS256""#.into()))
            );
        }
        // A DPoP-bound token sent as Bearer (RFC 9449 §7.2).
        assert_eq!(
            www(PopErrorKind::BoundTokenAsBearer, Some(AuthScheme::Bearer))
                .1
                .unwrap()
                .split_once(' ')
                .unwrap()
                .0,
            "Bearer"
        );
    }

    #[test]
    fn multiple_methods_error_in_both_dpop_first_figure_19() {
        assert_eq!(
            www(PopErrorKind::InvalidRequest, None),
            (400, Some(r#"DPoP error="invalid_request", error_description="malformed or multiple credentials", algs="ES256 PS256", Bearer error="invalid_request", error_description="malformed or multiple credentials""#.into()))
        );
    }

    #[test]
    fn a_dpop_request_gets_the_dpop_challenge_first_figure_20() {
        // A failed DPoP request: error and algs in the DPoP challenge (DPOP-23).
        assert_eq!(
            www(PopErrorKind::KeyBindingMismatch, Some(AuthScheme::Dpop)),
            (401, Some(r#"DPoP error="invalid_token", error_description="invalid DPoP key binding", algs="ES256 PS256""#.into()))
        );
        assert_eq!(
            www_with(PopErrorKind::NonceRequired, Some(AuthScheme::Dpop), true),
            (401, Some(r#"DPoP error="use_dpop_nonce", error_description="DPoP nonce required", algs="ES256 PS256", Bearer"#.into()))
        );
    }

    #[test]
    fn server_faults_are_503_without_challenge() {
        assert_eq!(
            www(PopErrorKind::ReplayStoreUnavailable, Some(AuthScheme::Dpop)),
            (503, None)
        );
        assert_eq!(
            www(PopErrorKind::ReplayStoreFull, Some(AuthScheme::Dpop)),
            (503, None)
        );
    }

    #[test]
    fn key_over_quota_is_429_with_retry_after_and_no_challenge() {
        assert_eq!(
            www(PopErrorKind::ProofKeyOverQuota, Some(AuthScheme::Dpop)),
            (429, None)
        );
        let p = ChallengeParams::new(&[Algorithm::ES256], None, false);
        let c = Challenge::for_error(&PopError::new(PopErrorKind::ProofKeyOverQuota), &p);
        assert_eq!(c.headers().retry_after(), Some(2));
        assert!(!PopErrorKind::ProofKeyOverQuota.is_server_fault());
    }

    #[test]
    fn realm_in_every_challenge_brr_02() {
        let p = ChallengeParams::new(&[Algorithm::ES256], Some("example"), true);
        let c = Challenge::for_error(&PopError::new(PopErrorKind::MissingCredentials), &p);
        assert_eq!(
            c.www_authenticate(),
            Some(r#"DPoP realm="example", algs="ES256", Bearer realm="example""#)
        );
    }
}
