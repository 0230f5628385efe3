//! A DPoP proof signer for clients (RFC 9449 §4.2), behind the `signer` feature.
//!
//! It holds a private key and builds the `DPoP` header value for one request: `typ`
//! `dpop+jwt`, `alg`, the public `jwk`; claims `jti` (128 random bits), `htm`, `htu` (query and
//! fragment removed, as §4.2 requires), `iat`, `ath` when an access token is sent, and `nonce`
//! when the server supplied one. Make a fresh proof for every request, retries included
//! (RFC 9449 §7.3): the server refuses a proof it has seen.
//!
//! Signing fails closed: when the system's random generator or the signature fails, the proof
//! is an error ([`SignerError`]), never a proof with a guessable `jti` or an empty signature.
//!
//! ```
//! use tower_pop::Algorithm;
//! use tower_pop::dpop::signer::ProofSigner;
//!
//! # fn main() -> Result<(), tower_pop::dpop::signer::SignerError> {
//! let signer = ProofSigner::generate(Algorithm::ES256)?;
//! let proof = signer.proof("GET", "https://api.example.com/whoami?x=1", Some("the-access-token"), None)?;
//! assert_eq!(proof.split('.').count(), 3);
//! // The authorization server binds the token to this thumbprint (`cnf.jkt`).
//! assert_eq!(signer.thumbprint().len(), 43);
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use crate::jose::digest::sha256_b64url;
use crate::jose::thumbprint::ath;
use crate::jose::{Algorithm, b64url};

/// The key could not be generated or loaded, the algorithm is not supported for signing, or a
/// signature could not be made (the system's random generator or the signing failed). The text
/// is fixed: it never quotes a key, a path or a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerError(&'static str);

impl SignerError {
    const RANDOM: Self = Self("system random generator failed");
    pub(crate) const SIGNING: Self = Self("signing failed");
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for SignerError {}

enum SigningKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// Signs DPoP proofs (and, for tests and demos, any compact JWS) with one private key.
pub struct ProofSigner {
    alg: Algorithm,
    key: SigningKey,
    jwk: Value,
    thumbprint: String,
    rng: SystemRandom,
}

// Never print key material.
impl fmt::Debug for ProofSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofSigner")
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

fn ecdsa_signing(
    alg: Algorithm,
) -> Option<(&'static sig::EcdsaSigningAlgorithm, &'static str, usize)> {
    match alg {
        Algorithm::ES256 => Some((&sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)),
        Algorithm::ES384 => Some((&sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)),
        Algorithm::ES512 => Some((&sig::ECDSA_P521_SHA512_FIXED_SIGNING, "P-521", 66)),
        _ => None,
    }
}

fn rsa_encoding(alg: Algorithm) -> Option<&'static dyn sig::RsaEncoding> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_SHA512,
        _ => return None,
    })
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ProofSigner {
    /// Generate a new key for `alg` (RSA algorithms get a 2048-bit key).
    ///
    /// # Errors
    /// When key generation fails.
    pub fn generate(alg: Algorithm) -> Result<Self, SignerError> {
        let failed = SignerError("key generation failed");
        let key = if let Some((curve, _, _)) = ecdsa_signing(alg) {
            SigningKey::Ecdsa(EcdsaKeyPair::generate(curve).map_err(|_| failed.clone())?)
        } else if matches!(alg, Algorithm::EdDSA | Algorithm::Ed25519) {
            SigningKey::Ed25519(Ed25519KeyPair::generate().map_err(|_| failed.clone())?)
        } else {
            SigningKey::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed.clone())?)
        };
        Ok(Self::with_key(alg, key))
    }

    /// Load a PKCS#8 (DER) private key for `alg`.
    ///
    /// # Errors
    /// When the key does not parse or does not fit `alg`.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, SignerError> {
        let rejected = SignerError("private key rejected for this algorithm");
        let key = if let Some((curve, _, _)) = ecdsa_signing(alg) {
            SigningKey::Ecdsa(EcdsaKeyPair::from_pkcs8(curve, der).map_err(|_| rejected.clone())?)
        } else if matches!(alg, Algorithm::EdDSA | Algorithm::Ed25519) {
            SigningKey::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(|_| rejected.clone())?)
        } else {
            SigningKey::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|_| rejected.clone())?)
        };
        Ok(Self::with_key(alg, key))
    }

    /// Load a PKCS#8 private key for `alg` from PEM text (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// ```
    /// use tower_pop::Algorithm;
    /// use tower_pop::dpop::signer::ProofSigner;
    ///
    /// assert!(ProofSigner::from_pkcs8_pem(Algorithm::ES256, b"not a key").is_err());
    /// ```
    ///
    /// # Errors
    /// When the text holds no PKCS#8 `PRIVATE KEY` block, or the key does not fit `alg`. The
    /// error never quotes the input.
    pub fn from_pkcs8_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, SignerError> {
        use rustls_pki_types::PrivatePkcs8KeyDer;
        use rustls_pki_types::pem::PemObject;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|_| SignerError("no PKCS#8 PRIVATE KEY block in the PEM text"))?;
        Self::from_pkcs8(alg, der.secret_pkcs8_der())
    }

    /// Load a PKCS#8 private key for `alg` from a file, PEM or DER (PEM when the file starts
    /// with `-----BEGIN`, after optional whitespace).
    ///
    /// # Errors
    /// When the file cannot be read, or as [`Self::from_pkcs8_pem`] and [`Self::from_pkcs8`].
    /// The error names neither the path nor the contents.
    pub fn from_pkcs8_file(
        alg: Algorithm,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Self, SignerError> {
        let bytes = std::fs::read(path).map_err(|_| SignerError("private key file unreadable"))?;
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        if bytes[start..].starts_with(b"-----BEGIN") {
            Self::from_pkcs8_pem(alg, &bytes)
        } else {
            Self::from_pkcs8(alg, &bytes)
        }
    }

    fn with_key(alg: Algorithm, key: SigningKey) -> Self {
        let (jwk, canonical) = match &key {
            SigningKey::Ecdsa(k) => {
                let (_, crv, len) = ecdsa_signing(alg).unwrap_or((
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    "P-256",
                    32,
                ));
                let point = k.public_key().as_ref();
                let (x, y) = (b64url(&point[1..=len]), b64url(&point[1 + len..]));
                (
                    json!({"kty": "EC", "crv": crv, "x": x, "y": y}),
                    format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#),
                )
            }
            SigningKey::Ed25519(k) => {
                let x = b64url(k.public_key().as_ref());
                (
                    json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
                    format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
                )
            }
            SigningKey::Rsa(k) => {
                let public = k.public_key();
                let n = b64url(public.modulus().big_endian_without_leading_zero());
                let e = b64url(public.exponent().big_endian_without_leading_zero());
                (
                    json!({"kty": "RSA", "n": n, "e": e}),
                    format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
                )
            }
        };
        Self {
            alg,
            key,
            jwk,
            thumbprint: sha256_b64url(canonical.as_bytes()),
            rng: SystemRandom::new(),
        }
    }

    /// A signer that cannot sign (an RSA key declared for ES256): every proof fails, for tests
    /// of how signing failures propagate.
    #[cfg(test)]
    pub(crate) fn failing_for_tests() -> Self {
        let rsa = Self::generate(Algorithm::PS256).expect("RSA key generation");
        Self {
            alg: Algorithm::ES256,
            ..rsa
        }
    }

    /// The signing algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The RFC 7638 thumbprint of the public key: what the token's `cnf.jkt` must be.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The public key as a JWK JSON string.
    #[must_use]
    pub fn public_jwk(&self) -> String {
        self.jwk.to_string()
    }

    /// A proof for one request, with `iat` now and a fresh random `jti`.
    ///
    /// # Errors
    /// When the random generator or the signature fails: no proof rather than a weak one.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, SignerError> {
        self.proof_at(method, url, access_token, nonce, now_unix())
    }

    /// A proof with an explicit `iat` (seconds since the Unix epoch).
    ///
    /// # Errors
    /// As [`proof`](Self::proof).
    pub fn proof_at(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        iat: u64,
    ) -> Result<String, SignerError> {
        let htu = url.split(['?', '#']).next().unwrap_or_default();
        let mut claims = json!({
            "jti": self.random_jti()?,
            "htm": method,
            "htu": htu,
            "iat": iat,
        });
        if let Some(token) = access_token {
            claims["ath"] = Value::String(ath(token));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::String(nonce.to_owned());
        }
        self.sign_compact(&self.proof_header(), &claims)
    }

    /// The protected header of a proof: `typ`, `alg`, `jwk`.
    #[must_use]
    pub fn proof_header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg.as_str(), "jwk": self.jwk})
    }

    /// A fresh `jti`: 128 random bits, base64url.
    ///
    /// # Errors
    /// When the system's random generator fails (never a time-based fallback: a guessable
    /// `jti` would let a proof be pre-empted or collide).
    pub fn random_jti(&self) -> Result<String, SignerError> {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes).map_err(|_| SignerError::RANDOM)?;
        Ok(b64url(&bytes))
    }

    /// Sign any header and payload as a compact JWS with this key and algorithm. Useful for
    /// tests (malformed proofs) and demos (an authorization server signing access tokens); the
    /// header is used as given.
    ///
    /// # Errors
    /// When the signature fails (never an empty signature).
    pub fn sign_compact(&self, header: &Value, payload: &Value) -> Result<String, SignerError> {
        self.sign_compact_raw(
            header.to_string().as_bytes(),
            payload.to_string().as_bytes(),
        )
    }

    /// Sign raw header and payload bytes (they need not be valid JSON).
    ///
    /// # Errors
    /// As [`sign_compact`](Self::sign_compact).
    pub fn sign_compact_raw(&self, header: &[u8], payload: &[u8]) -> Result<String, SignerError> {
        let input = format!("{}.{}", b64url(header), b64url(payload));
        let signature = self.sign_bytes(input.as_bytes())?;
        Ok(format!("{input}.{}", b64url(&signature)))
    }

    /// An RSASSA-PSS SHA-512 signature over `message`, whatever this RSA key's JOSE algorithm
    /// (RFC 9421 `rsa-pss-sha512` names its algorithm by key type); an error for other keys.
    #[cfg(feature = "httpsig")]
    pub(crate) fn sign_rsa_pss_sha512(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let SigningKey::Rsa(k) = &self.key else {
            return Err(SignerError::SIGNING);
        };
        let mut out = vec![0; k.public_modulus_len()];
        k.sign(&sig::RSA_PSS_SHA512, &self.rng, message, &mut out)
            .map_err(|_| SignerError::SIGNING)?;
        Ok(out)
    }

    /// A signature over `message` with this key and algorithm (fixed `r || s` for ECDSA).
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.key {
            SigningKey::Ecdsa(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignerError::SIGNING),
            SigningKey::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            SigningKey::Rsa(k) => {
                let encoding = rsa_encoding(self.alg).ok_or(SignerError::SIGNING)?;
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(encoding, &self.rng, message, &mut out)
                    .map_err(|_| SignerError::SIGNING)?;
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use base64::Engine;

    fn pkcs8_es256() -> Vec<u8> {
        EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn pem(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn loads_the_same_pkcs8_key_from_pem_der_and_files() {
        let der = pkcs8_es256();
        let from_der = ProofSigner::from_pkcs8(Algorithm::ES256, &der).unwrap();
        let from_pem = ProofSigner::from_pkcs8_pem(Algorithm::ES256, pem(&der).as_bytes()).unwrap();
        assert_eq!(from_der.thumbprint(), from_pem.thumbprint());
        let dir = std::env::temp_dir();
        let id = std::process::id();
        for (name, bytes) in [
            ("pem", format!("\n{}", pem(&der)).into_bytes()),
            ("der", der),
        ] {
            let path = dir.join(format!("tower-pop-signer-{id}.{name}"));
            std::fs::write(&path, bytes).unwrap();
            let loaded = ProofSigner::from_pkcs8_file(Algorithm::ES256, &path).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert_eq!(loaded.thumbprint(), from_der.thumbprint(), "{name}");
        }
    }

    #[test]
    fn proofs_and_jtis_are_results_with_real_signatures() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::PS256] {
            let signer = ProofSigner::generate(alg).unwrap();
            let proof = signer
                .proof("GET", "https://api.example.com/", None, None)
                .unwrap();
            let signature = proof.rsplit('.').next().unwrap();
            assert!(!signature.is_empty(), "{alg:?}");
            assert_ne!(signer.random_jti().unwrap(), signer.random_jti().unwrap());
        }
    }

    /// An RSA key loaded for an algorithm that is not RSA has no signature to make: an error,
    /// never an empty signature.
    #[test]
    fn a_signature_that_cannot_be_made_is_an_error() {
        let mismatched = ProofSigner::failing_for_tests();
        assert_eq!(
            mismatched.sign_compact(&json!({}), &json!({})),
            Err(SignerError::SIGNING)
        );
        assert!(
            mismatched
                .proof("GET", "https://api.example.com/", None, None)
                .is_err()
        );
    }

    #[test]
    fn refuses_bad_keys_without_quoting_them() {
        let der = pkcs8_es256();
        // An EC P-256 key is not an Ed25519 key.
        assert!(ProofSigner::from_pkcs8_pem(Algorithm::EdDSA, pem(&der).as_bytes()).is_err());
        let e = ProofSigner::from_pkcs8_pem(
            Algorithm::ES256,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("AAAA"));
        let e = ProofSigner::from_pkcs8_file(Algorithm::ES256, "/nonexistent/secret-key.pem")
            .unwrap_err();
        assert!(!e.to_string().contains("secret-key"));
    }
}
