//! Certificate-bound access tokens (RFC 8705 §3): the SHA-256 of the client certificate's DER
//! must equal the token's `cnf["x5t#S256"]`.
//!
//! The certificate comes from the TLS connection ([`crate::request::PeerCertificate`] in the request
//! extensions, or [`crate::request::PopRequest::peer_certificate`]). The binding check needs no chain
//! validation (RFC 8705 §6.2): the TLS layer proved the client holds the certificate's
//! key. A bound token verified without a certificate is refused, never accepted (RFC 8705 §3).
//! Behind a TLS-terminating proxy, the certificate must be forwarded by a trusted proxy
//! (RFC 9440): [`proxy`] reads it from the `Client-Cert`, Envoy or nginx header, only on
//! connections from configured proxy networks. [`tls`] (feature `rustls`) is the rustls
//! server configuration that requests client certificates, for the adapters' TLS servers.

pub mod proxy;
#[cfg(feature = "rustls")]
pub mod tls;

use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::jose::digest::ct_eq;

use crate::error::PopErrorKind;
use crate::jose::thumbprint::x5t_s256;
use crate::request::PopRequest;
use proxy::{ClientCertHeader, ForwardedCert, ForwardedCertConfig};

/// The client certificate of one request, resolved at most once and only when a token is
/// certificate-bound: from a trusted proxy's header when the peer is a configured proxy (the TLS
/// certificate on that connection is the proxy's), otherwise from the TLS connection.
pub(crate) struct ClientCertificate<'r> {
    request: &'r PopRequest<'r>,
    forwarded: Option<&'r ForwardedCertConfig>,
    resolved: OnceLock<Option<Cow<'r, [u8]>>>,
    header_consulted: AtomicBool,
}

impl<'r> ClientCertificate<'r> {
    pub(crate) fn new(
        request: &'r PopRequest<'r>,
        forwarded: Option<&'r ForwardedCertConfig>,
    ) -> Self {
        Self {
            request,
            forwarded,
            resolved: OnceLock::new(),
            header_consulted: AtomicBool::new(false),
        }
    }

    /// The DER, if the request has a trustworthy one.
    pub(crate) fn der(&self) -> Option<&[u8]> {
        self.resolved.get_or_init(|| self.resolve()).as_deref()
    }

    /// Whether a proxy's header was read to decide: the response must not be cached.
    pub(crate) fn header_consulted(&self) -> bool {
        self.header_consulted.load(Ordering::Relaxed)
    }

    fn resolve(&self) -> Option<Cow<'r, [u8]>> {
        let request = self.request;
        let tls = || request.peer_certificate.map(Cow::Borrowed);
        let Some(forwarded) = self.forwarded else {
            return tls();
        };
        let fields = &request.forwarded;
        let values = match forwarded.header() {
            ClientCertHeader::Rfc9440 => fields.client_cert,
            ClientCertHeader::Xfcc => fields.xfcc,
            ClientCertHeader::Nginx => fields.ssl_client_cert,
        };
        let outcome = forwarded.certificate(request.peer_ip, values.iter());
        self.header_consulted
            .store(outcome.header_consulted(), Ordering::Relaxed);
        match outcome {
            ForwardedCert::NotFromTrustedProxy => tls(),
            ForwardedCert::Certificate(der) => Some(Cow::Owned(der)),
            ForwardedCert::Absent => None,
            ForwardedCert::Untrustworthy(reason) => {
                tracing::debug!(target: crate::observe::MTLS, ?reason, "forwarded client certificate is not trustworthy");
                None
            }
        }
    }
}

/// Check the connection's certificate against `cnf["x5t#S256"]`; returns the thumbprint.
pub(crate) fn check_certificate_binding(
    cnf_x5t_s256: &str,
    peer_certificate: Option<&[u8]>,
) -> Result<String, PopErrorKind> {
    let der = peer_certificate.ok_or(PopErrorKind::CertBindingMismatch)?;
    let thumbprint = x5t_s256(der);
    if ct_eq(thumbprint.as_bytes(), cnf_x5t_s256.as_bytes()) {
        Ok(thumbprint)
    } else {
        Err(PopErrorKind::CertBindingMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// RFC 9440 Appendix A client certificate (TV-12).
    const CLIENT_CERT_B64: &str = "MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=";

    #[test]
    fn rfc9440_certificate_thumbprint_mtls_04() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(CLIENT_CERT_B64)
            .expect("base64");
        assert_eq!(der.len(), 428);
        let expected = "v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes";
        // SHA-256 of the whole DER (MTLS-05); expired, CA unchecked, it still binds (MTLS-06).
        assert_eq!(
            check_certificate_binding(expected, Some(&der)).as_deref(),
            Ok(expected)
        );
        // The intermediate's thumbprint (the chain, not the end entity) does not match (MTLS-05).
        assert_eq!(
            check_certificate_binding("6H31tD6_m4nKKyu_MaTnrVpA1ATPuy_MGkA8JlEoWtw", Some(&der)),
            Err(PopErrorKind::CertBindingMismatch)
        );
        assert_eq!(
            check_certificate_binding(expected, None),
            Err(PopErrorKind::CertBindingMismatch)
        );
    }
}
