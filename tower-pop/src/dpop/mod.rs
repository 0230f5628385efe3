//! DPoP (RFC 9449): proof parsing and checks, `htu` normalisation, and (with the `signer`
//! feature) a proof signer for clients.
//!
//! The resource-server rules live in [`crate::verifier::Verifier`], which runs the checks of RFC 9449
//! §4.3 and §7.1 in order; this module owns the pieces. Deployment caveat: the expected `htu` is
//! built from the configured public origin ([`crate::config::PopConfigBuilder::public_origin`]), so a
//! server behind a TLS-terminating proxy must be configured with the URL clients use.

pub(crate) mod htu;
pub(crate) mod known_key;
pub mod nonce;
pub(crate) mod proof;
#[cfg(feature = "signer")]
pub mod signer;

use crate::error::PopErrorKind;
use crate::jose::Algorithm;

// 0.1 paths of the proof-window defaults, which live in `crate::defaults`.
#[doc(hidden)]
pub use crate::defaults::{
    PROOF_FUTURE_SKEW as DEFAULT_PROOF_FUTURE_SKEW, PROOF_MAX_AGE as DEFAULT_PROOF_MAX_AGE,
};

/// Check a DPoP proof that comes without an access token, as an authorization server's token
/// endpoint receives it (RFC 9449 §5): RFC 9449 §4.3 checks 2-9 and 11 with the default `iat`
/// window. Returns the RFC 7638 thumbprint of the proof key, the `jkt` to bind the issued token
/// to. It does not remember `jti`s: the caller must, if it needs single use.
///
/// ```
/// # #[cfg(feature = "signer")] {
/// use tower_pop::Algorithm;
/// use tower_pop::dpop::{signer::ProofSigner, verify_token_request_proof};
///
/// let client = ProofSigner::generate(Algorithm::ES256).unwrap();
/// let proof = client.proof_at("POST", "https://as.example.com/token", None, None, 1_700_000_000).unwrap();
/// let jkt = verify_token_request_proof(&proof, "POST", "https://as.example.com/token", 1_700_000_000, &[Algorithm::ES256]);
/// assert_eq!(jkt.as_deref(), Ok(client.thumbprint()));
/// # }
/// ```
///
/// # Errors
/// The first check that failed.
pub fn verify_token_request_proof(
    proof: &str,
    method: &str,
    url: &str,
    now_unix: u64,
    algorithms: &[Algorithm],
) -> Result<String, PopErrorKind> {
    let mut bytes = proof::ProofBytes::default();
    let mut proof = proof::Proof::parse(proof.as_bytes(), algorithms, &mut bytes)?;
    proof.check_htm(method)?;
    proof.check_htu(&htu::normalize(url).ok_or(PopErrorKind::HtuMismatch)?)?;
    proof.check_iat(
        now_unix,
        crate::defaults::PROOF_MAX_AGE.as_secs(),
        crate::defaults::PROOF_FUTURE_SKEW.as_secs(),
    )?;
    proof.check_signature()?;
    Ok(proof.thumbprint())
}
