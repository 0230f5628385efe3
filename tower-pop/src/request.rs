//! The neutral, borrowed view of a request that the verifier reads.
//!
//! It names no web framework type: tower/axum (on `http` 1.x) get it from
//! `From<&http::request::Parts>`; actix-web (on `http` 0.2) builds it from its own request with
//! [`PopRequest::new`] and the adder methods, copying the fields named in
//! [`PopRequest::HEADERS`]. Nothing is copied: the view borrows the method, the path and the
//! header values. The peer address comes from the connection (a [`PeerAddr`] extension, actix's
//! `peer_addr`), never from `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The DER-encoded client certificate of the connection (RFC 8705), put into the request
/// extensions by the TLS glue (see `axum-pop`); the layer reads it from there.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerCertificate(Arc<[u8]>);

impl PeerCertificate {
    /// Wrap a DER-encoded X.509 certificate.
    #[must_use]
    pub fn new(der: impl Into<Arc<[u8]>>) -> Self {
        Self(der.into())
    }

    /// The DER bytes.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PeerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerCertificate({} bytes)", self.0.len())
    }
}

/// The TCP peer address of the connection, put into the request extensions by the server glue
/// (`axum-pop` copies axum's `ConnectInfo<SocketAddr>`). Only needed to trust certificates
/// forwarded by proxies (RFC 9440): it tells a configured proxy from anyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The request target as the client sent it, for stacks that rewrite the request URI before
/// the layer runs (axum's `Router::nest` strips the prefix). When present in the request
/// extensions, its path is the one `htu` is checked against. `axum_pop::RequirePopLayer` inserts
/// it from axum's `OriginalUri`.
#[derive(Clone, PartialEq, Eq)]
pub struct OriginalTarget(pub http::Uri);

impl OriginalTarget {
    /// The target the client sent: the [`OriginalTarget`] in `extensions` if a layer recorded
    /// one, else `uri`.
    pub(crate) fn or<'a>(extensions: &'a http::Extensions, uri: &'a http::Uri) -> &'a http::Uri {
        extensions.get::<Self>().map_or(uri, |t| &t.0)
    }
}

// The query may carry secrets (codes, tokens in badly designed APIs): Debug shows the path.
impl std::fmt::Debug for OriginalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OriginalTarget")
            .field(&self.0.path())
            .finish()
    }
}

/// Every value of one header field: the first two, and how many there were.
#[derive(Clone, Copy, Default)]
pub(crate) struct FieldValues<'a> {
    pub(crate) first: Option<&'a [u8]>,
    pub(crate) second: Option<&'a [u8]>,
    pub(crate) count: usize,
}

// The values are tokens and proofs: Debug shows only how many fields there were.
impl std::fmt::Debug for FieldValues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} field(s)", self.count)
    }
}

impl<'a> FieldValues<'a> {
    pub(crate) fn add(&mut self, value: &'a [u8]) {
        match self.count {
            0 => self.first = Some(value),
            1 => self.second = Some(value),
            _ => {}
        }
        self.count += 1;
    }

    /// The first two values: enough to tell one field from several.
    pub(crate) fn iter(self) -> impl Iterator<Item = &'a [u8]> {
        self.first.into_iter().chain(self.second)
    }
}

/// The fields that may carry a certificate forwarded by a proxy (RFC 9440 and others).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ForwardedFields<'a> {
    pub(crate) client_cert: FieldValues<'a>,
    pub(crate) xfcc: FieldValues<'a>,
    pub(crate) ssl_client_cert: FieldValues<'a>,
}

/// What the verifier needs to know about a request. Its `Debug` shows the method, the path and
/// how many `Authorization` and `DPoP` fields there were, never their values.
///
/// ```
/// use tower_pop::PopRequest;
///
/// let request = PopRequest::new("GET", "/protectedresource")
///     .authorization(b"DPoP Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
///     .dpop(b"eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA");
/// assert_eq!(request.method(), "GET");
/// ```
#[derive(Clone, Copy)]
pub struct PopRequest<'a> {
    method: &'a str,
    path: &'a str,
    pub(crate) authorization: FieldValues<'a>,
    pub(crate) dpop: FieldValues<'a>,
    pub(crate) peer_certificate: Option<&'a [u8]>,
    pub(crate) peer_ip: Option<IpAddr>,
    pub(crate) forwarded: ForwardedFields<'a>,
    /// `x-fapi-interaction-id` (FAPI 2.0), echoed when the profile is on.
    pub(crate) interaction_id: FieldValues<'a>,
}

impl std::fmt::Debug for PopRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PopRequest")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("authorization", &self.authorization)
            .field("dpop", &self.dpop)
            .field("peer_certificate", &self.peer_certificate.is_some())
            .field("peer_ip", &self.peer_ip)
            .finish_non_exhaustive()
    }
}

impl<'a> PopRequest<'a> {
    /// A request with this method and target path (the query, if any, is ignored). The
    /// scheme and host are never taken from the request: the verifier uses its configured
    /// public origin.
    #[must_use]
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            authorization: FieldValues::default(),
            dpop: FieldValues::default(),
            peer_certificate: None,
            peer_ip: None,
            forwarded: ForwardedFields::default(),
            interaction_id: FieldValues::default(),
        }
    }

    /// The header fields the verifier reads, lowercase: adapters pass every value of each to
    /// [`header`](Self::header).
    pub const HEADERS: [&'static str; 6] = [
        "authorization",
        "dpop",
        "client-cert",
        "x-forwarded-client-cert",
        "ssl-client-cert",
        "x-fapi-interaction-id",
    ];

    /// Add the value of one field named in [`HEADERS`](Self::HEADERS) (any case); other names
    /// are ignored. Call once per field line.
    #[must_use]
    pub fn header(mut self, name: &str, value: &'a [u8]) -> Self {
        let field = Self::HEADERS
            .iter()
            .position(|known| name.eq_ignore_ascii_case(known));
        if let Some(values) = field.and_then(|i| self.field_mut(i)) {
            values.add(value);
        }
        self
    }

    /// The values of the field `HEADERS[i]`: the one mapping from names to fields.
    fn field_mut(&mut self, i: usize) -> Option<&mut FieldValues<'a>> {
        match i {
            0 => Some(&mut self.authorization),
            1 => Some(&mut self.dpop),
            2 => Some(&mut self.forwarded.client_cert),
            3 => Some(&mut self.forwarded.xfcc),
            4 => Some(&mut self.forwarded.ssl_client_cert),
            5 => Some(&mut self.interaction_id),
            _ => None,
        }
    }

    /// The IP address of the TCP peer (the client, or the proxy in front of us).
    #[must_use]
    pub fn peer_ip(mut self, ip: IpAddr) -> Self {
        self.peer_ip = Some(ip);
        self
    }

    /// Add the value of one `Authorization` field; call once per field line.
    #[must_use]
    pub fn authorization(mut self, value: &'a [u8]) -> Self {
        self.authorization.add(value);
        self
    }

    /// Add the value of one `DPoP` field; call once per field line.
    #[must_use]
    pub fn dpop(mut self, value: &'a [u8]) -> Self {
        self.dpop.add(value);
        self
    }

    /// The DER client certificate of the connection, when mutual TLS authenticated one.
    #[must_use]
    pub fn peer_certificate(mut self, der: &'a [u8]) -> Self {
        self.peer_certificate = Some(der);
        self
    }

    /// The request method.
    #[must_use]
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request path (without query).
    #[must_use]
    pub fn path(&self) -> &'a str {
        self.path.split('?').next().unwrap_or_default()
    }
}

impl<'a> From<&'a http::request::Parts> for PopRequest<'a> {
    fn from(parts: &'a http::request::Parts) -> Self {
        let path = OriginalTarget::or(&parts.extensions, &parts.uri).path();
        // [`PopRequest::HEADERS`], in its order, parsed once at compile time rather than per
        // request and field.
        static NAMES: [http::HeaderName; 6] = [
            http::header::AUTHORIZATION,
            http::HeaderName::from_static("dpop"),
            http::HeaderName::from_static("client-cert"),
            http::HeaderName::from_static("x-forwarded-client-cert"),
            http::HeaderName::from_static("ssl-client-cert"),
            http::HeaderName::from_static("x-fapi-interaction-id"),
        ];
        let mut request = Self::new(parts.method.as_str(), path);
        for (i, name) in NAMES.iter().enumerate() {
            if let Some(values) = request.field_mut(i) {
                for value in parts.headers.get_all(name) {
                    values.add(value.as_bytes());
                }
            }
        }
        if let Some(cert) = parts.extensions.get::<PeerCertificate>() {
            request = request.peer_certificate(cert.der());
        }
        if let Some(PeerAddr(addr)) = parts.extensions.get::<PeerAddr>() {
            request = request.peer_ip(addr.ip());
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_give_every_value_of_the_fields_read_and_no_other() {
        let request = http::Request::builder()
            .uri("https://api.example/whoami?x=1")
            .header("Authorization", "DPoP t")
            .header("DPoP", "a.b.c")
            .header("dpop", "d.e.f")
            .header("DPoP", "g.h.i")
            .header("Client-Cert", ":AA==:")
            .header("X-Forwarded-Client-Cert", "Hash=00")
            .header("SSL-Client-Cert", "pem")
            .header("X-Other", "ignored")
            .body(())
            .expect("request");
        let (parts, ()) = request.into_parts();
        let view = PopRequest::from(&parts);
        let mut built = PopRequest::new("GET", "/whoami");
        for (name, value) in &parts.headers {
            built = built.header(name.as_str(), value.as_bytes());
        }
        for (from_parts, by_header) in [
            (view.authorization, built.authorization),
            (view.dpop, built.dpop),
            (view.forwarded.client_cert, built.forwarded.client_cert),
            (view.forwarded.xfcc, built.forwarded.xfcc),
            (
                view.forwarded.ssl_client_cert,
                built.forwarded.ssl_client_cert,
            ),
        ] {
            assert_eq!(from_parts.count, by_header.count);
            assert!(from_parts.iter().eq(by_header.iter()));
        }
        for (i, name) in PopRequest::HEADERS.iter().enumerate() {
            let mut one = PopRequest::new("GET", "/");
            one = one.header(name, b"v");
            let set = one.field_mut(i).expect("a field per name");
            assert_eq!((set.count, set.first), (1, Some(&b"v"[..])), "{name}");
        }
        assert_eq!(view.dpop.count, 3);
        assert_eq!(view.dpop.first, Some(&b"a.b.c"[..]));
        assert_eq!(view.dpop.second, Some(&b"d.e.f"[..]));
        assert_eq!(view.path(), "/whoami");
        assert_eq!(view.method(), "GET");
    }
}
