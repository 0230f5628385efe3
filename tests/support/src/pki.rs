//! A test PKI (rcgen on aws-lc-rs): a trusted CA with a server certificate for `localhost` and
//! `127.0.0.1` and two client certificates, a client of another CA, and a self-signed client
//! (RFC 8705 §2.2). Generated once per test binary.

use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// A certificate and its key, PEM.
#[derive(Debug)]
pub struct Identity {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl Identity {
    /// The certificate's DER.
    ///
    /// # Panics
    /// Never for certificates made here.
    #[must_use]
    pub fn der(&self) -> Vec<u8> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .expect("a PEM certificate")
            .to_vec()
    }

    /// The RFC 8705 `x5t#S256` the server should report for this certificate.
    #[must_use]
    pub fn x5t(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(self.der()))
    }
}

/// The whole test PKI.
#[derive(Debug)]
pub struct Pki {
    /// The trusted CA's certificate.
    pub ca_pem: String,
    /// The server (`localhost`, `127.0.0.1`).
    pub server: Identity,
    /// Two clients of the trusted CA.
    pub client_a: Identity,
    /// The second client of the trusted CA.
    pub client_b: Identity,
    /// A client of a CA the server does not trust.
    pub stranger: Identity,
    /// A self-signed client certificate (RFC 8705 §2.2).
    pub self_signed: Identity,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).expect("rcgen");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("rcgen")).expect("rcgen")
}

fn leaf(
    issuer: Option<&CertifiedIssuer<'static, KeyPair>>,
    name: &str,
    purpose: ExtendedKeyUsagePurpose,
) -> Identity {
    let key = KeyPair::generate().expect("rcgen");
    let sans = match purpose {
        ExtendedKeyUsagePurpose::ServerAuth => vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        _ => Vec::new(),
    };
    let mut params = CertificateParams::new(sans).expect("rcgen");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![purpose];
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer).expect("rcgen"),
        None => params.self_signed(&key).expect("rcgen"),
    };
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// One PKI for the whole test binary (key generation is the slow part).
#[must_use]
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = new_ca("tower-pop test CA");
        let other = new_ca("another CA");
        Pki {
            ca_pem: ca.pem(),
            server: leaf(Some(&ca), "server", ExtendedKeyUsagePurpose::ServerAuth),
            client_a: leaf(Some(&ca), "client A", ExtendedKeyUsagePurpose::ClientAuth),
            client_b: leaf(Some(&ca), "client B", ExtendedKeyUsagePurpose::ClientAuth),
            stranger: leaf(
                Some(&other),
                "stranger",
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            self_signed: leaf(None, "self-signed", ExtendedKeyUsagePurpose::ClientAuth),
        }
    })
}
