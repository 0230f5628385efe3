//! What a handler receives after verification: the token's claims, which binding was proven,
//! and the key or certificate thumbprint. The layer puts a [`Verified`] (or, for an allowed
//! anonymous request, an [`Anonymous`]) into the request extensions; [`Auth::extract`] turns
//! what it finds there into the handler's view or the one [`AuthRejection`], and the `axum-pop`
//! and `actix-pop` extractors only wrap that.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::challenge::{Challenge, ChallengeParams, ResponseHeaders};
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

/// The claims could not be read as the requested type. It keeps no detail: serde's message can
/// quote a claim value, which must not reach a log through `Display` or `Debug`.
#[derive(Debug)]
pub struct ClaimsError(());

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("token claims do not match the expected type")
    }
}

impl std::error::Error for ClaimsError {}

/// Put into the request extensions instead of [`Verified`] when the layer lets a request
/// without any credentials through ([`crate::policy::PolicyBuilder::allow_anonymous`]). Extractors use
/// it to tell "anonymous" from "the layer is missing" (a server bug), and a handler that does
/// require credentials answers with its [`challenge`](Self::challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anonymous {
    pub(crate) challenge: Challenge,
}

impl Anonymous {
    /// The no-credentials challenge: 401 with the `DPoP` challenge (and `Bearer` where bearer
    /// tokens are allowed), no `error`.
    #[must_use]
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The headers the response to the anonymous request carries (with the FAPI 2.0 profile,
    /// its `x-fapi-interaction-id`).
    #[must_use]
    pub fn response_headers(&self) -> &crate::challenge::ResponseHeaders {
        self.challenge.headers()
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
    pub(crate) response_headers: ResponseHeaders,
    /// When the authorization ends: the token's `exp`.
    pub(crate) expires_at: u64,
    /// ... and how to learn that it ended before (a revocation), with a recheck interval.
    #[cfg(feature = "lifetime")]
    pub(crate) lifetime: crate::lifetime::Lifetime,
    /// The proof's key as its token remembers it, for a request signature by the same key.
    #[cfg_attr(not(feature = "httpsig"), allow(dead_code))]
    pub(crate) proven: Option<crate::dpop::known_key::ProvenKey>,
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
        // Read through a reference: one copy of the claims into `T`, not a copy into a `Value`
        // and another out of it.
        T::deserialize(&*self.claims).map_err(|_| ClaimsError(()))
    }

    /// The `sub` claim.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// When this authorization ends, in seconds since the Unix epoch: the token's `exp` (or the
    /// introspection answer's; without one, the end of the cached answer). A request is judged once; a
    /// long-lived stream or call opened by it must end by then (a WebSocket with close code 1008,
    /// a gRPC stream with `UNAUTHENTICATED`).
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// When this authorization ends: at [`expires_at`](Self::expires_at), or, for a token
    /// checked by introspection with a recheck interval, when it is revoked. For streams:
    /// [`until_ended`](crate::lifetime::until_ended), [`Lifetime::ended`](crate::lifetime::Lifetime::ended).
    #[cfg(feature = "lifetime")]
    #[must_use]
    pub fn lifetime(&self) -> crate::lifetime::Lifetime {
        self.lifetime.clone()
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

    /// Headers the response to this request must carry: a fresh `DPoP-Nonce` when the
    /// presented one is due for refresh (RFC 9449 §8.2), with `Cache-Control: no-store`.
    /// The tower layer and the actix middleware add them to the handler's response.
    #[must_use]
    pub fn response_headers(&self) -> &ResponseHeaders {
        &self.response_headers
    }

    /// Whether this result came from `verifier` (the same instance): a second layer of the
    /// same verifier on one route reuses it instead of recording the proof's `jti` again.
    pub(crate) fn is_from(&self, verifier_params: &Arc<ChallengeParams>) -> bool {
        Arc::ptr_eq(&self.challenge, verifier_params)
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

/// The token's claims as a JSON object: the default claims type of [`Auth`], a copy of the
/// claims made for each request ([`SharedClaims`] shares them instead).
pub type Claims = Map<String, Value>;

/// The token's claims as a JSON object, shared with the verifier's token cache rather than
/// copied: `Auth<SharedClaims>` (`PopAuth<SharedClaims>` in the adapters) costs a reference
/// count per request where [`Claims`] costs a copy of every claim (about a microsecond for a
/// typical token). Read-only: it dereferences to the object, and serialises as it. Made only
/// from a verified request ([`FromClaims`]), never deserialised.
///
/// ```
/// use tower_pop::{Auth, SharedClaims};
///
/// // With no verified request the extraction fails as for any claims type.
/// assert!(Auth::<SharedClaims>::extract(None, None).is_err());
/// ```
#[derive(Clone, PartialEq)]
pub struct SharedClaims(Arc<Map<String, Value>>);

impl std::ops::Deref for SharedClaims {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

// As `Claims` (the object itself) prints: the handler chose to hold them.
impl fmt::Debug for SharedClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for SharedClaims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// How a handler's claims type `C` of [`Auth<C>`] is made from a verified request: any
/// `DeserializeOwned` type (such as [`Claims`] or your own struct) is deserialised from the
/// claims, a copy; [`SharedClaims`] shares the verifier's claims, no copy.
pub trait FromClaims: Sized {
    /// The claims of `verified` as `Self`.
    ///
    /// # Errors
    /// When the claims do not fit `Self`.
    fn from_verified(verified: &Verified) -> Result<Self, ClaimsError>;
}

impl<T: DeserializeOwned> FromClaims for T {
    fn from_verified(verified: &Verified) -> Result<Self, ClaimsError> {
        verified.claims_as()
    }
}

impl FromClaims for SharedClaims {
    fn from_verified(verified: &Verified) -> Result<Self, ClaimsError> {
        Ok(Self(Arc::clone(&verified.claims)))
    }
}

/// A verified request as a handler sees it: the token's claims as `C`, the binding proven, and
/// the thumbprints. The adapters' `PopAuth<C>` extractors dereference to it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Auth<C = Claims> {
    /// The access token's claims.
    pub claims: C,
    /// Which binding was proven.
    pub binding: Binding,
    /// When this authorization ends (seconds since the Unix epoch), as
    /// [`Verified::expires_at`].
    pub expires_at: u64,
    /// When this authorization ends, revocations included ([`Verified::lifetime`]).
    #[cfg(feature = "lifetime")]
    pub lifetime: crate::lifetime::Lifetime,
    /// The proven DPoP key's RFC 7638 thumbprint (`cnf.jkt`).
    pub jkt: Option<String>,
    /// The proven client certificate's `x5t#S256`.
    pub certificate_thumbprint: Option<String>,
}

/// Why an extractor could not give a handler its [`Auth`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No layer or middleware ran before the handler: a server bug, answered with 500 and the
    /// fixed body [`AuthRejection::MISSING_LAYER_BODY`], never with anonymous access.
    MissingLayer,
    /// The token is valid but its claims do not fit the handler's type: 401 `invalid_token`.
    ClaimsMismatch(Challenge),
    /// The layer let an anonymous request through but this handler needs credentials: 401 with
    /// the no-credentials challenge.
    Anonymous(Challenge),
}

impl AuthRejection {
    /// The body of the 500 answered when the layer or middleware is missing.
    pub const MISSING_LAYER_BODY: &'static str =
        "proof-of-possession extractor used on a route without the tower-pop layer";

    /// The HTTP status: 500 for a missing layer, else the challenge's (401).
    #[must_use]
    pub fn status(&self) -> u16 {
        self.challenge().map_or(500, Challenge::status)
    }

    /// The challenge to answer with, `None` for a missing layer.
    #[must_use]
    pub fn challenge(&self) -> Option<&Challenge> {
        match self {
            Self::MissingLayer => None,
            Self::ClaimsMismatch(c) | Self::Anonymous(c) => Some(c),
        }
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLayer => f.write_str(Self::MISSING_LAYER_BODY),
            Self::ClaimsMismatch(_) => f.write_str("token claims do not fit the handler"),
            Self::Anonymous(_) => f.write_str("no access token"),
        }
    }
}

impl std::error::Error for AuthRejection {}

impl<C: FromClaims> Auth<C> {
    /// What an extractor hands the handler, from what the layer left in the request extensions:
    /// `Ok(Some(auth))` for a verified request, `Ok(None)` for an allowed anonymous one, and a
    /// rejection when the claims do not fit `C` or no layer ran (neither marker present).
    ///
    /// ```
    /// use tower_pop::{Auth, AuthRejection};
    ///
    /// // Neither a `Verified` nor an `Anonymous`: the layer is missing, never anonymous access.
    /// let missing = Auth::<tower_pop::Claims>::extract(None, None).unwrap_err();
    /// assert_eq!(missing, AuthRejection::MissingLayer);
    /// assert_eq!(missing.status(), 500);
    /// ```
    ///
    /// # Errors
    /// [`AuthRejection::MissingLayer`] or [`AuthRejection::ClaimsMismatch`].
    pub fn extract(
        verified: Option<&Verified>,
        anonymous: Option<&Anonymous>,
    ) -> Result<Option<Self>, AuthRejection> {
        match (verified, anonymous) {
            (Some(verified), _) => {
                let claims = C::from_verified(verified)
                    .map_err(|_| AuthRejection::ClaimsMismatch(verified.claims_rejection()))?;
                Ok(Some(Self {
                    claims,
                    binding: verified.binding(),
                    jkt: verified.jkt().map(str::to_owned),
                    certificate_thumbprint: verified.certificate_thumbprint().map(str::to_owned),
                    expires_at: verified.expires_at(),
                    #[cfg(feature = "lifetime")]
                    lifetime: verified.lifetime(),
                }))
            }
            (None, Some(_)) => Ok(None),
            (None, None) => Err(AuthRejection::MissingLayer),
        }
    }

    /// Like [`extract`](Self::extract) for a handler that needs credentials: an anonymous request
    /// is refused with the no-credentials challenge.
    ///
    /// # Errors
    /// Any [`AuthRejection`].
    pub fn require(
        verified: Option<&Verified>,
        anonymous: Option<&Anonymous>,
    ) -> Result<Self, AuthRejection> {
        match (verified, anonymous) {
            (None, Some(anonymous)) => Err(AuthRejection::Anonymous(anonymous.challenge.clone())),
            // `extract` answers `None` only for the case above; fail closed all the same.
            _ => Self::extract(verified, anonymous)?.ok_or(AuthRejection::MissingLayer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(claims: serde_json::Value) -> Verified {
        let serde_json::Value::Object(claims) = claims else {
            panic!("an object")
        };
        Verified {
            claims: Arc::new(claims),
            binding: Binding::Dpop,
            jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
            x5t_s256: None,
            scheme: AuthScheme::Dpop,
            challenge: Arc::new(ChallengeParams::new(
                &[crate::jose::Algorithm::ES256],
                None,
                false,
            )),
            response_headers: ResponseHeaders::default(),
            expires_at: u64::MAX,
            #[cfg(feature = "lifetime")]
            lifetime: crate::lifetime::Lifetime::until(u64::MAX),
            proven: None,
        }
    }

    #[test]
    fn shared_claims_are_the_verifiers_and_claims_a_copy() {
        let verified = verified(serde_json::json!({"sub": "alice", "scope": "read"}));
        let shared = Auth::<SharedClaims>::extract(Some(&verified), None)
            .expect("extracts")
            .expect("verified");
        assert!(
            Arc::ptr_eq(&shared.claims.0, &verified.claims),
            "not copied"
        );
        assert_eq!(shared.claims.get("sub"), Some(&serde_json::json!("alice")));
        assert_eq!(shared.jkt.as_deref(), verified.jkt());
        let copied = Auth::<Claims>::extract(Some(&verified), None)
            .expect("extracts")
            .expect("verified");
        assert_eq!(copied.claims, *verified.claims);
        // Both serialise as the object itself.
        assert_eq!(
            serde_json::to_value(&shared.claims).expect("serialises"),
            serde_json::to_value(&copied.claims).expect("serialises")
        );
        // Another type still gets the claims deserialised, and a mismatch is refused.
        #[derive(serde::Deserialize)]
        struct Sub {
            sub: String,
        }
        let typed = Auth::<Sub>::extract(Some(&verified), None)
            .expect("fits")
            .expect("verified");
        assert_eq!(typed.claims.sub, "alice");
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Missing {
            tenant: String,
        }
        assert!(matches!(
            Auth::<Missing>::extract(Some(&verified), None),
            Err(AuthRejection::ClaimsMismatch(_))
        ));
    }
}
