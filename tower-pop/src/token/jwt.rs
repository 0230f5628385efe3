//! JWT access tokens (RFC 9068 §4), verified with `jsonwebtoken` against the issuer's keys.
//!
//! Checks, in order: size; one compact JWS with strict JSON (JOSE-06, JOSE-11); `typ` is
//! `at+jwt` or `application/at+jwt`, case-insensitively (JWTAT-01, JOSE-09); no `crit`, `b64`
//! or `cty` (JOSE-04, JOSE-10); `alg` on the access-token allow-list (JOSE-01, JOSE-03); the
//! signature, with a key chosen by `kid`, key type and curve from the configured set only
//! (JWTAT-04, JOSE-02, JOSE-07, JOSE-08, FAPI-08); `iss` exact (JWTAT-02); `aud` contains ours
//! (JWTAT-03); `exp` and `nbf` with leeway (JWTAT-05, JWTAT-09); `sub` present; `iat`,
//! `client_id`, `jti`, `scope` well-typed when present (JWTAT-06); `cnf` well-formed.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::jwks::KeySet;
use super::{TokenInfo, confirmation};
use crate::error::PopErrorKind;
use crate::expiring::ExpiringMap;
use crate::jose::{Algorithm, CompactJws, numeric_date};
use crate::thumbprint::sha256;

/// Longest access token accepted, in bytes.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Most keys tried for one token (keys sharing a `kid`, or a token without `kid`): bounds the
/// signature checks one request can cost.
const MAX_KEY_TRIES: usize = 4;

#[derive(Debug)]
pub(crate) struct JwtValidator {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: u64,
    pub(crate) keys: KeySet,
    cache: ExpiringMap<Arc<TokenInfo>>,
}

fn to_jsonwebtoken(alg: Algorithm) -> Option<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm as J;
    Some(match alg {
        Algorithm::ES256 => J::ES256,
        Algorithm::ES384 => J::ES384,
        Algorithm::RS256 => J::RS256,
        Algorithm::RS384 => J::RS384,
        Algorithm::RS512 => J::RS512,
        Algorithm::PS256 => J::PS256,
        Algorithm::PS384 => J::PS384,
        Algorithm::PS512 => J::PS512,
        Algorithm::EdDSA => J::EdDSA,
        Algorithm::ES512 | Algorithm::Ed25519 => return None,
    })
}

/// Whether `jsonwebtoken` can verify tokens signed with `alg`.
pub(crate) fn supported(alg: Algorithm) -> bool {
    to_jsonwebtoken(alg).is_some()
}

fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, PopErrorKind> {
    claims
        .get(name)
        .map(|v| numeric_date(v).ok_or(PopErrorKind::TokenInvalid))
        .transpose()
}

fn string_if_present(claims: &Map<String, Value>, name: &str) -> Result<(), PopErrorKind> {
    match claims.get(name) {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(PopErrorKind::TokenInvalid),
    }
}

fn check(ok: bool) -> Result<(), PopErrorKind> {
    if ok {
        Ok(())
    } else {
        Err(PopErrorKind::TokenInvalid)
    }
}

impl JwtValidator {
    pub(crate) fn new(
        issuer: String,
        audience: String,
        algorithms: Vec<Algorithm>,
        leeway: u64,
        keys: KeySet,
        cache_capacity: usize,
    ) -> Self {
        Self {
            issuer,
            audience,
            algorithms,
            leeway,
            keys,
            cache: ExpiringMap::new(cache_capacity),
        }
    }

    /// Verify `token` at `now`, from the cache when it was verified before.
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<Arc<TokenInfo>, PopErrorKind> {
        let cache_key = sha256(token.as_bytes());
        if let Some(info) = self.cache.get(&cache_key, now) {
            check(now >= info.not_before)?;
            return Ok(info);
        }
        let info = Arc::new(self.verify_uncached(token, now)?);
        // A full cache only means this token is verified again next time.
        let _ = self
            .cache
            .insert(cache_key, info.valid_until, Arc::clone(&info), now);
        Ok(info)
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<TokenInfo, PopErrorKind> {
        check(token.len() <= MAX_TOKEN_LEN)?;
        let jws = CompactJws::parse(token).ok_or(PopErrorKind::TokenInvalid)?;
        let header = &jws.header;
        let typ = header
            .get("typ")
            .and_then(Value::as_str)
            .unwrap_or_default();
        check(
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"),
        )?;
        check(
            !["crit", "b64", "cty"]
                .iter()
                .any(|h| header.contains_key(*h)),
        )?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<Algorithm>().ok())
            .filter(|a| self.algorithms.contains(a))
            .ok_or(PopErrorKind::TokenInvalid)?;
        let jwt_alg = to_jsonwebtoken(alg).ok_or(PopErrorKind::TokenInvalid)?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(PopErrorKind::TokenInvalid),
        };
        let signature = token.rsplit_once('.').map(|(_, s)| s).unwrap_or_default();
        let verified = self
            .keys
            .candidates(kid, alg)
            .take(MAX_KEY_TRIES)
            .any(|key| {
                jsonwebtoken::crypto::verify(
                    signature,
                    jws.signing_input.as_bytes(),
                    &key.decoding,
                    jwt_alg,
                )
                .unwrap_or(false)
            });
        check(verified)?;
        self.check_claims(jws.payload, now)
    }

    fn check_claims(
        &self,
        claims: Map<String, Value>,
        now: u64,
    ) -> Result<TokenInfo, PopErrorKind> {
        check(claims.get("iss").and_then(Value::as_str) == Some(self.issuer.as_str()))?;
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        check(audience_ok)?;
        let exp = numeric(&claims, "exp")?.ok_or(PopErrorKind::TokenInvalid)?;
        let valid_until = exp.saturating_add(self.leeway).saturating_add(1);
        check(now < valid_until)?;
        let not_before = numeric(&claims, "nbf")?.map_or(0, |nbf| nbf.saturating_sub(self.leeway));
        check(now >= not_before)?;
        numeric(&claims, "iat")?;
        check(claims.get("sub").is_some_and(Value::is_string))?;
        for name in ["client_id", "jti", "scope"] {
            string_if_present(&claims, name)?;
        }
        let confirmation = confirmation(&claims)?;
        Ok(TokenInfo {
            claims: Arc::new(claims),
            confirmation,
            valid_until,
            not_before,
        })
    }
}
