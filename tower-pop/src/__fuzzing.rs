//! **Not a public API.** Thin entry points into internal parsers for the cargo-fuzz targets in
//! `fuzz/` (feature `fuzzing`). Hidden from the docs, unstable, and may change or vanish in any
//! release. Each wrapper returns plain data (`bool`, `Option`, `String`) or public types, never
//! an internal one, and does nothing but call the internal code the way the verifier does.

use crate::dpop::htu;
use crate::dpop::known_key::KnownKey;
use crate::dpop::nonce::Nonces;
use crate::dpop::proof::{Proof, ProofBytes};
use crate::error::{AuthScheme, PopErrorKind};
use crate::jose::json::{self, Member};
use crate::jose::jwk::PublicJwk;
use crate::jose::jws::CompactJws;
use crate::jose::{self, Algorithm};
use crate::request::PopRequest;

/// `credentials::parse` on the request's `Authorization` fields: the scheme and the token.
///
/// # Errors
/// The kind the verifier would refuse the request with.
pub fn credentials<'a>(request: &PopRequest<'a>) -> Result<(AuthScheme, &'a str), PopErrorKind> {
    crate::credentials::parse(request.authorization)
        .map(|c| (c.scheme, c.token))
        .map_err(|e| e.kind())
}

/// `json::parse_json_object`, the strict JSON parser of JOSE headers and payloads: the parsed
/// object serialised again, or `None` when refused.
#[must_use]
pub fn json_object(bytes: &[u8]) -> Option<String> {
    json::parse_json_object(bytes).map(|map| serde_json::Value::Object(map).to_string())
}

/// `json::parse_json_members`, the map-free reader of proofs (its serde-free fast path first),
/// asked for `names`: whether it accepted, and each wanted member as JSON, for comparison with
/// [`json_object`].
#[must_use]
pub fn json_members(bytes: &[u8], names: &[&str; 3]) -> Option<[Option<serde_json::Value>; 3]> {
    let members = json::parse_json_members(bytes, names)?;
    Some(members.map(|m| m.map(member_value)))
}

fn member_value(member: Member<'_>) -> serde_json::Value {
    match member {
        Member::Str(s) => serde_json::Value::String(s.into_owned()),
        Member::Object(members) => serde_json::Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k.into_owned(), member_value(v)))
                .collect(),
        ),
        Member::Other(value) => value,
    }
}

/// `jose::CompactJws::split`, then the decoding every reader does: the length of the signing
/// input and of the decoded signature, `None` when a part does not decode or parse.
///
/// # Panics
/// When the vectorised base64url decoder and the `base64` crate's strict engine disagree on
/// the input or any of its parts.
#[must_use]
pub fn compact_jws(input: &str) -> Option<(usize, usize)> {
    use base64::Engine as _;
    for part in std::iter::once(input).chain(input.split('.')) {
        let reference = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .ok();
        assert_eq!(
            jose::b64url_decode(part),
            reference,
            "both base64url decoders agree"
        );
    }
    let jws = CompactJws::split(input.as_bytes())?;
    json::parse_json_object(&jose::b64url_decode(jws.header)?)?;
    json::parse_json_object(&jose::b64url_decode(jws.payload)?)?;
    let signature = jose::b64url_decode(jws.signature)?;
    Some((jws.signing_input.len(), signature.len()))
}

/// `dpop::proof::Proof::parse` with every algorithm allowed, then each request-bound check the
/// verifier makes (against `method`, the normalised `target`, `now`, `ath`, `cnf_jkt`, and
/// `nonces` when given). `None` when the proof does not parse; otherwise whether its signature
/// verifies, and the proof key's thumbprint. A proof that verifies is read again as a token
/// that remembers its key and header would read it.
///
/// # Panics
/// When that second reading differs from the first.
#[must_use]
pub fn proof(
    value: &str,
    method: &str,
    target: &str,
    now: u64,
    ath: &str,
    cnf_jkt: &str,
    nonces: Option<&Nonces>,
) -> Option<(bool, String)> {
    let mut bytes = ProofBytes::default();
    let mut proof = Proof::parse(value.as_bytes(), &Algorithm::ALL, &mut bytes).ok()?;
    let _ = proof.check_htm(method);
    let _ = proof.check_htu(target);
    let _ = proof.check_iat(now, 60, 10);
    let token_hash = jose::b64url_decode(ath)
        .and_then(|hash| <[u8; 32]>::try_from(hash).ok())
        .unwrap_or_default();
    let _ = proof.check_ath(&token_hash);
    if let Some(nonces) = nonces {
        let _ = proof.check_nonce(nonces, now);
    }
    let _ = proof.check_key_binding(cnf_jkt);
    let signed = proof.check_signature();
    if signed.is_ok() {
        read_again_knowing_its_header(value, &proof);
    }
    Some((signed.is_ok(), proof.thumbprint()))
}

/// A token remembers `proof`'s key and header through its remembered key's door, as the verifier
/// does when it binds and verifies a proof; reading the same proof again knowing that header must
/// give the same proof, bind to the remembered key, and verify with the kept import; with its
/// `alg` no longer allowed it must be refused as before.
///
/// # Panics
/// When the second reading differs.
fn read_again_knowing_its_header(value: &str, proof: &Proof<'_>) {
    let known = KnownKey::default();
    let jkt = proof.thumbprint();
    let mut first = ProofBytes::default();
    let mut fresh = Proof::parse(value.as_bytes(), &Algorithm::ALL, &mut first)
        .expect("a proof that parsed parses again");
    known
        .verify(&mut fresh, &jkt)
        .expect("its own key, its own signature: remembered");
    let mut bytes = ProofBytes::default();
    let mut again = Proof::parse_knowing(value.as_bytes(), &Algorithm::ALL, &mut bytes, |h| {
        known.kept_header(h, &Algorithm::ALL)
    })
    .expect("a proof that parsed parses again knowing its header");
    assert!(
        again.alg == proof.alg
            && again.jti == proof.jti
            && again.htm == proof.htm
            && again.htu == proof.htu
            && again.iat == proof.iat
            && again.ath == proof.ath
            && again.nonce == proof.nonce
            && again.thumbprint() == proof.thumbprint(),
        "the kept header reads as the header did"
    );
    known
        .verify(&mut again, "not consulted: the remembered key")
        .expect("verified with the kept import");
    let others: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| *a != proof.alg)
        .collect();
    let mut bytes = ProofBytes::default();
    assert_eq!(
        Proof::parse_knowing(value.as_bytes(), &others, &mut bytes, |h| {
            known.kept_header(h, &others)
        })
        .err(),
        Some(PopErrorKind::UnsupportedAlgorithm),
        "a kept header whose alg is no longer allowed"
    );
}

/// `jwk::PublicJwk::from_json` on a strictly parsed JSON object: the key's RFC 7638 thumbprint
/// and the algorithms it fits, or `None` when it is not an acceptable public key. Also builds
/// the `jsonwebtoken` key, as the JWK Set loader does.
#[must_use]
///
/// # Panics
/// When the proof's map-free reading of the same object (`json::parse_json_members`) disagrees:
/// a different key, or one accepted where the other refuses; or when reading it as a proof's
/// key and importing it accepts other keys than `from_json` does.
pub fn jwk(bytes: &[u8]) -> Option<(String, Vec<Algorithm>)> {
    // The same document through both readers: the proof's map-free one and the full parser.
    let wrapped = [b"{\"jwk\":".as_slice(), bytes, b"}"].concat();
    let from_members = match json::parse_json_members(&wrapped, &["jwk"]) {
        Some([Some(Member::Object(members))]) => {
            PublicJwk::from_json(members.as_slice()).map(|k| k.thumbprint())
        }
        _ => None,
    };
    let from_map = json::parse_json_object(&wrapped)
        .and_then(|doc| Some(PublicJwk::from_json(doc.get("jwk")?.as_object()?)?.thumbprint()));
    assert_eq!(from_members, from_map, "both readers read the same key");
    let doc = json::parse_json_object(bytes)?;
    // A proof's key is read without import, then imported for its alg: the same keys pass.
    let read = PublicJwk::from_proof_json(&doc);
    let imports = read.as_ref().is_some_and(|k| match k {
        PublicJwk::Rsa { .. } => true,
        PublicJwk::Ec { .. } | PublicJwk::Ed25519 { .. } => Algorithm::ALL
            .into_iter()
            .filter(|a| k.fits(*a))
            .all(|a| k.import(a).is_some()),
    });
    assert_eq!(
        PublicJwk::from_json(&doc).is_some(),
        imports,
        "read and imported as a proof's key"
    );
    let key = PublicJwk::from_json(&doc)?;
    let _ = key.decoding_key();
    let fits = Algorithm::ALL
        .into_iter()
        .filter(|a| key.fits(*a))
        .collect();
    Some((key.thumbprint(), fits))
}

/// `dpop::htu::normalize`.
#[must_use]
pub fn htu_normalize(uri: &str) -> Option<String> {
    htu::normalize(uri)
}

/// `dpop::htu::is_normal_path`.
#[must_use]
pub fn htu_is_normal_path(path: &str) -> bool {
    htu::is_normal_path(path)
}

/// The fast paths next to the full readers they stand for, for `benches/fast_paths.rs`: each
/// pair gives the same answer (the fuzz targets hold them equal); the bench times both.
pub mod fast_paths {
    use super::{Algorithm, KnownKey, Proof, ProofBytes, htu, json};

    /// The members of a proof's JSON read by the fast path first (`parse_json_members`).
    #[must_use]
    pub fn json_fast(bytes: &[u8]) -> bool {
        json::parse_json_members(bytes, &PROOF_MEMBERS).is_some()
    }

    /// The same members read by serde alone.
    #[must_use]
    pub fn json_full(bytes: &[u8]) -> bool {
        json::full_members(bytes, &PROOF_MEMBERS).is_some()
    }

    const PROOF_MEMBERS: [&str; 7] = ["typ", "alg", "jwk", "jti", "htm", "htu", "iat"];

    /// The `htu` check of a proof naming the origin and path exactly, without normalising.
    #[must_use]
    pub fn htu_fast(htu: &str, origin: &str, path: &str) -> bool {
        htu::is_normal_path(path) && htu::names_exactly(htu, origin, path)
    }

    /// The same check, both sides normalised.
    #[must_use]
    pub fn htu_full(htu: &str, origin: &str, path: &str) -> bool {
        htu::is_normal_path(path)
            && htu::normalize(&format!("{origin}{path}"))
                .is_some_and(|target| htu::normalize(htu) == Some(target))
    }

    /// A token's remembered proof key, for [`proof_remembered`].
    #[derive(Debug, Default)]
    pub struct Remembered(KnownKey);

    /// A proof read knowing the header its token's key showed before, bound and verified by
    /// the remembered key (the door of `dpop::known_key`); the first call remembers.
    #[must_use]
    pub fn proof_remembered(known: &Remembered, value: &str, jkt: &str) -> bool {
        let mut bytes = ProofBytes::default();
        let kept = |header: &[u8]| known.0.kept_header(header, &Algorithm::ALL);
        Proof::parse_knowing(value.as_bytes(), &Algorithm::ALL, &mut bytes, kept)
            .and_then(|mut proof| known.0.verify(&mut proof, jkt))
            .is_ok()
    }

    /// The same proof read, hashed for its thumbprint, imported and verified from nothing.
    #[must_use]
    pub fn proof_full(value: &str, jkt: &str) -> bool {
        let mut bytes = ProofBytes::default();
        Proof::parse(value.as_bytes(), &Algorithm::ALL, &mut bytes)
            .and_then(|mut proof| {
                proof.check_key_binding(jkt)?;
                proof.check_signature().map(drop)
            })
            .is_ok()
    }
}

/// The verified-token cache (`token::cache::TokenCache`) used the way the JWT validator uses
/// it, for the cache benchmark: look a token hash up, and on a miss cache a verified token
/// (typical RFC 9068 claims) as the validator does after checking its signature.
#[derive(Debug)]
pub struct TokenCache {
    cache: crate::token::cache::TokenCache,
    info: std::sync::Arc<crate::token::TokenInfo>,
}

impl TokenCache {
    /// A cache of at most `entries` entries and `bytes` bytes, each served `max_age` seconds at
    /// most.
    #[must_use]
    pub fn new(entries: usize, bytes: u64, max_age: u64) -> Self {
        let claims = serde_json::json!({
            "iss": "https://as.example.com", "aud": "https://api.example.com",
            "sub": "someone@example.com", "client_id": "s6BhdRkqt3", "iat": 1_700_000_000,
            "exp": 1_700_003_600, "jti": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2Hg", "scope": "read write",
            "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
        });
        let serde_json::Value::Object(claims) = claims else {
            unreachable!("an object literal")
        };
        let confirmation = crate::token::confirmation(&claims).unwrap_or_default();
        Self {
            cache: crate::token::cache::TokenCache::new(crate::token::cache::CacheLimits {
                entries,
                bytes,
                max_age,
            }),
            info: std::sync::Arc::new(crate::token::TokenInfo {
                claims: std::sync::Arc::new(claims),
                confirmation,
                valid_until: u64::MAX,
                not_before: 0,
                token_hash: [0; 32],
            }),
        }
    }

    /// Present `token` at `now`: `true` on a cache hit; on a miss the token is cached until
    /// `valid_until` and `false` returned.
    #[must_use]
    pub fn present(&self, token: &[u8], valid_until: u64, now: u64) -> bool {
        if self.cache.get(token, now).is_some() {
            return true;
        }
        self.cache
            .insert(token, std::sync::Arc::clone(&self.info), valid_until, now);
        false
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// RFC 9421 / RFC 9530 (feature `httpsig`): the `Signature-Input`/`Signature` reader, the
/// signature base and the `Content-Digest` check on arbitrary fields.
#[cfg(feature = "httpsig")]
pub mod httpsig {
    pub use crate::httpsig::fuzzing::*;
}
