//! HTTP Message Signatures (RFC 9421) bound to the access token's key, with `Content-Digest`
//! (RFC 9530): integrity of the whole request, body included, which a DPoP proof alone does
//! not give (it signs only the method and URL, RFC 9449 §11.7).
//!
//! - [`SignaturePolicy`]: what a signature must cover (RFC 9421 §3.2.1), with safe defaults.
//! - [`SignatureVerifier`]: the checks of RFC 9421 §3.2 with the key the token is bound to
//!   (the DPoP key, `cnf.jkt`, or the client certificate's key, RFC 8705), the algorithm the key
//!   implies (§3.3), single use through the replay store, and `Content-Digest` against the body.
//! - [`RequireSignatureLayer`]: the tower middleware; refusals are 401 `invalid_signature` with
//!   `Accept-Signature` (§5.1), 400 for malformed structured fields, 413 for a body over the bound.
//! - [`content_digest`]: the RFC 9530 field value for a body.
//! - With the `signer` feature, [`sign`]: signing requests (clients) and responses (servers,
//!   §2.4 `req`); [`respond::SignResponseLayer`] signs every response of a service.
//!
//! Structured fields are parsed and serialized by `sfv` (RFC 8941); the signature base (§2.5)
//! is ours, on aws-lc-rs like every other signature in this crate.

mod base;
mod digest;
mod fields;
mod key;
mod layer;
mod policy;
#[cfg(feature = "signer")]
pub mod respond;
#[cfg(feature = "signer")]
pub mod sign;
#[cfg(test)]
mod vectors;
mod verify;

pub use digest::{DigestAlgorithm, content_digest};
pub use key::SignatureAlgorithm;
pub use layer::{RequireSignature, RequireSignatureLayer};
pub use policy::{DEFAULT_COMPONENTS, DEFAULT_MAX_BODY, SignaturePolicy};
pub use verify::{SignatureVerifier, VerifiedSignature};

/// Thin wrappers for the `http_signature` fuzz target; not a public API.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing {
    use http::HeaderMap;

    use super::base::{Message, RequestTarget, serialize_inner_list, signature_base};
    use super::fields::signatures;

    /// For every signature the fields carry: its base for a request with `headers` and this
    /// target, or `None` when it cannot be built. Panics when an oracle fails: a base is ASCII
    /// and ends with the `@signature-params` line, which reads back to the same parameters.
    #[must_use]
    pub fn bases(headers: &HeaderMap, path: &str, query: Option<&str>) -> Vec<Option<String>> {
        let Ok(labelled) = signatures(headers) else {
            return Vec::new();
        };
        let target = RequestTarget {
            method: "POST",
            scheme: "https",
            authority: "api.example",
            path,
            query,
            headers,
        };
        labelled
            .iter()
            .map(|s| {
                let base = signature_base(&s.params, &Message::Request(target)).ok()?;
                let line = format!("\"@signature-params\": {}", serialize_inner_list(&s.params));
                assert!(
                    base.is_ascii() && base.ends_with(&line),
                    "the last line is the parameters"
                );
                let mut again = HeaderMap::new();
                let input = format!("a={}", serialize_inner_list(&s.params));
                again.insert(
                    "signature-input",
                    input.parse().expect("serialized SF is a field value"),
                );
                again.insert("signature", "a=:AA==:".parse().expect("a field value"));
                let read = signatures(&again).expect("the serialization reads back");
                assert_eq!(read[0].params, s.params, "the parameters round-trip");
                Some(base)
            })
            .collect()
    }

    /// Whether `Content-Digest` in `headers` vouches for `content`; panics if a digest this crate
    /// computes for `content` is not accepted.
    #[must_use]
    pub fn digest(headers: &HeaderMap, content: &[u8]) -> bool {
        use super::digest::{DigestAlgorithm, check, content_digest};
        for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            let mut own = HeaderMap::new();
            own.insert(
                "content-digest",
                content_digest(algorithm, content).parse().expect("ASCII"),
            );
            assert_eq!(check(&own, content), Ok(()), "our own digest is accepted");
        }
        check(headers, content).is_ok()
    }
}
