//! The issuer's JWK Set (RFC 7517 §5): parsed once, bounded, unusable keys skipped.
//!
//! A key is kept only if it can verify signatures: not `use: "enc"`, `key_ops` (if present)
//! including `verify`, an `alg` (if present) that is one we support and fits the key type, and a
//! public key that parses strictly. Such keys are skipped, not fatal, so one odd key in an
//! issuer's set does not take the API down; an empty set is allowed and refuses every token.
//! Private and symmetric keys are refused the same way, so an RSA or EC public key can never
//! serve as an HMAC secret (RFC 8725 §3.1).

use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::error::ConfigError;
use crate::jose::Algorithm;
use crate::jose::json::parse_json_object;
use crate::jose::jwk::PublicJwk;

/// Largest JWK Set document accepted, in bytes.
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys read from one JWK Set.
pub(crate) const MAX_JWKS_KEYS: usize = 64;

/// One usable verification key.
pub(crate) struct IssuerKey {
    pub(crate) kid: Option<String>,
    /// The `alg` the key is restricted to, if its JWK names one.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) public: PublicJwk<'static>,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &self.public)
            .finish_non_exhaustive()
    }
}

/// A parsed JWK Set.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<IssuerKey>,
}

impl KeySet {
    /// Parse a JWK Set document.
    pub(crate) fn from_json(json: &str) -> Result<Self, ConfigError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(ConfigError::InvalidJwks {
                reason: "document too large",
            });
        }
        let doc = parse_json_object(json.as_bytes()).ok_or(ConfigError::InvalidJwks {
            reason: "not a JSON object",
        })?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(ConfigError::InvalidJwks {
                reason: "no \"keys\" array",
            })?;
        if keys.len() > MAX_JWKS_KEYS {
            return Err(ConfigError::InvalidJwks {
                reason: "too many keys",
            });
        }
        let keys = keys.iter().filter_map(Value::as_object).filter_map(|jwk| {
            let usable_use = jwk.get("use").is_none_or(|u| u.as_str() == Some("sig"));
            let usable_ops = jwk.get("key_ops").is_none_or(|ops| {
                ops.as_array()
                    .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")))
            });
            if !usable_use || !usable_ops {
                return None;
            }
            let public = PublicJwk::from_json(jwk)?.into_owned();
            let alg = match jwk.get("alg") {
                None => None,
                Some(a) => {
                    let alg = a.as_str()?.parse::<Algorithm>().ok()?;
                    if !public.fits(alg) {
                        return None;
                    }
                    Some(alg)
                }
            };
            let kid = match jwk.get("kid") {
                None => None,
                Some(k) => Some(k.as_str()?.to_owned()),
            };
            let decoding = public.decoding_key()?;
            Some(IssuerKey {
                kid,
                alg,
                public,
                decoding,
            })
        });
        Ok(Self {
            keys: keys.collect(),
        })
    }

    /// Keys that may verify a token with this `kid` and `alg` (FAPI 2.0 §5.4.3: the key type and
    /// curve decide among keys sharing a `kid`). A token without `kid` may use any fitting key.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a IssuerKey> + 'a {
        self.keys.iter().filter(move |k| {
            (kid.is_none() || k.kid.as_deref() == kid)
                && k.public.fits(alg)
                && k.alg.is_none_or(|a| a == alg)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256","kid":"k1"}"#;

    #[test]
    fn skips_unusable_keys_but_keeps_good_ones() {
        let set = format!(
            r#"{{"keys":[{EC},
            {{"kty":"oct","k":"c2VjcmV0","kid":"h"}},
            {}, {}, {}, {}, 7]}}"#,
            EC.replace(r#""kid":"k1""#, r#""kid":"enc","use":"enc""#),
            EC.replace(r#""kid":"k1""#, r#""kid":"ops","key_ops":["encrypt"]"#),
            EC.replace(r#""kid":"k1""#, r#""kid":"rsa-alg","alg":"RS256""#),
            EC.replace(r#""kid":"k1""#, r#""kid":"bad-alg","alg":"HS256""#),
        );
        let ks = KeySet::from_json(&set).expect("parses");
        let kids: Vec<_> = ks.keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, vec![Some("k1")]);
        assert_eq!(ks.candidates(Some("k1"), Algorithm::ES256).count(), 1);
        assert_eq!(ks.candidates(Some("k1"), Algorithm::RS256).count(), 0);
        assert_eq!(ks.candidates(Some("k2"), Algorithm::ES256).count(), 0);
        assert_eq!(ks.candidates(None, Algorithm::ES256).count(), 1);
    }

    #[test]
    fn empty_set_is_allowed_and_bad_documents_are_config_errors() {
        assert_eq!(
            KeySet::from_json(r#"{"keys":[]}"#)
                .expect("empty ok")
                .keys
                .len(),
            0
        );
        assert!(KeySet::from_json("[]").is_err());
        assert!(KeySet::from_json(r#"{"keys":1}"#).is_err());
        let many = format!(r#"{{"keys":[{}]}}"#, vec![EC; MAX_JWKS_KEYS + 1].join(","));
        assert!(KeySet::from_json(&many).is_err());
    }
}
