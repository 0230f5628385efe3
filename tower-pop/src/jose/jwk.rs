//! Public keys carried as JWKs (RFC 7517/7518 §6, RFC 8037 §2): strict parsing, the
//! algorithm-to-key match, and signature verification with aws-lc-rs.
//!
//! A key has exactly one spelling: members are strict base64url, EC coordinates have the full
//! curve length, RSA integers have no leading zero octet (RFC 7518 §6.2.1.2, §6.3.1.1), so one key
//! cannot produce two thumbprints (RFC 7638 §7). Private members are refused outright (RFC 9449 §4.2).

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use std::borrow::Cow;

use serde_json::{Map, Value};

use sha2::{Digest, Sha256};

use crate::jose::digest::ct_eq;
use crate::jose::json::Member;
use crate::jose::{Algorithm, b64url, b64url_decode, b64url_decode_slice};

/// Members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Smallest RSA modulus accepted, in bits (FAPI 2.0 §5.4.1, RFC 8725 §3.5 guidance).
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits: bounds the work an attacker's key can cost us.
const MAX_RSA_BITS: usize = 8192;

/// Largest RSA modulus accepted for a DPoP proof key: a client's key is the attacker's choice,
/// and an RSA-8192 verification costs ~30 times an RSA-2048 one.
pub(crate) const MAX_PROOF_RSA_BITS: usize = 4096;

/// Elliptic curves for ECDSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// The ECDSA algorithm of this curve (RFC 7518 §3.4).
    fn algorithm(self) -> Algorithm {
        match self {
            Self::P256 => Algorithm::ES256,
            Self::P384 => Algorithm::ES384,
            Self::P521 => Algorithm::ES512,
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }
}

/// A validated public key. Its base64url members borrow from where it was read (a proof's
/// decoded header) or are owned ([`PublicJwk::into_owned`], a JWK Set's keys).
#[derive(Clone)]
pub(crate) enum PublicJwk<'a> {
    Ec {
        curve: Curve,
        x: Cow<'a, str>,
        y: Cow<'a, str>,
        /// `04 || x || y`, decoded.
        point: EcPoint,
    },
    Rsa {
        n: Cow<'a, str>,
        e: Cow<'a, str>,
        n_bytes: Vec<u8>,
        e_bytes: Vec<u8>,
    },
    Ed25519 {
        x: Cow<'a, str>,
        /// `x`, decoded.
        bytes: [u8; 32],
    },
}

/// An uncompressed EC point, `04 || x || y`, of up to P-521's size.
#[derive(Clone, Copy)]
pub(crate) struct EcPoint {
    bytes: [u8; 1 + 2 * 66],
    len: usize,
}

impl EcPoint {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

// Key material stays out of logs even though it is public: Debug names only the type.
impl std::fmt::Debug for PublicJwk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Ec { curve, .. } => curve.name(),
            Self::Rsa { .. } => "RSA",
            Self::Ed25519 { .. } => "Ed25519",
        };
        write!(f, "PublicJwk({kind})")
    }
}

/// A JSON object a key is read from: a parsed map (JWK Sets) or the members of a proof's `jwk`
/// as read without a map ([`crate::jose::parse_json_members`]); one reading rule for both.
pub(crate) trait JwkMembers<'a> {
    /// Whether the member is present, whatever its value.
    fn has(&self, name: &str) -> bool;
    /// The member's value when it is a string, borrowed for `'a` where the reader allows.
    fn string(&self, name: &str) -> Option<Cow<'a, str>>;
}

impl<'a> JwkMembers<'a> for &'a Map<String, Value> {
    fn has(&self, name: &str) -> bool {
        self.contains_key(name)
    }

    fn string(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name)?.as_str().map(Cow::Borrowed)
    }
}

impl<'a> JwkMembers<'a> for &[(Cow<'a, str>, Member<'a>)] {
    fn has(&self, name: &str) -> bool {
        self.iter().any(|(k, _)| k == name)
    }

    fn string(&self, name: &str) -> Option<Cow<'a, str>> {
        match &self.iter().find(|(k, _)| k == name)?.1 {
            Member::Str(Cow::Borrowed(s)) => Some(Cow::Borrowed(s)),
            // A member spelled with escapes: rare, copied.
            Member::Str(Cow::Owned(s)) => Some(Cow::Owned(s.clone())),
            Member::Object(_) | Member::Other(_) => None,
        }
    }
}

impl<'a> PublicJwk<'a> {
    /// Parse a JWK object as a public key; `None` if it is private, symmetric, unknown, not
    /// canonically encoded, or an EC point not on its curve (JKT-06).
    pub(crate) fn from_json(jwk: impl JwkMembers<'a>) -> Option<Self> {
        let key = Self::from_proof_json(jwk)?;
        let imports = match &key {
            Self::Ec { curve, .. } => key.import(curve.algorithm()).is_some(),
            Self::Ed25519 { .. } => key.import(Algorithm::EdDSA).is_some(),
            Self::Rsa { .. } => true,
        };
        imports.then_some(key)
    }

    /// [`from_json`](Self::from_json) without importing the key: an EC point is checked on its
    /// curve when [`import`](Self::import)ed, which a proof's parse does right after (and the
    /// import is then used for its signature).
    pub(crate) fn from_proof_json(jwk: impl JwkMembers<'a>) -> Option<Self> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.has(m)) {
            return None;
        }
        match &*jwk.string("kty")? {
            "EC" => {
                let curve = match &*jwk.string("crv")? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    "P-521" => Curve::P521,
                    _ => return None,
                };
                let (x, y) = (jwk.string("x")?, jwk.string("y")?);
                // `04 || x || y`, each coordinate decoded in place and of the curve's length.
                let len = curve.coordinate_len();
                // Three bytes of room past the end: base64url decodes in groups of three.
                let mut room = [0u8; 1 + 2 * 66 + 3];
                room[0] = 0x04;
                for (i, coordinate) in [&x, &y].into_iter().enumerate() {
                    let at = 1 + i * len;
                    if b64url_decode_slice(coordinate.as_bytes(), &mut room[at..])?.len() != len {
                        return None;
                    }
                }
                let mut point = [0u8; 1 + 2 * 66];
                point.copy_from_slice(&room[..1 + 2 * 66]);
                let point = EcPoint {
                    bytes: point,
                    len: 1 + 2 * len,
                };
                Some(Self::Ec { curve, x, y, point })
            }
            "RSA" => {
                let (n, e) = (jwk.string("n")?, jwk.string("e")?);
                let (n_bytes, e_bytes) =
                    (b64url_decode(n.as_bytes())?, b64url_decode(e.as_bytes())?);
                let first = *n_bytes.first()?;
                if first == 0 || *e_bytes.first()? == 0 || e_bytes.len() > 8 {
                    return None;
                }
                let bits = (n_bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return None;
                }
                Some(Self::Rsa {
                    n,
                    e,
                    n_bytes,
                    e_bytes,
                })
            }
            "OKP" => {
                if jwk.string("crv")? != "Ed25519" {
                    return None;
                }
                let x = jwk.string("x")?;
                let mut room = [0u8; 33];
                let bytes = b64url_decode_slice(x.as_bytes(), &mut room)?;
                let bytes = <[u8; 32]>::try_from(bytes).ok()?;
                Some(Self::Ed25519 { x, bytes })
            }
            _ => None,
        }
    }

    /// Whether `alg` is meant for this key type and curve (RFC 9449 §4.3 step 5, RFC 8725 §3.1).
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Ec { curve, .. } => matches!(
                (alg, curve),
                (ES256, Curve::P256) | (ES384, Curve::P384) | (ES512, Curve::P521)
            ),
            Self::Rsa { .. } => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::Ed25519 { .. } => matches!(alg, EdDSA | Algorithm::Ed25519),
        }
    }

    /// The key imported into aws-lc for `alg` (which it must [`fit`](Self::fits)); `None`
    /// when aws-lc refuses it, as it does an EC point that is not on its curve (RFC 8725 §3.4).
    /// This is the work of a key import per proof that a remembered key saves (about 1.4 us for
    /// P-256, measured; an RSA key's Montgomery context is computed at its first verification
    /// and kept with it).
    pub(crate) fn import(&self, alg: Algorithm) -> Option<ParsedPublicKey> {
        match self {
            Self::Ec { curve, point, .. } => {
                ParsedPublicKey::new(curve_verifier(*curve), point.as_slice()).ok()
            }
            Self::Rsa {
                n_bytes, e_bytes, ..
            } => RsaPublicKeyComponents {
                n: n_bytes.as_slice(),
                e: e_bytes.as_slice(),
            }
            .to_parsed_public_key(rsa_params(alg))
            .ok(),
            Self::Ed25519 { bytes, .. } => ParsedPublicKey::new(&sig::ED25519, bytes).ok(),
        }
    }

    /// Verify `signature` over `message` with `alg` by `imported`, this key as imported for
    /// `alg`. ECDSA signatures must be the fixed `R || S` form of RFC 7518 §3.4; a DER signature
    /// or `r = s = 0` fails (RFC 9449 §4.3 step 6).
    pub(crate) fn verify_imported(
        &self,
        imported: &ParsedPublicKey,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let length_fits = match self {
            Self::Ec { curve, .. } => signature.len() == 2 * curve.coordinate_len(),
            Self::Rsa { .. } | Self::Ed25519 { .. } => true,
        };
        self.fits(alg) && length_fits && imported.verify_sig(message, signature).is_ok()
    }

    /// Import and verify: [`import`](Self::import), then
    /// [`verify_imported`](Self::verify_imported); `false` when the key does not import.
    #[cfg(test)]
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.fits(alg)
            && self
                .import(alg)
                .is_some_and(|key| self.verify_imported(&key, alg, message, signature))
    }

    /// The same key for `jsonwebtoken`, which verifies access tokens; `None` for P-521, which
    /// it does not support.
    pub(crate) fn decoding_key(&self) -> Option<jsonwebtoken::DecodingKey> {
        match self {
            Self::Ec {
                curve: Curve::P521, ..
            } => None,
            Self::Ec { x, y, .. } => jsonwebtoken::DecodingKey::from_ec_components(x, y).ok(),
            Self::Rsa {
                n_bytes, e_bytes, ..
            } => Some(jsonwebtoken::DecodingKey::from_rsa_raw_components(
                n_bytes, e_bytes,
            )),
            Self::Ed25519 { x, .. } => jsonwebtoken::DecodingKey::from_ed_components(x).ok(),
        }
    }

    /// Whether the key is cheap enough to verify for a DPoP proof: RSA moduli of 2048-4096 bits
    /// and public exponents below 2^32; every EC and Ed25519 key.
    pub(crate) fn fits_proof_bounds(&self) -> bool {
        match self {
            Self::Rsa {
                n_bytes, e_bytes, ..
            } => {
                let bits =
                    n_bytes.len() * 8 - n_bytes.first().map_or(8, |b| b.leading_zeros() as usize);
                bits <= MAX_PROOF_RSA_BITS && e_bytes.len() <= 4
            }
            _ => true,
        }
    }

    /// The same key, owning its members.
    pub(crate) fn into_owned(self) -> PublicJwk<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        match self {
            Self::Ec { curve, x, y, point } => PublicJwk::Ec {
                curve,
                x: own(x),
                y: own(y),
                point,
            },
            Self::Rsa {
                n,
                e,
                n_bytes,
                e_bytes,
            } => PublicJwk::Rsa {
                n: own(n),
                e: own(e),
                n_bytes,
                e_bytes,
            },
            Self::Ed25519 { x, bytes } => PublicJwk::Ed25519 { x: own(x), bytes },
        }
    }

    /// RFC 7638 SHA-256 thumbprint, base64url without padding.
    pub(crate) fn thumbprint(&self) -> String {
        b64url(&self.thumbprint_digest())
    }

    /// RFC 7638 SHA-256 thumbprint, as the digest.
    pub(crate) fn thumbprint_digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for piece in self.canonical_pieces() {
            hash.update(piece.as_bytes());
        }
        hash.finalize().into()
    }

    /// Whether this key's canonical form (RFC 7638 §3.3) is `known`, byte for byte (so its
    /// thumbprint is that of `known`), compared piece by piece in constant time.
    pub(crate) fn has_canonical_form(&self, known: &[u8]) -> bool {
        let mut rest = known;
        let mut equal = true;
        for piece in self.canonical_pieces() {
            match rest.split_at_checked(piece.len()) {
                Some((head, tail)) => {
                    equal &= ct_eq(head, piece.as_bytes());
                    rest = tail;
                }
                None => return false,
            }
        }
        equal && rest.is_empty()
    }

    /// The canonical form (RFC 7638 §3.3), built.
    pub(crate) fn canonical_form(&self) -> Box<[u8]> {
        self.canonical_pieces()
            .concat()
            .into_bytes()
            .into_boxed_slice()
    }

    /// The canonical form (RFC 7638 §3.3) in pieces. Every value is base64url or a fixed name,
    /// so no JSON escaping is ever needed and the form can be hashed or compared piece by
    /// piece, without building it.
    pub(crate) fn canonical_pieces(&self) -> [&str; 7] {
        match self {
            Self::Ec { curve, x, y, .. } => [
                r#"{"crv":""#,
                curve.name(),
                r#"","kty":"EC","x":""#,
                x.as_ref(),
                r#"","y":""#,
                y.as_ref(),
                r#""}"#,
            ],
            Self::Rsa { n, e, .. } => [
                r#"{"e":""#,
                e.as_ref(),
                r#"","kty":"RSA","n":""#,
                n.as_ref(),
                r#""}"#,
                "",
                "",
            ],
            Self::Ed25519 { x, .. } => [
                r#"{"crv":"Ed25519","kty":"OKP","x":""#,
                x.as_ref(),
                r#""}"#,
                "",
                "",
                "",
                "",
            ],
        }
    }
}

fn curve_verifier(curve: Curve) -> &'static sig::EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &sig::ECDSA_P521_SHA512_FIXED,
    }
}

fn rsa_params(alg: Algorithm) -> &'static RsaParameters {
    match alg {
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        // `fits` admits only RSA algorithms here; RS256 is the remaining one.
        _ => &sig::RSA_PKCS1_2048_8192_SHA256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::json::parse_json_object;

    const RFC9449_JWK: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;

    fn key(json: &str) -> Option<PublicJwk<'static>> {
        Some(PublicJwk::from_json(&parse_json_object(json.as_bytes())?)?.into_owned())
    }

    #[test]
    fn rfc8037_a4_ed25519_signature_verifies() {
        // TV-10, RFC 8037 Appendix A.4.
        let k = key(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .expect("valid key");
        let sig = b64url_decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg").expect("b64");
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        assert!(k.verify(Algorithm::EdDSA, input, &sig));
        assert!(!k.verify(
            Algorithm::EdDSA,
            b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmd",
            &sig
        ));
        assert!(!k.verify(Algorithm::ES256, input, &sig));
        // RFC 9864's fully-specified name verifies the same signature.
        assert!(k.verify(Algorithm::Ed25519, input, &sig));
    }

    #[test]
    fn rejects_private_and_symmetric_keys_dpop_09() {
        assert!(key(r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#).is_none());
        assert!(key(r#"{"kty":"oct","k":"c2VjcmV0"}"#).is_none());
    }

    #[test]
    fn rejects_non_canonical_ec_coordinates_jkt_04() {
        assert!(key(RFC9449_JWK).is_some());
        // 33-byte x (leading zero added) and 31-byte x (first byte dropped).
        let x33 = crate::jose::b64url(
            &[
                &[0u8][..],
                &b64url_decode("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs").expect("b64"),
            ]
            .concat(),
        );
        assert!(
            key(&RFC9449_JWK.replace("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", &x33))
                .is_none()
        );
        let x31 = crate::jose::b64url(
            &b64url_decode("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs").expect("b64")[1..],
        );
        assert!(
            key(&RFC9449_JWK.replace("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", &x31))
                .is_none()
        );
        // Padding and the standard alphabet are refused (JKT-05).
        assert!(key(&RFC9449_JWK.replace("BFs\"", "BFs=\"")).is_none());
        assert!(key(&RFC9449_JWK.replace("x-34", "x+34")).is_none());
    }

    #[test]
    fn rejects_missing_members_unknown_curves_and_points_off_curve_jkt_06() {
        assert!(
            key(r#"{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"}"#)
                .is_none()
        );
        assert!(key(&RFC9449_JWK.replace("P-256", "secp256k1")).is_none());
        // Change the first y character: canonical still, but (x, y') is not on P-256.
        let off_curve = RFC9449_JWK.replace("9VE4", "8VE4");
        let map = parse_json_object(off_curve.as_bytes()).expect("JSON");
        assert!(PublicJwk::from_proof_json(&map).is_some(), "well formed");
        assert!(key(&off_curve).is_none());
        assert!(key(r#"{"kty":"EC","crv":"P-256","x":1,"y":2}"#).is_none());
    }

    #[test]
    fn rejects_small_and_zero_padded_rsa_moduli() {
        let n1024 = crate::jose::b64url(&[0xC5; 128]);
        assert!(key(&format!(r#"{{"kty":"RSA","n":"{n1024}","e":"AQAB"}}"#)).is_none());
        let n2048 = crate::jose::b64url(&[0xC5; 256]);
        assert!(key(&format!(r#"{{"kty":"RSA","n":"{n2048}","e":"AQAB"}}"#)).is_some());
        let padded = crate::jose::b64url(&[&[0u8][..], &[0xC5; 256]].concat());
        assert!(key(&format!(r#"{{"kty":"RSA","n":"{padded}","e":"AQAB"}}"#)).is_none());
    }

    /// `from_proof_json` reads a key without importing it; the import (which the proof's parse
    /// makes right after, unless the header is one a token kept) refuses a point off the curve
    /// (JKT-06).
    #[test]
    fn proof_keys_are_imported_at_the_signature_check_jkt_06() {
        let off_curve = RFC9449_JWK.replace("9VE4", "8VE4");
        let map = parse_json_object(off_curve.as_bytes()).expect("JSON");
        let key = PublicJwk::from_proof_json(&map).expect("read, not imported");
        assert!(key.import(Algorithm::ES256).is_none());
        let map = parse_json_object(RFC9449_JWK.as_bytes()).expect("JSON");
        let key = PublicJwk::from_proof_json(&map).expect("read");
        assert!(key.import(Algorithm::ES256).is_some());
    }
}
