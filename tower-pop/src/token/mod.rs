//! Access tokens: JWTs per RFC 9068 (this release), their confirmation (`cnf`) claim, and a
//! bounded cache of verified tokens.
//!
//! Only JWT access tokens signed by the configured issuer's keys are accepted; an opaque token
//! gets `invalid_token` unless introspection (RFC 7662) is configured. A verified token is
//! cached, keyed by the token itself ([`cache`]), until its `exp` (plus leeway) or a maximum age, whichever is first,
//! in an evicting cache bounded by count and bytes (`cache`), so a token reused on many requests
//! costs one signature verification; the DPoP proof is still verified on every request.

pub(crate) mod cache;
#[cfg(feature = "discovery")]
pub mod discovery;
#[cfg(any(feature = "discovery", feature = "introspection"))]
pub(crate) mod http;
#[cfg(feature = "introspection")]
pub mod introspection;
pub(crate) mod issuers;
pub(crate) mod jwks;
pub(crate) mod jwt;
pub(crate) mod keys;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::dpop::known_key::KnownKey;
use crate::error::PopErrorKind;
use crate::jose::b64url_decode;

/// What a token's `cnf` claim (RFC 7800 §3.1) binds it to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Confirmation {
    /// `cnf.jkt` (RFC 9449 §6.1).
    pub(crate) jkt: Option<String>,
    /// `cnf["x5t#S256"]` (RFC 8705 §3.1).
    pub(crate) x5t_s256: Option<String>,
    /// The owner of the replay entries of proofs by the `jkt` key ([`crate::replay::owner_key`]),
    /// computed once per token rather than once per proof; zero without a `jkt`.
    pub(crate) jkt_owner: [u8; 32],
    /// The `jkt` key itself, once a proof has shown it.
    pub(crate) jkt_key: KnownKey,
}

impl Confirmation {
    pub(crate) fn is_bound(&self) -> bool {
        self.jkt.is_some() || self.x5t_s256.is_some()
    }
}

/// A SHA-256 thumbprint as written in `cnf`: exactly 43 base64url characters (RFC 9449 §6.1, RFC 8705 §3.1).
fn thumbprint_member(cnf: &Map<String, Value>, name: &str) -> Result<Option<String>, PopErrorKind> {
    match cnf.get(name) {
        None => Ok(None),
        Some(Value::String(s))
            if s.len() == 43 && b64url_decode(s).is_some_and(|b| b.len() == 32) =>
        {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(PopErrorKind::TokenInvalid),
    }
}

/// Confirmation methods (RFC 7800 §3.2-3.5 and the `kid` of §3.4) this crate cannot verify.
const UNVERIFIABLE_METHODS: [&str; 4] = ["jwk", "jwe", "jku", "kid"];

/// Read `cnf` from token claims (or an introspection response).
///
/// - absent: unbound;
/// - not an object, or naming more than one of `jwk`/`jwe`/`jku` (RFC 7800 §3.1), or a
///   malformed thumbprint: [`PopErrorKind::TokenInvalid`];
/// - an object naming a method this server cannot verify (`jwk`, `jwe`, `jku`, `kid`), even
///   next to `jkt` or `x5t#S256`, or with neither of those:
///   [`PopErrorKind::UnsupportedBinding`], never bearer (RFC 9449 §6, RFC 7800 §3); unregistered
///   members are ignored.
pub(crate) fn confirmation(claims: &Map<String, Value>) -> Result<Confirmation, PopErrorKind> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(Confirmation::default());
    };
    let cnf = cnf.as_object().ok_or(PopErrorKind::TokenInvalid)?;
    // RFC 7800 §3.1: at most one of `jwk`, `jwe`, `jku`; more is a malformed claim.
    if ["jwk", "jwe", "jku"]
        .iter()
        .filter(|m| cnf.contains_key(**m))
        .count()
        > 1
    {
        return Err(PopErrorKind::TokenInvalid);
    }
    // RFC 7800 §3 methods we cannot verify: a token naming one is never partly honoured, even
    // next to `jkt` or `x5t#S256` (the issuer meant that key too). Unregistered members are
    // ignored.
    if UNVERIFIABLE_METHODS.iter().any(|m| cnf.contains_key(*m)) {
        return Err(PopErrorKind::UnsupportedBinding);
    }
    let jkt = thumbprint_member(cnf, "jkt")?;
    let confirmation = Confirmation {
        jkt_owner: jkt.as_deref().map_or([0; 32], crate::replay::owner_key),
        jkt_key: KnownKey::default(),
        jkt,
        x5t_s256: thumbprint_member(cnf, "x5t#S256")?,
    };
    if confirmation.is_bound() {
        Ok(confirmation)
    } else {
        Err(PopErrorKind::UnsupportedBinding)
    }
}

/// A verified access token.
#[derive(Clone)]
pub(crate) struct TokenInfo {
    pub(crate) claims: Arc<Map<String, Value>>,
    pub(crate) confirmation: Confirmation,
    /// The token may be used while `now < valid_until` (its `exp` plus leeway, exclusive).
    pub(crate) valid_until: u64,
    /// ... and while `now >= not_before` (its `nbf` minus leeway).
    pub(crate) not_before: u64,
    /// The token's SHA-256: the `ath` its proofs carry (RFC 9449 §4.2), computed once, when
    /// the token was verified, and cached with it.
    pub(crate) token_hash: [u8; 32],
}

// Claims may be personal data: Debug shows only the validity window and the binding kinds.
impl std::fmt::Debug for TokenInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenInfo")
            .field("valid_until", &self.valid_until)
            .field("dpop_bound", &self.confirmation.jkt.is_some())
            .field("certificate_bound", &self.confirmation.x5t_s256.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::json::parse_json_object;

    fn cnf(json: &str) -> Result<Confirmation, PopErrorKind> {
        confirmation(&parse_json_object(json.as_bytes()).expect("json"))
    }

    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    #[test]
    fn reads_jkt_and_x5t() {
        let c = cnf(&format!(r#"{{"cnf":{{"jkt":"{JKT}","foo":1}}}}"#)).expect("ok");
        assert_eq!(c.jkt.as_deref(), Some(JKT));
        // TV-12: the RFC 9440 Appendix A certificate's thumbprint.
        let c = cnf(r#"{"cnf":{"x5t#S256":"v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes"}}"#)
            .expect("ok");
        assert!(c.x5t_s256.is_some() && c.jkt.is_none());
        // TV-11: the RFC 8705 §3.1 example value ends in "2", whose low bits are not zero: no
        // SHA-256 digest encodes that way, so it can never match and is refused as malformed.
        assert_eq!(
            cnf(r#"{"cnf":{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}"#),
            Err(PopErrorKind::TokenInvalid)
        );
        assert_eq!(cnf("{}"), Ok(Confirmation::default()));
    }

    #[test]
    fn malformed_or_unsupported_cnf_never_falls_back_to_bearer() {
        assert_eq!(cnf(r#"{"cnf":"abc"}"#), Err(PopErrorKind::TokenInvalid));
        assert_eq!(cnf(r#"{"cnf":["a"]}"#), Err(PopErrorKind::TokenInvalid));
        assert_eq!(
            cnf(r#"{"cnf":{"jwk":{},"jku":"https://x"}}"#),
            Err(PopErrorKind::TokenInvalid)
        );
        assert_eq!(
            cnf(r#"{"cnf":{"kid":"x"}}"#),
            Err(PopErrorKind::UnsupportedBinding)
        );
        // An unverifiable method next to one we can check: never partly honoured.
        for other in [
            r#""jwk":{}"#,
            r#""kid":"k""#,
            r#""jku":"https://x""#,
            r#""jwe":"a.b.c.d.e""#,
        ] {
            assert_eq!(
                cnf(&format!(r#"{{"cnf":{{"jkt":"{JKT}",{other}}}}}"#)),
                Err(PopErrorKind::UnsupportedBinding),
                "{other}"
            );
        }
        // cnf.jkt is compared exactly: padded, or 42 characters, is malformed (DPOP-17).
        assert_eq!(
            cnf(&format!(r#"{{"cnf":{{"jkt":"{JKT}="}}}}"#)),
            Err(PopErrorKind::TokenInvalid)
        );
        assert_eq!(
            cnf(&format!(r#"{{"cnf":{{"jkt":"{}"}}}}"#, &JKT[..42])),
            Err(PopErrorKind::TokenInvalid)
        );
    }
}
