//! Client certificates forwarded by a TLS-terminating proxy (RFC 9440 §2, RFC 8705 §3, §6.5).
//!
//! When TLS ends at a reverse proxy, the resource server never sees the client certificate that
//! RFC 8705 §3 binds a token to; the proxy forwards it in a header instead. A header is only as
//! trustworthy as whoever wrote it, so this module honours it **only on connections from a
//! configured proxy network** ([`TrustedProxies`]); from any other peer it is ignored entirely,
//! as if it were absent (RFC 9440 §4). Support is off unless a [`ForwardedCertConfig`]
//! is given.
//!
//! Three formats ([`ClientCertHeader`]), one per configuration (never several at once):
//!
//! | format | header | value |
//! |---|---|---|
//! | [`Rfc9440`](ClientCertHeader::Rfc9440) | `Client-Cert` | `:<base64 DER>:`, an RFC 8941 §3.3.5 byte sequence (RFC 9440 §2.2) |
//! | [`Xfcc`](ClientCertHeader::Xfcc) | `x-forwarded-client-cert` | Envoy: `Hash=<hex SHA-256 of the DER>;Cert="<URL-encoded PEM>"`, elements separated by `,` |
//! | [`Nginx`](ClientCertHeader::Nginx) | `ssl-client-cert` | nginx `$ssl_client_escaped_cert`: the URL-encoded PEM (ingress-nginx's name) |
//!
//! Rules enforced (each failure is [`ForwardedCert::Untrustworthy`], which a verifier treats as
//! "no trustworthy certificate": a certificate-bound token is refused, RFC 9440 §2.2):
//!
//! - The field must occur at most once (RFC 9440 §2.2 makes `Client-Cert` a singleton; a repeated
//!   field of any format is ambiguous).
//! - A value longer than [`MAX_HEADER_LEN`] (16 KiB) is refused before any decoding. A
//!   certificate is 0.5–2 KiB of DER; a URL-encoded PEM is about twice that.
//! - `Client-Cert`: exactly one byte sequence, optional surrounding SP/HTAB, no parameters and
//!   no list; standard base64 (`+` `/`), `=` padding optional (RFC 8941 §4.2.7 asks parsers to
//!   tolerate its absence, RFC 8941 §4.2.7), non-zero pad bits refused.
//! - XFCC: the **last** element is used. In Envoy's `APPEND_FORWARD` mode each proxy appends the
//!   certificate of its own downstream client, so the last element is the one written by the
//!   proxy nearest to us, the one we trust; earlier elements may come from the client. The whole
//!   field must still tokenise (quoting intact). The element must carry `Cert` (the hash alone
//!   does not give the DER that `x5t#S256` is computed over); a `Hash` that contradicts `Cert`
//!   is refused (compared in constant time). Keys are case-insensitive; unknown keys (`By`,
//!   `Subject`, `URI`, `DNS`, `Chain`) are ignored; a repeated key is refused.
//! - PEM (XFCC `Cert`, nginx): percent-decoded (`+` stays `+`), then exactly one
//!   `CERTIFICATE` section and no other PEM section.
//! - The DER must parse as an X.509 v3 certificate (an established parser, RFC 8705 §7.5,
//!   RFC 8705 §7.5). No chain validation: the binding needs none (RFC 8705 §6.2).
//!
//! ## Deployment
//!
//! - The proxy **must remove** any copy of the header sent by the client and set it only from
//!   its own TLS session (RFC 9440 §2.4): Envoy `forward_client_cert_details:
//!   SANITIZE_SET` (or `APPEND_FORWARD` with the proxy as the only path in), nginx
//!   `proxy_set_header ssl-client-cert $ssl_client_escaped_cert;` (nginx drops an empty value).
//! - List only the proxies' own addresses: anything inside a trusted network can assert any
//!   certificate. Clients must not be able to reach the server except through them.
//! - A response whose access decision consulted the header must not be cached for other clients
//!   (RFC 9440 §2.4): send `Cache-Control: no-store` when
//!   [`ForwardedCert::header_consulted`] is true.
//!
//! ## Example
//!
//! ```
//! use std::net::IpAddr;
//! use tower_pop::mtls::proxy::{ClientCertHeader, ForwardedCert, ForwardedCertConfig, TrustedProxies};
//!
//! let proxies = TrustedProxies::new(["10.0.0.0/8", "fd00::/8"]).unwrap();
//! let config = ForwardedCertConfig::new(proxies, "rfc9440".parse::<ClientCertHeader>().unwrap());
//! assert_eq!(config.header().header_name(), "client-cert");
//!
//! // From a client outside the proxy networks the header is ignored, whatever it says.
//! let stranger: IpAddr = "203.0.113.7".parse().unwrap();
//! let outcome = config.certificate(Some(stranger), [&b":AAAA:"[..]]);
//! assert_eq!(outcome, ForwardedCert::NotFromTrustedProxy);
//! assert!(!outcome.header_consulted());
//!
//! // From the proxy: no header means the client presented no certificate to it.
//! let proxy: IpAddr = "10.1.2.3".parse().unwrap();
//! assert_eq!(config.certificate(Some(proxy), []), ForwardedCert::Absent);
//!
//! // Three zero bytes are not a certificate: not trustworthy, and the response must be no-store.
//! let outcome = config.certificate(Some(proxy), [&b":AAAA:"[..]]);
//! assert!(matches!(outcome, ForwardedCert::Untrustworthy(_)));
//! assert!(outcome.header_consulted());
//! assert!(outcome.into_peer_certificate().is_none());
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ipnet::{IpNet, Ipv4Net};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{PemObject as _, SectionKind};

pub use crate::error::ProxyConfigError;
use crate::jose::digest::{ct_eq, sha256};
use crate::request::PeerCertificate;

/// The longest header value accepted, in bytes (16 KiB), checked before any decoding.
///
/// A client certificate is typically 0.5–2 KiB of DER; base64 adds a third, URL-encoded PEM
/// roughly doubles it. An XFCC element that also carries `Chain=` may not fit: configure the
/// proxy to forward the end-entity certificate only.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// The header format a trusted proxy uses to forward the client certificate.
///
/// Parses from `rfc9440`, `xfcc` or `nginx` (the `--client-cert-header` values).
///
/// ```
/// use tower_pop::mtls::proxy::ClientCertHeader;
/// let header: ClientCertHeader = "xfcc".parse().unwrap();
/// assert_eq!(header, ClientCertHeader::Xfcc);
/// assert_eq!(header.header_name(), "x-forwarded-client-cert");
/// assert_eq!(header.to_string(), "xfcc");
/// assert!("XFCC ".parse::<ClientCertHeader>().is_err());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientCertHeader {
    /// RFC 9440 `Client-Cert: :<base64 DER>:`.
    Rfc9440,
    /// Envoy's `x-forwarded-client-cert` with a `Cert=` (URL-encoded PEM) key.
    Xfcc,
    /// nginx / ingress-nginx `ssl-client-cert: <URL-encoded PEM>` (`$ssl_client_escaped_cert`).
    Nginx,
}

impl ClientCertHeader {
    /// The header field name, lowercase: `client-cert`, `x-forwarded-client-cert` or
    /// `ssl-client-cert`.
    #[must_use]
    pub const fn header_name(self) -> &'static str {
        match self {
            Self::Rfc9440 => "client-cert",
            Self::Xfcc => "x-forwarded-client-cert",
            Self::Nginx => "ssl-client-cert",
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Self::Rfc9440 => "rfc9440",
            Self::Xfcc => "xfcc",
            Self::Nginx => "nginx",
        }
    }
}

impl fmt::Display for ClientCertHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientCertHeader {
    type Err = ProxyConfigError;

    /// Exactly `rfc9440`, `xfcc` or `nginx` (lowercase, no spaces).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rfc9440" => Ok(Self::Rfc9440),
            "xfcc" => Ok(Self::Xfcc),
            "nginx" => Ok(Self::Nginx),
            _ => Err(ProxyConfigError::UnknownHeader {
                input: s.to_owned(),
            }),
        }
    }
}

/// The networks whose connections may forward a client certificate in a header.
///
/// Built from CIDR strings (`10.0.0.0/8`, `fd00::/8`) or bare addresses (`127.0.0.1`, `::1`,
/// taken as a single host). An IPv4-mapped IPv6 peer (`::ffff:127.0.0.2`, what a dual-stack
/// socket reports for an IPv4 client) is matched as its IPv4 address, and an IPv4-mapped network
/// (`::ffff:10.0.0.0/104`) as its IPv4 network.
///
/// ```
/// use tower_pop::mtls::proxy::TrustedProxies;
/// let proxies = TrustedProxies::new(["127.0.0.0/8", "2001:db8::/32"]).unwrap();
/// assert!(proxies.contains("::ffff:127.0.0.2".parse().unwrap()));
/// assert!(proxies.contains("2001:db8::1".parse().unwrap()));
/// assert!(!proxies.contains("192.0.2.1".parse().unwrap()));
/// assert!(TrustedProxies::new(["10.0.0.0/33"]).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parse every network; the first bad one is returned in the error.
    ///
    /// # Errors
    /// [`ProxyConfigError::InvalidNetwork`] for a string that is neither a network nor an
    /// address, [`ProxyConfigError::HostBitsSet`] for `10.0.0.1/8`-style input.
    pub fn new<I, S>(networks: I) -> Result<Self, ProxyConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let networks = networks
            .into_iter()
            .map(|s| parse_network(s.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    /// Whether `peer` is inside one of the networks (IPv4-mapped IPv6 taken as IPv4).
    #[must_use]
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.networks.iter().any(|net| net.contains(&peer))
    }

    /// Whether no network is configured (then no peer is trusted).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.networks.iter().map(ToString::to_string))
            .finish()
    }
}

fn parse_network(input: &str) -> Result<IpNet, ProxyConfigError> {
    let network = if input.contains('/') {
        let network: IpNet = input
            .parse()
            .map_err(|_| ProxyConfigError::InvalidNetwork {
                input: input.to_owned(),
            })?;
        if network.addr() != network.network() {
            return Err(ProxyConfigError::HostBitsSet {
                input: input.to_owned(),
            });
        }
        network
    } else {
        let addr: IpAddr = input
            .parse()
            .map_err(|_| ProxyConfigError::InvalidNetwork {
                input: input.to_owned(),
            })?;
        IpNet::from(addr)
    };
    Ok(canonical_network(network))
}

/// `::ffff:a.b.c.d/n` (n >= 96) as `a.b.c.d/(n-96)`, so it matches canonicalised peers.
fn canonical_network(network: IpNet) -> IpNet {
    if let IpNet::V6(v6) = network
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(v4net) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(v4net);
    }
    network
}

/// Where to find the forwarded client certificate: which peers may send it, in which header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedCertConfig {
    proxies: TrustedProxies,
    header: ClientCertHeader,
}

impl ForwardedCertConfig {
    /// Honour `header` on connections from `proxies`, and only from them.
    #[must_use]
    pub fn new(proxies: TrustedProxies, header: ClientCertHeader) -> Self {
        Self { proxies, header }
    }

    /// The trusted proxy networks.
    #[must_use]
    pub fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// The header format.
    #[must_use]
    pub fn header(&self) -> ClientCertHeader {
        self.header
    }

    /// The certificate forwarded on a connection from `peer` (its IP address; `None` when the
    /// transport has none, e.g. a Unix socket: then nothing is trusted), given every value of
    /// the configured header field ([`ClientCertHeader::header_name`]) in the request.
    ///
    /// The values are not looked at unless `peer` is trusted.
    pub fn certificate<'a, I>(&self, peer: Option<IpAddr>, values: I) -> ForwardedCert
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        if !peer.is_some_and(|peer| self.proxies.contains(peer)) {
            return ForwardedCert::NotFromTrustedProxy;
        }
        let mut values = values.into_iter();
        let Some(value) = values.next() else {
            return ForwardedCert::Absent;
        };
        if values.next().is_some() {
            return ForwardedCert::Untrustworthy(UntrustworthyReason::Repeated);
        }
        match decode(self.header, value) {
            Ok(der) => ForwardedCert::Certificate(der),
            Err(reason) => ForwardedCert::Untrustworthy(reason),
        }
    }

    /// [`certificate`](Self::certificate) reading the header from an `http` 1.x header map.
    pub fn certificate_from_headers(
        &self,
        peer: Option<IpAddr>,
        headers: &http::HeaderMap,
    ) -> ForwardedCert {
        self.certificate(
            peer,
            headers
                .get_all(self.header.header_name())
                .iter()
                .map(http::HeaderValue::as_bytes),
        )
    }
}

/// What a request's forwarded-certificate header amounts to.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum ForwardedCert {
    /// The peer is unknown or outside the trusted networks: the header, if any, was ignored
    /// without being read.
    NotFromTrustedProxy,
    /// A trusted proxy sent no header: the client presented no certificate to it (RFC 9440
    /// §2.4, RFC 9440 §2.4).
    Absent,
    /// A trusted proxy sent a header that cannot be relied on; treat as no certificate.
    Untrustworthy(UntrustworthyReason),
    /// The DER of the client's end-entity certificate, as forwarded by a trusted proxy.
    Certificate(Vec<u8>),
}

impl ForwardedCert {
    /// Whether the header from a trusted proxy was present and read, so a decision based on
    /// this request must not be cached for others: answer with `Cache-Control: no-store`
    /// (RFC 9440 §2.4). True for [`Certificate`](Self::Certificate) and
    /// [`Untrustworthy`](Self::Untrustworthy).
    #[must_use]
    pub fn header_consulted(&self) -> bool {
        matches!(self, Self::Certificate(_) | Self::Untrustworthy(_))
    }

    /// The certificate, if a trustworthy one was forwarded.
    #[must_use]
    pub fn into_peer_certificate(self) -> Option<PeerCertificate> {
        match self {
            Self::Certificate(der) => Some(PeerCertificate::new(der)),
            _ => None,
        }
    }
}

impl fmt::Debug for ForwardedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFromTrustedProxy => f.write_str("NotFromTrustedProxy"),
            Self::Absent => f.write_str("Absent"),
            Self::Untrustworthy(reason) => f.debug_tuple("Untrustworthy").field(reason).finish(),
            Self::Certificate(der) => write!(f, "Certificate({} bytes)", der.len()),
        }
    }
}

/// Why a forwarded certificate header was not trustworthy (for logs and metrics).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UntrustworthyReason {
    /// The header field occurred more than once.
    Repeated,
    /// The value is longer than [`MAX_HEADER_LEN`].
    TooLarge,
    /// The value does not follow its format (syntax, base64, percent-encoding, PEM, hex).
    Malformed,
    /// An XFCC element without `Cert=`: there is no DER to bind to.
    MissingCert,
    /// The XFCC `Hash=` is not the SHA-256 of the `Cert=` certificate.
    HashMismatch,
    /// The decoded bytes are not a well-formed X.509 certificate.
    NotACertificate,
}

impl fmt::Display for UntrustworthyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Repeated => "forwarded certificate header repeated",
            Self::TooLarge => "forwarded certificate header too large",
            Self::Malformed => "forwarded certificate header malformed",
            Self::MissingCert => "forwarded certificate header has no certificate",
            Self::HashMismatch => "forwarded certificate hash contradicts the certificate",
            Self::NotACertificate => "forwarded certificate is not an x.509 certificate",
        })
    }
}

type Decoded = Result<Vec<u8>, UntrustworthyReason>;

fn decode(header: ClientCertHeader, value: &[u8]) -> Decoded {
    if value.len() > MAX_HEADER_LEN {
        return Err(UntrustworthyReason::TooLarge);
    }
    let der = match header {
        ClientCertHeader::Rfc9440 => decode_rfc9440(value)?,
        ClientCertHeader::Xfcc => decode_xfcc(value)?,
        ClientCertHeader::Nginx => decode_escaped_pem(trim_ows(value))?,
    };
    check_certificate(der)
}

fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// RFC 8941 §4.2.7 with padding optional; the standard alphabet only.
const SF_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `Client-Cert: :<base64>:` (RFC 9440 §2.2), nothing before or after but SP/HTAB.
fn decode_rfc9440(value: &[u8]) -> Decoded {
    let inner = trim_ows(value)
        .strip_prefix(b":")
        .and_then(|v| v.strip_suffix(b":"))
        .ok_or(UntrustworthyReason::Malformed)?;
    // `:a:, :b:` (a list) or `:a:;p=1` (parameters) leave a `:` inside; base64 has none.
    if inner.is_empty() || inner.contains(&b':') {
        return Err(UntrustworthyReason::Malformed);
    }
    SF_BASE64
        .decode(inner)
        .map_err(|_| UntrustworthyReason::Malformed)
}

/// A percent-encoded PEM document holding exactly one `CERTIFICATE` section.
fn decode_escaped_pem(value: &[u8]) -> Decoded {
    if value.is_empty() || !valid_percent_encoding(value) {
        return Err(UntrustworthyReason::Malformed);
    }
    let pem: Vec<u8> = percent_encoding::percent_decode(value).collect();
    let mut certificate = None;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&pem) {
        match section {
            Ok((SectionKind::Certificate, der)) if certificate.is_none() => {
                certificate = Some(der);
            }
            _ => return Err(UntrustworthyReason::Malformed),
        }
    }
    certificate.ok_or(UntrustworthyReason::Malformed)
}

/// Every `%` starts a `%XX` escape (percent-encoding's decoder passes a stray `%` through).
fn valid_percent_encoding(value: &[u8]) -> bool {
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let hex = value.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Envoy XFCC: the last element's `Cert`, checked against its `Hash` when present.
fn decode_xfcc(value: &[u8]) -> Decoded {
    let elements = split_unquoted(value, b',')?;
    let last = elements.last().ok_or(UntrustworthyReason::Malformed)?;
    let mut hash = None;
    let mut cert = None;
    for pair in split_unquoted(last, b';')? {
        let eq = pair
            .iter()
            .position(|b| *b == b'=')
            .ok_or(UntrustworthyReason::Malformed)?;
        let (key, raw) = (&pair[..eq], &pair[eq + 1..]);
        if key.is_empty() || !key.iter().all(u8::is_ascii_alphanumeric) {
            return Err(UntrustworthyReason::Malformed);
        }
        let slot = if key.eq_ignore_ascii_case(b"Hash") {
            &mut hash
        } else if key.eq_ignore_ascii_case(b"Cert") {
            &mut cert
        } else {
            // By, Subject, URI, DNS, Chain: not needed, but must still be well-formed.
            unquote(raw)?;
            continue;
        };
        if slot.replace(unquote(raw)?).is_some() {
            return Err(UntrustworthyReason::Malformed);
        }
    }
    let der = decode_escaped_pem(&cert.ok_or(UntrustworthyReason::MissingCert)?)?;
    if let Some(hash) = hash {
        let expected = decode_hex_sha256(&hash).ok_or(UntrustworthyReason::Malformed)?;
        if !ct_eq(&expected, &sha256(&der)) {
            return Err(UntrustworthyReason::HashMismatch);
        }
    }
    Ok(der)
}

/// Split on `sep` outside double quotes (`\` escapes inside them), trimming SP/HTAB around
/// each part. An empty part or an unterminated quote is malformed.
fn split_unquoted(value: &[u8], sep: u8) -> Result<Vec<&[u8]>, UntrustworthyReason> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut escaped) = (0, false, false);
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_quotes {
            match b {
                b'\\' => escaped = true,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == sep {
            parts.push(trim_ows(&value[start..i]));
            start = i + 1;
        }
    }
    if in_quotes || escaped {
        return Err(UntrustworthyReason::Malformed);
    }
    parts.push(trim_ows(&value[start..]));
    if parts.iter().any(|p| p.is_empty()) {
        return Err(UntrustworthyReason::Malformed);
    }
    Ok(parts)
}

/// A bare value (no quotes, separators or spaces) or a quoted string with `\` escapes.
fn unquote(raw: &[u8]) -> Result<Vec<u8>, UntrustworthyReason> {
    let Some(quoted) = raw.strip_prefix(b"\"") else {
        let bare_ok = raw
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';'));
        return if bare_ok {
            Ok(raw.to_vec())
        } else {
            Err(UntrustworthyReason::Malformed)
        };
    };
    let mut out = Vec::with_capacity(quoted.len());
    let mut bytes = quoted.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => out.push(*bytes.next().ok_or(UntrustworthyReason::Malformed)?),
            // The closing quote must be the last byte.
            b'"' if bytes.as_slice().is_empty() => return Ok(out),
            b'"' => return Err(UntrustworthyReason::Malformed),
            _ => out.push(b),
        }
    }
    Err(UntrustworthyReason::Malformed)
}

fn decode_hex_sha256(hex: &[u8]) -> Option<[u8; 32]> {
    fn nibble(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Refuse anything that an established X.509 parser does not accept as a certificate.
fn check_certificate(der: Vec<u8>) -> Decoded {
    let cert = CertificateDer::from(der);
    if webpki::EndEntityCert::try_from(&cert).is_err() {
        return Err(UntrustworthyReason::NotACertificate);
    }
    Ok(cert.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::thumbprint::x5t_s256;

    /// RFC 9440 Appendix A client certificate (TV-12), base64 of its DER.
    const CERT_B64: &str = "MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=";
    const CERT_X5T: &str = "v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes";
    const CERT_SHA256_HEX: &str =
        "bfaf1f7e070f9fa8dd62905f158da73f84a1136624fbafcc9393c8f7287a69eb";

    fn der() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(CERT_B64)
            .unwrap()
    }

    fn pem() -> String {
        let lines: Vec<&str> = CERT_B64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    /// Envoy-style: every non-alphanumeric byte escaped.
    fn escape_all(s: &str) -> String {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    /// nginx-style: only what a URI component cannot carry (spaces, newlines) escaped.
    fn escape_minimal(s: &str) -> String {
        s.replace(' ', "%20").replace('\n', "%0A")
    }

    fn config(header: ClientCertHeader) -> ForwardedCertConfig {
        ForwardedCertConfig::new(
            TrustedProxies::new(["127.0.0.0/8", "2001:db8:1::/48"]).unwrap(),
            header,
        )
    }

    const PROXY: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)));

    fn from_proxy(header: ClientCertHeader, value: &str) -> ForwardedCert {
        config(header).certificate(PROXY, [value.as_bytes()])
    }

    fn assert_rfc9440_cert(outcome: ForwardedCert) {
        assert!(outcome.header_consulted());
        let ForwardedCert::Certificate(der) = outcome else {
            panic!("expected a certificate, got {outcome:?}");
        };
        assert_eq!(der.len(), 428);
        assert_eq!(x5t_s256(&der), CERT_X5T);
    }

    fn assert_untrustworthy(outcome: ForwardedCert, reason: UntrustworthyReason) {
        assert_eq!(outcome, ForwardedCert::Untrustworthy(reason));
        assert!(outcome.header_consulted());
        assert!(outcome.into_peer_certificate().is_none());
    }

    #[test]
    fn header_names_and_parsing() {
        for (name, header, field) in [
            ("rfc9440", ClientCertHeader::Rfc9440, "client-cert"),
            ("xfcc", ClientCertHeader::Xfcc, "x-forwarded-client-cert"),
            ("nginx", ClientCertHeader::Nginx, "ssl-client-cert"),
        ] {
            assert_eq!(name.parse::<ClientCertHeader>(), Ok(header));
            assert_eq!(header.header_name(), field);
            assert_eq!(header.to_string(), name);
        }
        let err = "client-cert".parse::<ClientCertHeader>().unwrap_err();
        assert_eq!(
            err,
            ProxyConfigError::UnknownHeader {
                input: "client-cert".into()
            }
        );
        assert!(err.to_string().contains("\"client-cert\""));
    }

    #[test]
    fn rfc9440_client_cert_decodes_appendix_a_cch_01() {
        assert_rfc9440_cert(from_proxy(
            ClientCertHeader::Rfc9440,
            &format!(":{CERT_B64}:"),
        ));
        // Optional surrounding SP/HTAB.
        assert_rfc9440_cert(from_proxy(
            ClientCertHeader::Rfc9440,
            &format!(" \t:{CERT_B64}: "),
        ));
    }

    #[test]
    fn rfc9440_tolerates_missing_padding_cch_07() {
        let unpadded = CERT_B64.trim_end_matches('=');
        assert_ne!(unpadded, CERT_B64);
        assert_rfc9440_cert(from_proxy(
            ClientCertHeader::Rfc9440,
            &format!(":{unpadded}:"),
        ));
    }

    #[test]
    fn rfc9440_malformed_values_are_untrustworthy() {
        let url_safe = CERT_B64.replace('+', "-").replace('/', "_");
        assert_ne!(url_safe, CERT_B64);
        for value in [
            CERT_B64.to_owned(),                   // no colons
            format!(":{CERT_B64}"),                // no closing colon
            format!("{CERT_B64}:"),                // no opening colon
            format!(":{url_safe}:"),               // base64url alphabet (CCH-07)
            format!(":{CERT_B64}:;p=1"),           // parameters
            format!(":{CERT_B64}:, :{CERT_B64}:"), // a list (CCH-02)
            format!(":{}:", &CERT_B64[1..]),       // bad base64 length
            format!(":{CERT_B64}=:"),              // wrong padding
            "::".to_owned(),                       // empty
            String::new(),
        ] {
            assert_untrustworthy(
                from_proxy(ClientCertHeader::Rfc9440, &value),
                UntrustworthyReason::Malformed,
            );
        }
    }

    #[test]
    fn der_that_is_not_a_certificate_is_untrustworthy() {
        let mut truncated = der();
        truncated.pop();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        for bytes in [truncated, vec![0x30, 0x00], b"hello world".to_vec()] {
            assert_untrustworthy(
                from_proxy(ClientCertHeader::Rfc9440, &format!(":{}:", b64(&bytes))),
                UntrustworthyReason::NotACertificate,
            );
        }
        // The same through PEM.
        let pem = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        assert_untrustworthy(
            from_proxy(ClientCertHeader::Nginx, &escape_all(pem)),
            UntrustworthyReason::NotACertificate,
        );
    }

    #[test]
    fn nginx_escaped_pem_decodes_appendix_a() {
        assert_rfc9440_cert(from_proxy(ClientCertHeader::Nginx, &escape_all(&pem())));
        assert_rfc9440_cert(from_proxy(ClientCertHeader::Nginx, &escape_minimal(&pem())));
    }

    #[test]
    fn nginx_garbage_pem_is_untrustworthy() {
        let key_pem = pem().replace("CERTIFICATE", "PRIVATE KEY");
        let two = format!("{}{}", pem(), pem());
        let bad_b64 = pem().replacen("MIIB", "MI!B", 1);
        let unterminated = pem().replace("-----END CERTIFICATE-----\n", "");
        for value in [
            escape_all("not a pem at all"),
            escape_all(&key_pem),                        // wrong section
            escape_all(&two),                            // two certificates
            escape_all(&bad_b64),                        // bad base64 inside
            escape_all(&unterminated),                   // no END line
            escape_all(&pem()).replacen("%2D", "%2", 1), // broken escape
            escape_all(&pem()).replacen("%0A", "%zz", 1),
            String::new(),
        ] {
            assert_untrustworthy(
                from_proxy(ClientCertHeader::Nginx, &value),
                UntrustworthyReason::Malformed,
            );
        }
    }

    #[test]
    fn xfcc_decodes_appendix_a_with_and_without_hash() {
        let cert = escape_all(&pem());
        for value in [
            format!("Hash={CERT_SHA256_HEX};Cert=\"{cert}\""),
            format!("Hash={};Cert={cert}", CERT_SHA256_HEX.to_uppercase()),
            format!(
                "By=spiffe://example.org/rs;Hash={CERT_SHA256_HEX};Cert=\"{cert}\";\
                 Subject=\"CN=BC,O=\\\"x\\\"\";URI=spiffe://example.org/client"
            ),
            format!("cert=\"{cert}\""),
            format!("Cert=\"{}\"", escape_minimal(&pem())),
        ] {
            assert_rfc9440_cert(from_proxy(ClientCertHeader::Xfcc, &value));
        }
    }

    #[test]
    fn xfcc_uses_the_last_element() {
        let cert = escape_all(&pem());
        // The first element (client-supplied, garbage) is ignored; the proxy's, last, counts.
        let value = format!("By=x;Hash=00, Hash={CERT_SHA256_HEX};Cert=\"{cert}\"");
        assert_rfc9440_cert(from_proxy(ClientCertHeader::Xfcc, &value));
        // A good first element does not rescue a last one without a certificate.
        let value =
            format!("Hash={CERT_SHA256_HEX};Cert=\"{cert}\",By=spiffe://x;Hash={CERT_SHA256_HEX}");
        assert_untrustworthy(
            from_proxy(ClientCertHeader::Xfcc, &value),
            UntrustworthyReason::MissingCert,
        );
    }

    #[test]
    fn xfcc_hash_contradicting_cert_is_untrustworthy() {
        let cert = escape_all(&pem());
        let wrong = CERT_SHA256_HEX.replace("bfaf", "bfae");
        assert_untrustworthy(
            from_proxy(
                ClientCertHeader::Xfcc,
                &format!("Hash={wrong};Cert=\"{cert}\""),
            ),
            UntrustworthyReason::HashMismatch,
        );
    }

    #[test]
    fn xfcc_malformed_values_are_untrustworthy() {
        let cert = escape_all(&pem());
        for value in [
            format!("Hash=abc;Cert=\"{cert}\""),                 // short hash
            format!("Hash={};Cert=\"{cert}\"", "zz".repeat(32)), // not hex
            format!("Cert=\"{cert}"),                            // unterminated quote
            format!("Cert=\"{cert}\"x"),                         // junk after quote
            format!("Cert=\"{cert}\";Cert=\"{cert}\""),          // repeated key
            format!("Cert=\"{cert}\";"),                         // empty pair
            format!("Cert=\"{cert}\","),                         // empty element
            format!("Cert \"{cert}\""),                          // no '='
            format!("Ce rt=\"{cert}\""),                         // bad key
            format!("Cert=\"{cert}\";By=a b"),                   // space in bare value
            format!("Cert=\"{}\"", escape_all("garbage")),       // garbage PEM
            String::new(),
        ] {
            assert_untrustworthy(
                from_proxy(ClientCertHeader::Xfcc, &value),
                UntrustworthyReason::Malformed,
            );
        }
        assert_untrustworthy(
            from_proxy(ClientCertHeader::Xfcc, &format!("Hash={CERT_SHA256_HEX}")),
            UntrustworthyReason::MissingCert,
        );
    }

    #[test]
    fn untrusted_peer_is_ignored_cch_04() {
        let value = format!(":{CERT_B64}:");
        let config = config(ClientCertHeader::Rfc9440);
        for peer in [
            None,
            Some("192.0.2.1".parse().unwrap()),
            Some("2001:db8:2::1".parse().unwrap()),
            Some("::ffff:192.0.2.1".parse().unwrap()),
        ] {
            let outcome = config.certificate(peer, [value.as_bytes()]);
            assert_eq!(outcome, ForwardedCert::NotFromTrustedProxy);
            assert!(!outcome.header_consulted());
        }
        // Headers are ignored from strangers even when repeated or oversized.
        let big = "x".repeat(MAX_HEADER_LEN + 1);
        let stranger = Some("192.0.2.1".parse().unwrap());
        assert_eq!(
            config.certificate(stranger, [big.as_bytes(), big.as_bytes()]),
            ForwardedCert::NotFromTrustedProxy
        );
    }

    #[test]
    fn trusted_ipv6_and_mapped_ipv4_peers() {
        let value = format!(":{CERT_B64}:");
        let config = config(ClientCertHeader::Rfc9440);
        for peer in ["2001:db8:1:ffff::5", "::ffff:127.0.0.2", "127.255.0.1"] {
            let peer = Some(peer.parse().unwrap());
            assert_rfc9440_cert(config.certificate(peer, [value.as_bytes()]));
        }
    }

    #[test]
    fn absent_header_from_trusted_peer() {
        let outcome = config(ClientCertHeader::Xfcc).certificate(PROXY, []);
        assert_eq!(outcome, ForwardedCert::Absent);
        assert!(!outcome.header_consulted());
    }

    #[test]
    fn repeated_header_is_untrustworthy_cch_02() {
        let value = format!(":{CERT_B64}:");
        assert_untrustworthy(
            config(ClientCertHeader::Rfc9440).certificate(PROXY, [value.as_bytes(); 2]),
            UntrustworthyReason::Repeated,
        );
    }

    #[test]
    fn oversize_header_is_untrustworthy() {
        // A well-formed value padded with spaces past the bound: refused on length alone.
        let value = format!(":{CERT_B64}:{}", " ".repeat(MAX_HEADER_LEN));
        assert_untrustworthy(
            from_proxy(ClientCertHeader::Rfc9440, &value),
            UntrustworthyReason::TooLarge,
        );
        let fits = format!(
            ":{CERT_B64}:{}",
            " ".repeat(MAX_HEADER_LEN - CERT_B64.len() - 2)
        );
        assert_eq!(fits.len(), MAX_HEADER_LEN);
        assert_rfc9440_cert(from_proxy(ClientCertHeader::Rfc9440, &fits));
    }

    #[test]
    fn certificate_from_header_map() {
        let mut headers = http::HeaderMap::new();
        headers.insert("client-cert", format!(":{CERT_B64}:").parse().unwrap());
        let config = config(ClientCertHeader::Rfc9440);
        assert_rfc9440_cert(config.certificate_from_headers(PROXY, &headers));
        headers.append("client-cert", format!(":{CERT_B64}:").parse().unwrap());
        assert_untrustworthy(
            config.certificate_from_headers(PROXY, &headers),
            UntrustworthyReason::Repeated,
        );
        let nginx = ForwardedCertConfig::new(config.proxies().clone(), ClientCertHeader::Nginx);
        assert_eq!(
            nginx.certificate_from_headers(PROXY, &headers),
            ForwardedCert::Absent
        );
    }

    #[test]
    fn trusted_proxies_parsing() {
        let proxies =
            TrustedProxies::new(["10.0.0.0/8", "::1", "192.0.2.7", "::ffff:198.51.100.0/120"])
                .unwrap();
        assert!(proxies.contains("10.200.0.1".parse().unwrap()));
        assert!(proxies.contains("::1".parse().unwrap()));
        assert!(proxies.contains("192.0.2.7".parse().unwrap()));
        assert!(!proxies.contains("192.0.2.8".parse().unwrap()));
        assert!(proxies.contains("198.51.100.9".parse().unwrap()));
        assert!(proxies.contains("::ffff:198.51.100.9".parse().unwrap()));
        assert!(!proxies.contains("11.0.0.1".parse().unwrap()));
        assert_eq!(
            format!("{proxies:?}"),
            r#"["10.0.0.0/8", "::1/128", "192.0.2.7/32", "198.51.100.0/24"]"#
        );
        assert!(
            TrustedProxies::new(Vec::<String>::new())
                .unwrap()
                .is_empty()
        );

        for (input, expected) in [
            (
                "10.0.0.0/33",
                ProxyConfigError::InvalidNetwork {
                    input: "10.0.0.0/33".into(),
                },
            ),
            (
                "proxy.local",
                ProxyConfigError::InvalidNetwork {
                    input: "proxy.local".into(),
                },
            ),
            (
                "",
                ProxyConfigError::InvalidNetwork {
                    input: String::new(),
                },
            ),
            (
                "10.0.0.1/8",
                ProxyConfigError::HostBitsSet {
                    input: "10.0.0.1/8".into(),
                },
            ),
            (
                "fd00::1/8",
                ProxyConfigError::HostBitsSet {
                    input: "fd00::1/8".into(),
                },
            ),
        ] {
            let err = TrustedProxies::new(["127.0.0.1", input]).unwrap_err();
            assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn debug_does_not_print_the_certificate() {
        let outcome = from_proxy(ClientCertHeader::Rfc9440, &format!(":{CERT_B64}:"));
        assert_eq!(format!("{outcome:?}"), "Certificate(428 bytes)");
    }
}
