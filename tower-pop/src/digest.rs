//! SHA-256 (FIPS 180-4) as this crate uses it: raw, and base64url without padding (RFC 7515
//! §2), the form of RFC 7638 thumbprints, RFC 8705 `x5t#S256` and RFC 9449 `ath`.

use sha2::{Digest, Sha256};

use crate::jose::b64url;

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub(crate) fn sha256_b64url(bytes: &[u8]) -> String {
    b64url(&sha256(bytes))
}
