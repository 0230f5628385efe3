//! Which request fields reach the upstream, and what the gateway adds. Removed from every
//! request, on public paths too:
//!
//! - the hop-by-hop fields (RFC 9110 §7.6.1): [`HOP_BY_HOP`] and every field named in
//!   `Connection`; `TE: trailers` is put back when the client sent it (response trailers, e.g.
//!   gRPC's, are streamed through);
//! - what the gateway checked or answered: [`NOT_FORWARDED`] (the proof, the certificate
//!   fields, `Expect`), `Host` (the upstream's own is set), and `Authorization` unless the
//!   gateway is told to forward it;
//! - a forged identity: every `X-Pop-*` field, and every name with an `_` (as nginx does by
//!   default: CGI, WSGI, PHP and Rack read `X_Pop_Sub` as `X-Pop-Sub`);
//! - every field an upstream framework may read to override the routed path, the method or the
//!   client address: [`OVERRIDES`], plus any the operator names
//!   ([`FieldRules::strip`]);
//! - the forwarding fields ([`FORWARDING`]) unless the peer is a trusted proxy.
//!
//! Then `Forwarded` (RFC 7239 §4, §5.2) and `X-Forwarded-For` are appended for this hop, and
//! `X-Forwarded-Host`/`-Proto` set when a trusted proxy did not set them.
//!
//! Request trailers are not forwarded at all (the proxy drops them): they could carry any of
//! the above after the header section was checked.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The hop-by-hop fields of RFC 9110 §7.6.1 (and the obsolete `Keep-Alive`,
/// `Proxy-Connection`): they describe one connection.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request fields that never reach the upstream besides those: the proof and certificates the
/// gateway already checked (RFC 9449, RFC 9440 and the proxies' own spellings), and the
/// client's `Expect`, which the gateway's own server already answered.
pub const NOT_FORWARDED: [&str; 6] = [
    "expect",
    "dpop",
    "client-cert",
    "client-cert-chain",
    "x-forwarded-client-cert",
    "ssl-client-cert",
];

/// Fields upstream frameworks read to override the routed path (`X-Original-URL`,
/// `X-Rewrite-URL`: IIS, Symfony, Laravel; `X-Forwarded-Prefix`: Spring, ASP.NET), the method
/// (`X-HTTP-Method-Override` and its spellings: Express, Rails, ASP.NET, Spring) or the client's
/// address and port (`X-Real-IP`, `True-Client-IP`, `X-Client-IP`, `CF-Connecting-IP`,
/// `X-Forwarded-Port`): a client that sends them could reach a route or pass as an address the
/// gateway never checked. Removed from every request, whoever the peer.
pub const OVERRIDES: [&str; 11] = [
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-forwarded-prefix",
    "x-forwarded-port",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "cf-connecting-ip",
];

/// Fields that only a trusted proxy may set (they name the client), replaced otherwise.
pub const FORWARDING: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// The identity fields the gateway sets start with this; any such field the client sent is
/// removed first.
pub const IDENTITY_PREFIX: &str = "x-pop-";

/// The hop-by-hop fields of RFC 9110 §7.6.1 (the fixed list and every field named in
/// `Connection`), removed from `headers`. For responses, and as the first step for requests.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Who sent the request, as the upstream is told.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether the peer is a trusted proxy (its forwarding fields are kept and appended to).
    pub peer_trusted: bool,
    /// `http` or `https`: how the client reached the gateway.
    pub proto: &'static str,
    /// The `Host` the client asked for (`:authority` on HTTP/2), if any.
    pub host: Option<&'a str>,
}

/// The gateway's rules for the client's fields: the module docs' list, and the operator's.
#[derive(Debug, Clone, Default)]
pub struct FieldRules {
    forward_authorization: bool,
    stripped: Vec<HeaderName>,
}

impl FieldRules {
    /// The default rules; with `forward_authorization` the client's `Authorization` reaches the
    /// upstream.
    #[must_use]
    pub fn new(forward_authorization: bool) -> Self {
        Self {
            forward_authorization,
            stripped: Vec::new(),
        }
    }

    /// Also remove the fields `names` (the `--strip-header` flag), besides [`OVERRIDES`].
    ///
    /// # Errors
    /// A message naming a name that is not a field name.
    pub fn strip(mut self, names: &[String]) -> Result<Self, String> {
        for name in names {
            let parsed = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("--strip-header {name:?}: not a header field name"))?;
            self.stripped.push(parsed);
        }
        Ok(self)
    }

    /// Whether a field the client sent under `name` may reach the upstream as it is (the
    /// forwarding fields aside, which depend on the peer).
    #[must_use]
    pub fn passes(&self, name: &HeaderName) -> bool {
        let n = name.as_str();
        !(HOP_BY_HOP.contains(&n)
            || NOT_FORWARDED.contains(&n)
            || OVERRIDES.contains(&n)
            || self.stripped.contains(name)
            || *name == header::HOST
            || (*name == header::AUTHORIZATION && !self.forward_authorization)
            || n.starts_with(IDENTITY_PREFIX)
            || n.contains('_'))
    }

    /// The request fields for the upstream: `incoming` filtered as the module docs say, with
    /// `Forwarded` and `X-Forwarded-For` appended for `hop`, and `X-Forwarded-Host`/`-Proto`
    /// set if a trusted proxy did not set them.
    #[must_use]
    pub fn upstream_request_headers(&self, incoming: &HeaderMap, hop: &Hop<'_>) -> HeaderMap {
        let wants_trailers = incoming
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
        let mut headers = incoming.clone();
        remove_hop_by_hop(&mut headers);
        let refused: Vec<HeaderName> = headers
            .keys()
            .filter(|name| !self.passes(name))
            .cloned()
            .collect();
        for name in refused {
            headers.remove(name);
        }
        if !hop.peer_trusted {
            for name in FORWARDING {
                headers.remove(name);
            }
        }
        if wants_trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        let peer = hop.peer.to_canonical();
        let mut element = format!("for={}", forwarded_node(peer));
        if let Some(host) = hop.host.filter(|h| !h.is_empty()) {
            element.push_str(";host=");
            element.push_str(&forwarded_value(host));
        }
        element.push_str(";proto=");
        element.push_str(hop.proto);
        append_list(
            &mut headers,
            &HeaderName::from_static("forwarded"),
            &element,
        );
        append_list(
            &mut headers,
            &HeaderName::from_static("x-forwarded-for"),
            &peer.to_string(),
        );
        let host_name = HeaderName::from_static("x-forwarded-host");
        if let Some(host) = hop.host.and_then(|h| HeaderValue::from_str(h).ok()) {
            headers.entry(host_name).or_insert(host);
        }
        headers
            .entry(HeaderName::from_static("x-forwarded-proto"))
            .or_insert(HeaderValue::from_static(hop.proto));
        headers
    }
}

/// Append `element` to the list field `name`, as one field line (some upstreams read only the
/// first line of a list field).
fn append_list(headers: &mut HeaderMap, name: &HeaderName, element: &str) {
    let mut joined: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    joined.push(element);
    match HeaderValue::from_str(&joined.join(", ")) {
        Ok(value) => {
            headers.insert(name.clone(), value);
        }
        // A trusted proxy's list that is not text: this hop alone, never the client's bytes.
        Err(_) => {
            if let Ok(value) = HeaderValue::from_str(element) {
                headers.insert(name.clone(), value);
            }
        }
    }
}

/// An RFC 7239 §6 node for an address: IPv4 as a token, IPv6 bracketed and quoted.
#[must_use]
pub fn forwarded_node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// A `Forwarded` parameter value (RFC 7239 §4): a token as is, anything else a quoted-string.
#[must_use]
pub fn forwarded_value(value: &str) -> String {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !value.is_empty() && value.chars().all(tchar) {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_headers as headers;

    fn hop(peer: &str, trusted: bool) -> Hop<'static> {
        Hop {
            peer: peer.parse().expect("an address"),
            peer_trusted: trusted,
            proto: "https",
            host: Some("api.example.com:8443"),
        }
    }

    #[test]
    fn strips_hop_by_hop_proof_and_forged_identity() {
        let incoming = headers(&[
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "s"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("te", "gzip, trailers"),
            ("dpop", "proof"),
            ("authorization", "DPoP token"),
            ("client-cert", ":abc:"),
            ("client-cert-chain", ":abc:"),
            ("x-forwarded-client-cert", "Hash=1"),
            ("ssl-client-cert", "pem"),
            ("x-pop-sub", "admin"),
            ("X-Pop-Anything", "x"),
            ("X_Pop_Sub", "admin"),
            ("x_forwarded_for", "203.0.113.9"),
            ("host", "api.example.com:8443"),
            ("accept", "application/json"),
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        let out =
            FieldRules::new(false).upstream_request_headers(&incoming, &hop("192.0.2.1", false));
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "proxy-authorization",
            "dpop",
            "authorization",
            "client-cert",
            "client-cert-chain",
            "x-forwarded-client-cert",
            "ssl-client-cert",
            "x-pop-sub",
            "x-pop-anything",
            "x_pop_sub",
            "x_forwarded_for",
            "host",
        ] {
            assert!(!out.contains_key(gone), "{gone} kept");
        }
        assert_eq!(out["te"], "trailers");
        assert_eq!(out["accept"], "application/json");
        // From an untrusted peer the forwarding fields are replaced, not appended to.
        assert_eq!(
            out["forwarded"],
            r#"for=192.0.2.1;host="api.example.com:8443";proto=https"#
        );
        assert_eq!(out["x-forwarded-for"], "192.0.2.1");
        assert_eq!(out["x-forwarded-host"], "api.example.com:8443");
        assert_eq!(out["x-forwarded-proto"], "https");
        let kept =
            FieldRules::new(true).upstream_request_headers(&incoming, &hop("192.0.2.1", false));
        assert_eq!(kept["authorization"], "DPoP token");
    }

    #[test]
    fn strips_every_override_field_also_from_a_trusted_proxy() {
        let mut pairs: Vec<(&str, &str)> = OVERRIDES.iter().map(|n| (*n, "/admin")).collect();
        pairs.push(("X-Custom-Route", "/admin"));
        pairs.push(("x-keep", "1"));
        let incoming = headers(&pairs);
        let rules = FieldRules::new(false)
            .strip(&["X-Custom-Route".to_owned()])
            .expect("a name");
        for trusted in [false, true] {
            let out = rules.upstream_request_headers(&incoming, &hop("10.0.0.1", trusted));
            for name in OVERRIDES.iter().chain(&["x-custom-route"]) {
                assert!(!out.contains_key(*name), "{name} kept (trusted: {trusted})");
            }
            assert_eq!(out["x-keep"], "1");
        }
        assert!(
            FieldRules::new(false)
                .strip(&["bad name".to_owned()])
                .is_err()
        );
    }

    #[test]
    fn appends_to_a_trusted_proxys_forwarding_fields_and_quotes_ipv6() {
        let incoming = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let mut h = hop("::ffff:10.0.0.1", true);
        h.proto = "http";
        let rules = FieldRules::new(false);
        let out = rules.upstream_request_headers(&incoming, &h);
        assert_eq!(out["x-forwarded-for"], "203.0.113.9, 10.0.0.1");
        assert_eq!(
            out["forwarded"],
            r#"for=203.0.113.9, for=10.0.0.1;host="api.example.com:8443";proto=http"#
        );
        assert_eq!(out["x-forwarded-proto"], "https");
        let out = rules.upstream_request_headers(&HeaderMap::new(), &hop("2001:db8::1", false));
        assert!(
            out["forwarded"]
                .to_str()
                .expect("text")
                .starts_with(r#"for="[2001:db8::1]";"#)
        );
        assert_eq!(out["x-forwarded-for"], "2001:db8::1");
        assert_eq!(forwarded_value("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(forwarded_value("example.com"), "example.com");
    }

    #[test]
    fn removes_hop_by_hop_from_responses() {
        let mut h = headers(&[
            ("connection", "close, x-internal"),
            ("x-internal", "1"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["content-type"], "text/plain");
    }
}
