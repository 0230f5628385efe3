//! What a handler receives after verification: the token's claims, which binding was proven,
//! and the key or certificate thumbprint. The layer puts a [`Verified`] into the request
//! extensions; the `axum-pop` and `actix-pop` extractors read it from there.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::challenge::{Challenge, ChallengeParams};
use crate::error::{AuthScheme, PopError, PopErrorKind};

/// Which proof of possession the request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Binding {
    /// A DPoP proof signed by the key the token names in `cnf.jkt` (RFC 9449).
    Dpop,
    /// The TLS client certificate the token names in `cnf["x5t#S256"]` (RFC 8705).
    Mtls,
    /// Both: the token named a key and a certificate, and the request proved both.
    DpopAndMtls,
    /// None: an unbound bearer token, accepted only with `allow_bearer`.
    Bearer,
}

impl Binding {
    /// A short lowercase name: `dpop`, `mtls`, `dpop+mtls` or `bearer`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpop => "dpop",
            Self::Mtls => "mtls",
            Self::DpopAndMtls => "dpop+mtls",
            Self::Bearer => "bearer",
        }
    }
}

/// The claims could not be read as the requested type.
#[derive(Debug)]
pub struct ClaimsError(serde_json::Error);

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token claims do not match the expected type: {}", self.0)
    }
}

impl std::error::Error for ClaimsError {}

/// Put into the request extensions instead of [`Verified`] when the layer lets a request
/// without any credentials through ([`crate::RequirePopLayer::allow_anonymous`]). Extractors use
/// it to tell "anonymous" from "the layer is missing" (a server bug), and a handler that does
/// require credentials answers with its [`challenge`](Self::challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anonymous {
    pub(crate) challenge: Challenge,
}

impl Anonymous {
    /// A marker carrying the no-credentials `challenge`, for adapters that run the verifier
    /// themselves (actix-pop).
    #[must_use]
    pub fn from_challenge(challenge: Challenge) -> Self {
        Self { challenge }
    }

    /// The no-credentials challenge: 401 with `Bearer` and `DPoP` challenges, no `error`.
    #[must_use]
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }
}

/// A verified request: the access token's claims and the binding that was proven.
#[derive(Clone)]
pub struct Verified {
    pub(crate) claims: Arc<Map<String, Value>>,
    pub(crate) binding: Binding,
    pub(crate) jkt: Option<String>,
    pub(crate) x5t_s256: Option<String>,
    pub(crate) scheme: AuthScheme,
    pub(crate) challenge: Arc<ChallengeParams>,
}

impl Verified {
    /// The token's claims as a JSON object.
    #[must_use]
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The claims deserialised into `T`.
    ///
    /// # Errors
    /// When the claims do not fit `T`.
    pub fn claims_as<T: DeserializeOwned>(&self) -> Result<T, ClaimsError> {
        T::deserialize(Value::Object((*self.claims).clone())).map_err(ClaimsError)
    }

    /// The `sub` claim.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// Which binding was proven.
    #[must_use]
    pub fn binding(&self) -> Binding {
        self.binding
    }

    /// The RFC 7638 thumbprint of the proven DPoP key (the token's `cnf.jkt`).
    #[must_use]
    pub fn jkt(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    /// The `x5t#S256` of the proven client certificate.
    #[must_use]
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.x5t_s256.as_deref()
    }

    /// The scheme the client used.
    #[must_use]
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// How to refuse a request whose token is valid but whose claims do not fit what the
    /// handler needs ([`claims_as`](Self::claims_as) failed): 401 `invalid_token` in the scheme
    /// the client used, from the same mapping as every other refusal.
    #[must_use]
    pub fn claims_rejection(&self) -> Challenge {
        let error = PopError::with_scheme(PopErrorKind::TokenInvalid, self.scheme);
        Challenge::for_error(&error, &self.challenge)
    }
}

// Claims may hold personal data; Debug shows only which binding was proven.
impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}
