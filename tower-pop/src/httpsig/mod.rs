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
//!   §2.4 `req`).
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
pub mod sign;
#[cfg(test)]
mod vectors;
mod verify;

pub use digest::{DigestAlgorithm, content_digest};
pub use key::SignatureAlgorithm;
pub use layer::{RequireSignature, RequireSignatureLayer};
pub use policy::{DEFAULT_COMPONENTS, DEFAULT_MAX_BODY, SignaturePolicy};
pub use verify::{SignatureVerifier, VerifiedSignature};
