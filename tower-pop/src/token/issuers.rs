//! Several trusted issuers (RFC 8725 §3.8): a token is routed by the `iss` it claims to that
//! issuer's keys only, and checked there again after its signature.

use std::collections::HashMap;

use serde_json::Value;

use crate::credentials::MAX_TOKEN_LEN;
use crate::jose::b64url_decode;
use crate::jose::json::parse_json_object;

/// The `iss` claim of a compact JWS, read **without** verifying it: only to choose whose keys
/// to verify it with. `None` for anything that is not a JWS whose payload is a JSON object
/// with a string `iss`.
pub(crate) fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let mut claims = parse_json_object(&b64url_decode(payload)?)?;
    match claims.remove("iss") {
        Some(Value::String(iss)) => Some(iss),
        _ => None,
    }
}

/// A second issuer with the same identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DuplicateIssuer(pub(crate) String);

/// Several trusted issuers, each with its own verification state `V` (for the verifier: one
/// `JwtValidator` per issuer, holding that issuer's audience and [`KeySource`]).
///
/// RFC 8725 §3.8: a token is routed by the `iss` it claims, read before the signature is
/// checked, to that issuer's keys only; the validator then checks the signature with those
/// keys and `iss` again (exact match), so a token can never be verified with another issuer's
/// key, and a token naming an untrusted issuer is refused without any key lookup.
#[derive(Debug)]
pub(crate) struct TrustedIssuers<V> {
    by_issuer: HashMap<String, V>,
}

impl<V> Default for TrustedIssuers<V> {
    fn default() -> Self {
        Self {
            by_issuer: HashMap::new(),
        }
    }
}

impl<V> TrustedIssuers<V> {
    /// Trust `issuer` (compared byte for byte).
    pub(crate) fn insert(&mut self, issuer: String, value: V) -> Result<(), DuplicateIssuer> {
        if self.by_issuer.contains_key(&issuer) {
            return Err(DuplicateIssuer(issuer));
        }
        self.by_issuer.insert(issuer, value);
        Ok(())
    }

    /// The state of the issuer `token` claims; `None` when it claims none, or one not trusted
    /// (the token is invalid: 401). The claim is unverified: the caller must verify the token
    /// with the returned state, which checks `iss` again.
    pub(crate) fn route(&self, token: &str) -> Option<&V> {
        self.by_issuer.get(&unverified_issuer(token)?)
    }

    /// The state of the only issuer (or of any one, with several).
    pub(crate) fn first(&self) -> Option<&V> {
        self.by_issuer.values().next()
    }

    /// How many issuers are trusted.
    pub(crate) fn len(&self) -> usize {
        self.by_issuer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::b64url;

    fn jws(payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            b64url(br#"{"alg":"ES256"}"#),
            b64url(payload.as_bytes())
        )
    }

    #[test]
    fn routes_by_claimed_issuer_only_jose_07() {
        let mut issuers = TrustedIssuers::default();
        issuers
            .insert("https://a.example".to_owned(), "A")
            .expect("new");
        issuers
            .insert("https://b.example".to_owned(), "B")
            .expect("new");
        assert_eq!(
            issuers.insert("https://a.example".to_owned(), "again"),
            Err(DuplicateIssuer("https://a.example".to_owned()))
        );
        assert_eq!(issuers.len(), 2);
        assert_eq!(
            issuers.route(&jws(r#"{"iss":"https://a.example"}"#)),
            Some(&"A")
        );
        assert_eq!(
            issuers.route(&jws(r#"{"iss":"https://b.example"}"#)),
            Some(&"B")
        );
        // Exact identifiers: no trailing-slash or case normalisation (JWTAT-02).
        assert_eq!(issuers.route(&jws(r#"{"iss":"https://a.example/"}"#)), None);
        assert_eq!(issuers.route(&jws(r#"{"iss":"https://A.example"}"#)), None);
        // No iss, a non-string iss, duplicate members, not a JWS: no issuer, no key lookup.
        assert_eq!(issuers.route(&jws(r#"{"sub":"x"}"#)), None);
        assert_eq!(
            issuers.route(&jws(r#"{"iss":["https://a.example"]}"#)),
            None
        );
        assert_eq!(
            issuers.route(&jws(
                r#"{"iss":"https://evil.example","iss":"https://a.example"}"#
            )),
            None
        );
        assert_eq!(issuers.route("opaque-token"), None);
        assert_eq!(
            issuers.route(&format!("{}.x", jws(r#"{"iss":"https://a.example"}"#))),
            None
        );
    }
}
