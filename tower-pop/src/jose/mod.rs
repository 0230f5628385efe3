//! JOSE primitives shared by proofs and access tokens: the algorithm names we accept, strict
//! base64url (RFC 7515 §2: no padding, no `+`/`/`, canonical trailing bits), strict JSON (UTF-8,
//! bounded depth and width, duplicate member names rejected: RFC 8725 §3.7, RFC 7515 §4), and splitting a
//! compact JWS into its three parts (RFC 9449 §4.1).

pub(crate) mod digest;
pub(crate) mod json;
pub(crate) mod jwk;
pub(crate) mod jws;
pub mod thumbprint;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// An asymmetric JWS algorithm (RFC 7518 §3, RFC 8037 §3.1).
///
/// `none` and the HMAC algorithms have no variant, so no configuration can ever allow them
/// (RFC 8725 §3.1-3.2, RFC 9449 §4.2). Names parse case-sensitively, as RFC 7515 §4.1.1 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDSA,
    /// Ed25519 under its fully-specified name (RFC 9864), as sent by newer clients
    /// (e.g. panva's `dpop`); the same key type and signature as `EdDSA` with Ed25519.
    Ed25519,
}

impl Algorithm {
    /// Every algorithm this crate can verify.
    pub const ALL: [Self; 11] = [
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::EdDSA,
        Self::Ed25519,
    ];

    /// The registered JWS name, e.g. `"ES256"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`Algorithm::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAlgorithm;

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown or disallowed JWS algorithm")
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(UnknownAlgorithm)
    }
}

/// Decode strict base64url without padding; `None` for any other spelling (RFC 7515 §2).
///
/// Decoding is vectorised (`base64-simd`); it refuses exactly what the `base64` crate's strict
/// engine refuses (padding, `+` and `/`, a length of 1 mod 4, non-zero trailing bits): a unit
/// property and the `jws` fuzz target compare the two.
pub(crate) fn b64url_decode(input: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(input).ok()
}

/// [`b64url_decode`] into `out`, which has room for at least [`b64url_decoded_room`] bytes;
/// the decoded bytes, borrowed from `out`.
pub(crate) fn b64url_decode_slice(input: impl AsRef<[u8]>, out: &mut [u8]) -> Option<&[u8]> {
    let (engine, input) = (base64_simd::URL_SAFE_NO_PAD, input.as_ref());
    // The exact length first: the decoder panics on a short output, we refuse.
    let len = engine.decoded_length(input).ok()?;
    let out = out.get_mut(..len)?;
    let decoded = engine
        .decode(input, base64_simd::Out::from_slice(out))
        .ok()?;
    Some(decoded)
}

/// The room [`b64url_decode_slice`] needs for `encoded_len` characters.
pub(crate) fn b64url_decoded_room(encoded_len: usize) -> usize {
    base64_simd::URL_SAFE_NO_PAD.estimated_decoded_length(encoded_len)
}

/// Encode base64url without padding.
pub(crate) fn b64url(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(input)
}

/// A JSON NumericDate (RFC 7519 §2): a non-negative number of seconds; fractions are
/// truncated. `None` for anything else.
pub(crate) fn numeric_date(value: &Value) -> Option<u64> {
    if let Some(secs) = value.as_u64() {
        return Some(secs);
    }
    let f = value.as_f64()?;
    // Truncation is intended; the range keeps the cast exact enough.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (f.is_finite() && (0.0..1e15).contains(&f)).then_some(f as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_are_case_sensitive_and_never_none() {
        assert_eq!("ES256".parse::<Algorithm>(), Ok(Algorithm::ES256));
        assert_eq!("EdDSA".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
        for bad in ["none", "None", "NONE", "HS256", "es256", ""] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad}");
        }
    }

    #[test]
    fn strict_base64url() {
        assert_eq!(b64url_decode("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(b64url_decode("AQAB="), None);
        assert_eq!(b64url_decode("A+8"), None);
        assert_eq!(b64url_decode("A/8"), None);
        assert_eq!(b64url_decode("AQ A"), None);
        // Non-canonical trailing bits: "AR" and "AQ" would both decode to [1].
        assert_eq!(b64url_decode("AQ"), Some(vec![1]));
        assert_eq!(b64url_decode("AR"), None);
    }

    proptest::proptest! {
        /// The vectorised decoder accepts and refuses exactly as the `base64` crate's strict
        /// engine, and decodes to the same bytes (JKT-05: the one strict spelling).
        #[test]
        fn vectorised_base64url_matches_the_strict_engine(
            input in "[A-Za-z0-9_=+/.-]{0,130}",
        ) {
            let reference = URL_SAFE_NO_PAD.decode(&input).ok();
            proptest::prop_assert_eq!(&b64url_decode(&input), &reference);
            let mut room = vec![0; b64url_decoded_room(input.len())];
            proptest::prop_assert_eq!(
                b64url_decode_slice(&input, &mut room).map(<[u8]>::to_vec),
                reference
            );
        }

        /// Canonical inputs (any bytes, encoded) decode back; the same with a flipped last
        /// character, which only the canonical spelling survives.
        #[test]
        fn vectorised_base64url_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let encoded = b64url(&bytes);
            proptest::prop_assert_eq!(b64url_decode(&encoded), Some(bytes));
            if let Some(last) = encoded.chars().last() {
                let flipped = format!("{}{}", &encoded[..encoded.len() - 1], if last == 'A' { 'B' } else { 'A' });
                proptest::prop_assert_eq!(b64url_decode(&flipped), URL_SAFE_NO_PAD.decode(&flipped).ok());
            }
        }
    }
}
