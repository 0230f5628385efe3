//! DPoP (RFC 9449): proof parsing and checks, `htu` normalisation, and (with the `signer`
//! feature) a proof signer for clients.
//!
//! The resource-server rules live in [`crate::verifier`], which runs the checks of RFC 9449
//! §4.3 and §7.1 in order; this module owns the pieces. Deployment caveat: the expected `htu` is
//! built from the configured public origin ([`crate::PopConfigBuilder::public_origin`]), so a
//! server behind a TLS-terminating proxy must be configured with the URL clients use.

pub(crate) mod htu;
pub(crate) mod proof;
#[cfg(feature = "signer")]
pub mod signer;
