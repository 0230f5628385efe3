//! SHA-256 (FIPS 180-4) as this crate uses it: raw, and base64url without padding (RFC 7515
//! §2), the form of RFC 7638 thumbprints, RFC 8705 `x5t#S256` and RFC 9449 `ath`.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::jose::{b64url, b64url_decode_slice};

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub(crate) fn sha256_b64url(bytes: &[u8]) -> String {
    b64url(&sha256(bytes))
}

/// Whether `encoded` is the strict base64url spelling of `digest` (as `ath`, `cnf.jkt` and
/// `x5t#S256` are), compared in constant time. Strict base64url has one spelling per value, so
/// this is the string compare without building the string.
pub(crate) fn is_b64url_of(encoded: &str, digest: &[u8; 32]) -> bool {
    let mut decoded = [0u8; 33];
    b64url_decode_slice(encoded, &mut decoded).is_some_and(|decoded| ct_eq(decoded, digest))
}

/// Whether `a` equals `b`, in time that depends only on their lengths (lengths are public: a
/// thumbprint, an `ath` or a tag has a fixed one). The differences are OR-ed together eight
/// bytes at a time, without a branch, and the result goes through one `subtle` compare, so a
/// 43-byte thumbprint costs six word operations instead of 43 byte compares.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    let mut difference = 0u64;
    for (x, y) in a_words.iter().zip(b_words) {
        difference |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        difference |= u64::from(x ^ y);
    }
    difference.ct_eq(&0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_every_byte_and_the_length() {
        let a: Vec<u8> = (0..43).collect();
        assert!(ct_eq(&a, &a.clone()));
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 0x80;
            assert!(!ct_eq(&a, &b), "byte {i}");
        }
        assert!(!ct_eq(&a, &a[..42]));
        assert!(ct_eq(b"", b""));
    }
}
