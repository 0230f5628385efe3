//! The key a request signature must be made with: the one the access token is bound to (the
//! DPoP proof's `jwk`, whose thumbprint is `cnf.jkt`, or the client certificate's public key for
//! a certificate-bound token), and the RFC 9421 §3.3 algorithm that key implies.

use aws_lc_rs::signature::{self as sig, ParsedPublicKey};

use crate::jose::Algorithm;
use crate::jose::jwk::PublicJwk;

/// An algorithm of the HTTP Signature Algorithms registry (RFC 9421 §6.2.2) that this crate
/// verifies. Each is the one a key type implies; it is allowed when the DPoP allow-list allows
/// the JOSE algorithm with the same key and signature (RFC 9421 §3.3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// `ecdsa-p256-sha256` (RFC 9421 §3.3.4), the signature of JOSE `ES256`.
    EcdsaP256Sha256,
    /// `ecdsa-p384-sha384` (RFC 9421 §3.3.5), the signature of JOSE `ES384`.
    EcdsaP384Sha384,
    /// `ed25519` (RFC 9421 §3.3.6), the signature of JOSE `EdDSA` with Ed25519.
    Ed25519,
    /// `rsa-pss-sha512` (RFC 9421 §3.3.1), the signature of JOSE `PS512`; allowed with any
    /// RSASSA-PSS algorithm on the DPoP allow-list.
    RsaPssSha512,
}

impl SignatureAlgorithm {
    /// The registered name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Self::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            Self::Ed25519 => "ed25519",
            Self::RsaPssSha512 => "rsa-pss-sha512",
        }
    }

    /// The JOSE algorithm with the same key type and signature.
    pub(crate) fn jose(self) -> Algorithm {
        match self {
            Self::EcdsaP256Sha256 => Algorithm::ES256,
            Self::EcdsaP384Sha384 => Algorithm::ES384,
            Self::Ed25519 => Algorithm::EdDSA,
            Self::RsaPssSha512 => Algorithm::PS512,
        }
    }

    /// Whether the DPoP allow-list `allowed` admits this algorithm's key and signature.
    pub(crate) fn allowed_by(self, allowed: &[Algorithm]) -> bool {
        allowed.iter().any(|a| match self {
            Self::EcdsaP256Sha256 => *a == Algorithm::ES256,
            Self::EcdsaP384Sha384 => *a == Algorithm::ES384,
            Self::Ed25519 => matches!(a, Algorithm::EdDSA | Algorithm::Ed25519),
            Self::RsaPssSha512 => {
                matches!(a, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512)
            }
        })
    }

    const ALL: [Self; 4] = [
        Self::EcdsaP256Sha256,
        Self::EcdsaP384Sha384,
        Self::Ed25519,
        Self::RsaPssSha512,
    ];

    fn verifier(self) -> &'static dyn sig::VerificationAlgorithm {
        match self {
            Self::EcdsaP256Sha256 => &sig::ECDSA_P256_SHA256_FIXED,
            Self::EcdsaP384Sha384 => &sig::ECDSA_P384_SHA384_FIXED,
            Self::Ed25519 => &sig::ED25519,
            Self::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
        }
    }
}

/// The order `n` of P-256 (SEC 2 §2.4.2), big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// The order `n` of P-384 (SEC 2 §2.5.1), big-endian.
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// `a - b` for big-endian numbers of the same length, `b <= a` (wraps otherwise; a signature
/// whose `s` is not below `n` never verifies).
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap_or_default();
    }
    out
}

/// A key as imported into aws-lc: now, or kept by the token since its first proof.
enum Imported<'k> {
    Now(ParsedPublicKey),
    Kept(&'k ParsedPublicKey),
}

/// A bound public key, imported for the one algorithm its type implies.
pub(crate) struct BoundKey<'k> {
    algorithm: SignatureAlgorithm,
    imported: Imported<'k>,
}

impl std::fmt::Debug for BoundKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl<'k> BoundKey<'k> {
    /// The DPoP proof's key, when its type has an allowed RFC 9421 algorithm; `kept` is its
    /// import for the JOSE algorithm `kept.0`, reused when that is the same signature (ES256,
    /// EdDSA) rather than imported again.
    pub(crate) fn from_jwk(
        jwk: &PublicJwk<'_>,
        allowed: &[Algorithm],
        kept: Option<(Algorithm, &'k ParsedPublicKey)>,
    ) -> Option<Self> {
        let algorithm = SignatureAlgorithm::ALL
            .into_iter()
            .find(|a| jwk.fits(a.jose()))?;
        if !algorithm.allowed_by(allowed) {
            return None;
        }
        let same = |alg: Algorithm| match algorithm {
            SignatureAlgorithm::Ed25519 => matches!(alg, Algorithm::EdDSA | Algorithm::Ed25519),
            _ => alg == algorithm.jose(),
        };
        let imported = match kept {
            Some((alg, imported)) if same(alg) => Imported::Kept(imported),
            _ => Imported::Now(jwk.import(algorithm.jose())?),
        };
        Some(Self {
            algorithm,
            imported,
        })
    }

    /// A certificate's key (its DER `SubjectPublicKeyInfo`), when aws-lc imports it for an
    /// allowed algorithm.
    pub(crate) fn from_spki(spki: &[u8], allowed: &[Algorithm]) -> Option<Self> {
        SignatureAlgorithm::ALL.into_iter().find_map(|algorithm| {
            let imported = ParsedPublicKey::new(algorithm.verifier(), spki).ok()?;
            algorithm.allowed_by(allowed).then_some(Self {
                algorithm,
                imported: Imported::Now(imported),
            })
        })
    }

    /// The algorithm the key implies.
    pub(crate) fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// `signature` in one form per signature: for ECDSA, `r || min(s, n - s)` (both verify,
    /// RFC 9421 §3.3.4 does not forbid the high one); other algorithms are not malleable.
    pub(crate) fn canonical_signature<'s>(
        &self,
        signature: &'s [u8],
    ) -> std::borrow::Cow<'s, [u8]> {
        let order: &[u8] = match self.algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => &P256_ORDER,
            SignatureAlgorithm::EcdsaP384Sha384 => &P384_ORDER,
            _ => return std::borrow::Cow::Borrowed(signature),
        };
        let half = order.len();
        if signature.len() != 2 * half {
            return std::borrow::Cow::Borrowed(signature);
        }
        let s = &signature[half..];
        let flipped = sub_be(order, s);
        if flipped.as_slice() < s {
            let mut low = signature[..half].to_vec();
            low.extend_from_slice(&flipped);
            std::borrow::Cow::Owned(low)
        } else {
            std::borrow::Cow::Borrowed(signature)
        }
    }

    /// Whether `signature` over `base` verifies (RFC 9421 §3.2 step 8). ECDSA signatures are the
    /// fixed `r || s` form (RFC 9421 §3.3.4); aws-lc's fixed verifiers refuse any other length.
    pub(crate) fn verify(&self, base: &[u8], signature: &[u8]) -> bool {
        let imported = match &self.imported {
            Imported::Now(key) => key,
            Imported::Kept(key) => *key,
        };
        imported.verify_sig(base, signature).is_ok()
    }
}
