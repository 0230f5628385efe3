//! A rustls server configuration for mutual TLS (RFC 8705 §2, §3), shared by the adapters' TLS
//! servers (`axum_pop::tls`, `actix_pop::tls`). Feature `rustls`.
//!
//! Certificate-bound tokens (RFC 8705 §3) need the client certificate of the connection, so
//! the server must ask for one. [`TlsConfig`] builds a rustls [`ServerConfig`] that does:
//!
//! - **The aws-lc-rs provider, explicitly** (never the process-wide default, so linking another
//!   provider elsewhere changes nothing here), **TLS 1.3 and 1.2 only**. Its default cipher
//!   suites, in preference order: TLS 1.3 `TLS13_AES_256_GCM_SHA384`, `TLS13_AES_128_GCM_SHA256`,
//!   `TLS13_CHACHA20_POLY1305_SHA256`; TLS 1.2 `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`,
//!   `…_AES_128_GCM_SHA256`, `…_CHACHA20_POLY1305_SHA256` and the same three with `ECDHE_RSA`
//!   (forward secrecy and AEAD only; no CBC, no RSA key exchange). Key exchange groups:
//!   `X25519MLKEM768` (post-quantum hybrid, preferred), `X25519`, `secp256r1`, `secp384r1`.
//! - **Client authentication** ([`ClientAuth`]): none; optional or required and verified
//!   against a CA; or any certificate at all
//!   ([`insecure_accept_any_client_certificate`](TlsConfigBuilder::insecure_accept_any_client_certificate)).
//!   With a CA, **optional is the default** ([`client_ca_pem_file`](TlsConfigBuilder::client_ca_pem_file)):
//!   routes without certificate-bound tokens and DPoP clients still connect; a bound token
//!   without a certificate is refused by the verifier (RFC 8705 §3), not by the handshake.
//! - **No chain validation is needed for the binding** (RFC 8705 §6.2): the handshake
//!   proves the client holds the certificate's key, and the token names the exact certificate.
//!   The CA modes add an admission policy on top; the insecure mode is for self-signed client
//!   certificates (RFC 8705 §2.2) and still checks the handshake signature.
//! - No ALPN: each adapter sets its own (axum `h2`, `http/1.1`; actix-web adds them itself).
//!
//! If the client renegotiates or authenticates after the handshake, rustls refuses (it does
//! not support either on the server side), so one connection has exactly one client
//! certificate, captured once (RFC 9440 §1.2).
//!
//! This module is the one place where a dependency's types appear in tower-pop's API: the
//! adapters and users need the rustls [`ServerConfig`] itself (rustls 0.23).
//!
//! ## Example
//!
//! ```
//! use tower_pop::tls::{ClientAuth, PemSource, TlsConfig, TlsConfigError};
//!
//! let err = TlsConfig::builder()
//!     .cert_chain_pem_file("/nonexistent/server.pem")
//!     .private_key_pem_file("/nonexistent/server.key")
//!     .client_auth(ClientAuth::Required { ca: PemSource::File("/nonexistent/ca.pem".into()) })
//!     .build()
//!     .unwrap_err();
//! assert!(matches!(err, TlsConfigError::Read { .. }));
//! assert!(err.to_string().contains("\"/nonexistent/server.pem\""));
//!
//! let err = TlsConfig::builder().build().unwrap_err();
//! assert!(matches!(err, TlsConfigError::MissingCertChain));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

pub use crate::error::TlsConfigError;
pub use rustls::ServerConfig;

/// PEM input: a file to read at [`build`](TlsConfigBuilder::build), or the bytes themselves.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file holding PEM.
    File(PathBuf),
    /// PEM bytes (never printed by `Debug`: they may be a private key).
    Inline(Vec<u8>),
}

impl PemSource {
    fn read(&self) -> Result<(Vec<u8>, String), TlsConfigError> {
        match self {
            Self::File(path) => std::fs::read(path)
                .map(|pem| (pem, format!("{:?}", path.display().to_string())))
                .map_err(|source| TlsConfigError::Read {
                    path: path.clone(),
                    source,
                }),
            Self::Inline(pem) => Ok((pem.clone(), "inline PEM".to_owned())),
        }
    }
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Inline(pem) => write!(f, "Inline({} bytes)", pem.len()),
        }
    }
}

/// Whether and how the server asks for a client certificate.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// Do not ask (the default without a CA): certificate-bound tokens cannot be used.
    #[default]
    None,
    /// Ask; a client may send none, but one it sends must chain to `ca`. The default with a CA.
    Optional {
        /// The trusted root certificates, PEM.
        ca: PemSource,
    },
    /// Ask and refuse the handshake without a certificate chaining to `ca`. Use only when
    /// every client of this listener uses mTLS (DPoP-only clients cannot connect).
    Required {
        /// The trusted root certificates, PEM.
        ca: PemSource,
    },
    /// Ask, and accept **any** certificate: self-signed, expired, from any issuer. Only the
    /// handshake signature is checked, proving the client holds the certificate's key. Enough
    /// for RFC 8705 §2.2 self-signed certificate binding, where the token names the exact
    /// certificate; anything that treats the certificate as an identity must not run behind
    /// this. Also set by [`TlsConfigBuilder::insecure_accept_any_client_certificate`].
    InsecureAcceptAnyCertificate,
}

impl ClientAuth {
    const fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Optional { .. } => "optional",
            Self::Required { .. } => "required",
            Self::InsecureAcceptAnyCertificate => "insecure-accept-any-certificate",
        }
    }
}

/// A validated rustls server configuration; cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    server_config: Arc<ServerConfig>,
    client_auth: &'static str,
}

impl TlsConfig {
    /// Start a configuration: a certificate chain and key are required.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// Use a rustls configuration built elsewhere (SNI resolvers, session policies). It is
    /// used as given: its provider, versions and client verifier are the caller's choice.
    #[must_use]
    pub fn from_server_config(server_config: Arc<ServerConfig>) -> Self {
        Self {
            server_config,
            client_auth: "custom",
        }
    }

    /// The rustls configuration, without ALPN protocols (each adapter sets its own).
    #[must_use]
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.server_config)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// Builder of [`TlsConfig`]; everything is read and checked in [`build`](Self::build).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TlsConfigBuilder {
    cert_chain: Option<PemSource>,
    private_key: Option<PemSource>,
    client_auth: ClientAuth,
    fapi2: bool,
}

impl TlsConfigBuilder {
    /// The server's certificate chain, end-entity first, from a PEM file.
    pub fn cert_chain_pem_file(self, path: impl Into<PathBuf>) -> Self {
        self.cert_chain(PemSource::File(path.into()))
    }

    /// The server's certificate chain, end-entity first.
    pub fn cert_chain(mut self, pem: PemSource) -> Self {
        self.cert_chain = Some(pem);
        self
    }

    /// The server's private key (PKCS#8, PKCS#1 or SEC1), from a PEM file.
    pub fn private_key_pem_file(self, path: impl Into<PathBuf>) -> Self {
        self.private_key(PemSource::File(path.into()))
    }

    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub fn private_key(mut self, pem: PemSource) -> Self {
        self.private_key = Some(pem);
        self
    }

    /// How client certificates are requested. Default: [`ClientAuth::None`].
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// Ask for client certificates issued by the CAs in this PEM file, without requiring one
    /// ([`ClientAuth::Optional`], the default with a CA: DPoP clients and unbound routes keep
    /// working).
    pub fn client_ca_pem_file(self, path: impl Into<PathBuf>) -> Self {
        self.client_auth(ClientAuth::Optional {
            ca: PemSource::File(path.into()),
        })
    }

    /// Accept any client certificate, checking only the handshake signature (see
    /// [`ClientAuth::InsecureAcceptAnyCertificate`]); clients without one still connect.
    pub fn insecure_accept_any_client_certificate(self) -> Self {
        self.client_auth(ClientAuth::InsecureAcceptAnyCertificate)
    }

    /// The FAPI 2.0 Security Profile's TLS rules for endpoints not used by browsers (§5.2.2):
    /// TLS 1.2 only with the four cipher suites BCP 195 recommends (RFC 9325 §4.2:
    /// `TLS_ECDHE_{ECDSA,RSA}_WITH_AES_{128,256}_GCM_*`, no ChaCha20-Poly1305); TLS 1.3 as
    /// by default.
    pub fn fapi2(mut self) -> Self {
        self.fapi2 = true;
        self
    }

    /// Read every file and build the rustls configuration.
    ///
    /// # Errors
    /// A missing or unreadable input, PEM without the expected items, a key that does not
    /// match the certificate, or a CA certificate rustls cannot use as a trust anchor.
    pub fn build(self) -> Result<TlsConfig, TlsConfigError> {
        let chain = self
            .cert_chain
            .as_ref()
            .ok_or(TlsConfigError::MissingCertChain)?;
        let key = self
            .private_key
            .as_ref()
            .ok_or(TlsConfigError::MissingPrivateKey)?;
        let chain = read_certificates(chain, "certificate chain")?;
        let key = read_private_key(key)?;

        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if self.fapi2 {
            use rustls::CipherSuite as S;
            const BCP195_TLS12: [S; 4] = [
                S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ];
            provider
                .cipher_suites
                .retain(|suite| suite.tls13().is_some() || BCP195_TLS12.contains(&suite.suite()));
        }
        let provider = Arc::new(provider);
        let verifier = client_verifier(&self.client_auth, &provider)?;
        let config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(rejected)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(rejected)?;
        Ok(TlsConfig {
            server_config: Arc::new(config),
            client_auth: self.client_auth.name(),
        })
    }
}

fn rejected(err: rustls::Error) -> TlsConfigError {
    TlsConfigError::Rejected {
        reason: err.to_string(),
    }
}

fn read_certificates(
    source: &PemSource,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let (pem, origin) = source.read()?;
    let invalid = |reason: String| TlsConfigError::InvalidCertificates {
        what,
        origin: origin.clone(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE section".to_owned()));
    }
    Ok(certs)
}

fn read_private_key(source: &PemSource) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let (pem, origin) = source.read()?;
    // The PEM error text is not passed on: it could quote part of the key.
    let mut keys = PrivateKeyDer::pem_slice_iter(&pem);
    match (keys.next(), keys.next()) {
        (Some(Ok(key)), None) => Ok(key),
        _ => Err(TlsConfigError::InvalidPrivateKey { origin }),
    }
}

fn client_verifier(
    client_auth: &ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsConfigError> {
    let ca_verifier = |ca: &PemSource| {
        let mut roots = RootCertStore::empty();
        for cert in read_certificates(ca, "client CA")? {
            roots.add(cert).map_err(rejected)?;
        }
        Ok::<_, TlsConfigError>(WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(provider),
        ))
    };
    let verifier = match client_auth {
        ClientAuth::None => return Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::Optional { ca } => ca_verifier(ca)?.allow_unauthenticated().build(),
        ClientAuth::Required { ca } => ca_verifier(ca)?.build(),
        ClientAuth::InsecureAcceptAnyCertificate => {
            return Ok(Arc::new(AcceptAnyClientCertificate {
                algorithms: provider.signature_verification_algorithms,
            }));
        }
    };
    verifier.map_err(|e| TlsConfigError::Rejected {
        reason: e.to_string(),
    })
}

/// Accepts any well-formed client certificate; the handshake signature is still verified with
/// the provider's algorithms, so the client proves it holds the certificate's key.
#[derive(Debug)]
struct AcceptAnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AcceptAnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a client should offer whatever certificate it has.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Any issuer, any validity period (RFC 8705 §2.2, MTLS-06), but it must be a certificate.
        webpki::EndEntityCert::try_from(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    struct Pki {
        ca_pem: String,
        server_pem: String,
        server_key_pem: String,
        other_key_pem: String,
    }

    fn pki() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        Pki {
            ca_pem: ca.pem(),
            server_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            other_key_pem: KeyPair::generate().unwrap().serialize_pem(),
        }
    }

    fn inline(pem: &str) -> PemSource {
        PemSource::Inline(pem.as_bytes().to_vec())
    }

    fn builder(pki: &Pki) -> TlsConfigBuilder {
        TlsConfig::builder()
            .cert_chain(inline(&pki.server_pem))
            .private_key(inline(&pki.server_key_pem))
    }

    #[test]
    fn builds_every_client_auth_mode_with_aws_lc_rs() {
        let pki = pki();
        for client_auth in [
            ClientAuth::None,
            ClientAuth::Optional {
                ca: inline(&pki.ca_pem),
            },
            ClientAuth::Required {
                ca: inline(&pki.ca_pem),
            },
            ClientAuth::InsecureAcceptAnyCertificate,
        ] {
            let name = client_auth.name();
            let tls = builder(&pki).client_auth(client_auth).build().unwrap();
            assert_eq!(
                format!("{tls:?}"),
                format!("TlsConfig {{ client_auth: {name:?}, .. }}")
            );
            let config = tls.server_config();
            assert!(config.alpn_protocols.is_empty());
            let suites: Vec<_> = config
                .crypto_provider()
                .cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect();
            let expected: Vec<_> = rustls::crypto::aws_lc_rs::DEFAULT_CIPHER_SUITES
                .iter()
                .map(|s| s.suite())
                .collect();
            assert_eq!(suites, expected);
            assert_eq!(suites.len(), 9);
        }
        // FAPI 2.0 §5.2.2: TLS 1.2 with BCP 195's four suites only; TLS 1.3 unchanged.
        let fapi = builder(&pki).fapi2().build().unwrap().server_config();
        let names: Vec<String> = fapi
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(names.len(), 7, "{names:?}");
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("TLS_ECDHE") && n.contains("CHACHA20")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n == "TLS13_CHACHA20_POLY1305_SHA256"),
            "{names:?}"
        );
        // The provider is passed explicitly, never installed process-wide.
        assert!(CryptoProvider::get_default().is_none());
    }

    #[test]
    fn key_not_matching_the_certificate_is_rejected() {
        let pki = pki();
        let err = builder(&pki)
            .private_key(inline(&pki.other_key_pem))
            .build()
            .unwrap_err();
        assert!(matches!(err, TlsConfigError::Rejected { .. }), "{err:?}");
    }

    #[test]
    fn missing_inputs() {
        let pki = pki();
        let err = TlsConfig::builder()
            .cert_chain(inline(&pki.server_pem))
            .build()
            .unwrap_err();
        assert!(matches!(err, TlsConfigError::MissingPrivateKey));
        let err = TlsConfig::builder()
            .private_key(inline(&pki.server_key_pem))
            .build()
            .unwrap_err();
        assert!(matches!(err, TlsConfigError::MissingCertChain));
    }

    #[test]
    fn unreadable_files_quote_the_path() {
        let pki = pki();
        let dir = std::env::temp_dir().join(format!("tower-pop-tls-{}", std::process::id()));
        let missing = dir.join("missing-ca.pem");
        let err = builder(&pki)
            .client_ca_pem_file(&missing)
            .build()
            .unwrap_err();
        let TlsConfigError::Read { path, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(path, &missing);
        assert!(
            err.to_string()
                .contains(&format!("{:?}", missing.display().to_string()))
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn pem_files_are_read_and_their_problems_quoted() {
        let pki = pki();
        let dir = std::env::temp_dir().join(format!("tower-pop-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cert = write("server.pem", &pki.server_pem);
        let key = write("server.key", &pki.server_key_pem);
        let ca = write("ca.pem", &pki.ca_pem);
        let garbage = write("garbage.pem", "not pem\n");
        let two_keys = write(
            "two.key",
            &format!("{}{}", pki.server_key_pem, pki.other_key_pem),
        );
        let files = || {
            TlsConfig::builder()
                .cert_chain_pem_file(&cert)
                .private_key_pem_file(&key)
        };
        let quoted = |path: &PathBuf| format!("{:?}", path.display().to_string());

        files().client_ca_pem_file(&ca).build().unwrap();

        let err = files().cert_chain_pem_file(&garbage).build().unwrap_err();
        assert!(matches!(
            err,
            TlsConfigError::InvalidCertificates {
                what: "certificate chain",
                ..
            }
        ));
        assert!(err.to_string().contains(&quoted(&garbage)), "{err}");

        let err = files().client_ca_pem_file(&garbage).build().unwrap_err();
        assert!(matches!(
            err,
            TlsConfigError::InvalidCertificates {
                what: "client CA",
                ..
            }
        ));
        assert!(err.to_string().contains(&quoted(&garbage)), "{err}");

        for bad_key in [&two_keys, &garbage, &cert] {
            let err = files().private_key_pem_file(bad_key).build().unwrap_err();
            assert!(
                matches!(err, TlsConfigError::InvalidPrivateKey { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains(&quoted(bad_key)), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_never_prints_key_material() {
        let pki = pki();
        let builder = builder(&pki);
        let debug = format!("{builder:?}");
        assert!(debug.contains(&format!("Inline({} bytes)", pki.server_key_pem.len())));
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        let body = pki.server_key_pem.lines().nth(1).unwrap();
        assert!(!debug.contains(body));
        let tls = builder.build().unwrap();
        assert!(!format!("{tls:?}").contains(body));
    }
}
