//! `Content-Digest` (RFC 9530 §2): a Dictionary of algorithm to the digest of the message
//! content as sent. Only the active algorithms `sha-256` and `sha-512` are accepted (RFC 9530
//! §5: the others must not be used where an attacker chooses the input); every accepted member
//! must match, compared in constant time, and unknown members are ignored (§2).

use aws_lc_rs::digest::{self, SHA256, SHA512};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use sfv::{BareItem, ListEntry};
use subtle::ConstantTimeEq as _;

use super::fields::{combined, unique_dictionary};

/// A digest algorithm of the RFC 9530 registry that this crate computes and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// `sha-256` (RFC 9530 §5).
    Sha256,
    /// `sha-512` (RFC 9530 §5).
    Sha512,
}

impl DigestAlgorithm {
    /// The registered name, as a `Content-Digest` key.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha-256" => Some(Self::Sha256),
            "sha-512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn digest(self, content: &[u8]) -> digest::Digest {
        let algorithm = match self {
            Self::Sha256 => &SHA256,
            Self::Sha512 => &SHA512,
        };
        digest::digest(algorithm, content)
    }
}

/// The `Content-Digest` value for `content` with `algorithm`, e.g.
/// `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:` for `{"hello": "world"}`
/// (RFC 9530 §B.1).
///
/// ```
/// use tower_pop::httpsig::{DigestAlgorithm, content_digest};
/// assert_eq!(
///     content_digest(DigestAlgorithm::Sha256, br#"{"hello": "world"}"#),
///     "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
/// );
/// ```
#[must_use]
pub fn content_digest(algorithm: DigestAlgorithm, content: &[u8]) -> String {
    format!(
        "{}=:{}:",
        algorithm.as_str(),
        STANDARD.encode(algorithm.digest(content))
    )
}

/// Why a `Content-Digest` does not vouch for the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DigestError {
    /// The field is absent, or has no accepted algorithm, or a digest differs.
    Mismatch,
    /// Not a Dictionary of byte sequences.
    Malformed,
}

/// Checks the `Content-Digest` of `headers` against `content`: at least one accepted algorithm,
/// and every accepted member equal to the content's digest.
pub(crate) fn check(headers: &HeaderMap, content: &[u8]) -> Result<(), DigestError> {
    let value = combined(headers, "content-digest")
        .map_err(|_| DigestError::Malformed)?
        .ok_or(DigestError::Mismatch)?;
    let dictionary = unique_dictionary(&value).map_err(|_| DigestError::Malformed)?;
    let mut checked = 0;
    for (name, member) in &dictionary {
        let ListEntry::Item(item) = member else {
            return Err(DigestError::Malformed);
        };
        let BareItem::ByteSequence(claimed) = &item.bare_item else {
            return Err(DigestError::Malformed);
        };
        let Some(algorithm) = DigestAlgorithm::from_name(name.as_str()) else {
            continue;
        };
        let actual = algorithm.digest(content);
        if !bool::from(actual.as_ref().ct_eq(claimed.as_slice())) {
            return Err(DigestError::Mismatch);
        }
        checked += 1;
    }
    if checked == 0 {
        return Err(DigestError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-digest", value.parse().unwrap());
        h
    }

    /// RFC 9530 Appendix B.1: `{"hello": "world"}` with both active algorithms.
    #[test]
    fn rfc9530_examples_hash_the_content() {
        let body = br#"{"hello": "world"}"#;
        assert_eq!(
            content_digest(DigestAlgorithm::Sha512, body),
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
        );
        assert_eq!(
            content_digest(DigestAlgorithm::Sha256, b"{\"hello\": \"world\"}\n"),
            "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
        );
        let both = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
        assert_eq!(check(&headers(both), body), Ok(()));
        // RFC 9530 §B.1: the empty content has a digest too.
        assert_eq!(
            check(
                &headers("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"),
                b""
            ),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_weak_algorithms_and_garbage_are_refused() {
        let good = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
        assert_eq!(
            check(&headers(good), br#"{"hello": "world!"}"#),
            Err(DigestError::Mismatch)
        );
        // A deprecated algorithm alone vouches for nothing (RFC 9530 §5).
        assert_eq!(
            check(&headers("md5=:XrY7u+Ae7tCTyyK7j1rNww==:"), b"hello world"),
            Err(DigestError::Mismatch)
        );
        // A right sha-256 next to a wrong sha-512: every accepted member must match.
        let mixed = format!("{good}, sha-512=:AAAA:");
        assert_eq!(
            check(&headers(&mixed), br#"{"hello": "world"}"#),
            Err(DigestError::Mismatch)
        );
        assert_eq!(
            check(&headers("sha-256=abc"), b""),
            Err(DigestError::Malformed)
        );
        assert_eq!(
            check(
                &headers(&format!("{good}, {good}")),
                br#"{"hello": "world"}"#
            ),
            Err(DigestError::Malformed)
        );
        assert_eq!(check(&HeaderMap::new(), b""), Err(DigestError::Mismatch));
    }
}
