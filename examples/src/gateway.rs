//! The pieces of `pop_gateway` that decide what crosses the gateway: its command line, which
//! header fields reach the upstream (RFC 9110 §7.6.1 hop-by-hop fields, the proof, forged
//! identity), the identity fields it adds, `Forwarded` (RFC 7239) and `X-Forwarded-For`, which
//! paths pass without a token, the original request of a forward-auth sub-request, and a request
//! body that stops at a size limit. Kept apart from the binary so each rule has a unit test.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use clap::{CommandFactory, FromArgMatches, Parser};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use http_body::{Frame, SizeHint};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tower_pop::Verified;

use crate::Args;

/// The command line of `pop_gateway`: every flag of the example servers ([`Args`]) plus the
/// gateway's own. Every flag can also come from a `TOWER_POP_*` environment variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pop_gateway",
    version,
    about = "A reverse proxy that requires proof-of-possession tokens (DPoP, mTLS) in front of a service written in any language"
)]
pub struct GatewayArgs {
    /// The flags shared with the example servers.
    #[command(flatten)]
    pub common: Args,
    /// Forward accepted requests to this service (`http://host:port`, optionally with a base
    /// path that is put before every request path).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "forward_auth",
        conflicts_with = "forward_auth"
    )]
    pub upstream: Option<String>,
    /// Do not proxy: answer the auth sub-requests of nginx `auth_request`, Traefik
    /// `ForwardAuth` or Envoy `ext_authz` (200 with the identity fields, or the refusal), from
    /// --trusted-proxy peers only.
    #[arg(long)]
    pub forward_auth: bool,
    /// A path prefix that passes without a token (repeatable; matched on whole path segments:
    /// `/static` covers `/static` and `/static/app.js`, not `/static-admin`).
    #[arg(long = "public-path", value_name = "PREFIX")]
    pub public_path: Vec<String>,
    /// Forward the client's `Authorization` field to the upstream [default: removed].
    #[arg(long)]
    pub forward_authorization: bool,
    /// The largest request body forwarded; a larger one is refused with 413.
    #[arg(long, value_name = "N", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: u64,
    /// How long the upstream may take to start answering (connect, send, response head) before
    /// the gateway answers 504.
    #[arg(long, value_name = "S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upstream_timeout_secs: u64,
    /// Speak HTTP/2 to the upstream (prior knowledge, h2c) instead of HTTP/1.1.
    #[arg(long)]
    pub upstream_http2: bool,
}

impl GatewayArgs {
    /// The clap command: the example servers' flags, with `--trusted-proxy` usable on its own
    /// (here it also names the proxies whose `Forwarded` fields and forward-auth sub-requests
    /// are believed) and `--scope` applying to every proxied request.
    #[must_use]
    pub fn command() -> clap::Command {
        <Self as CommandFactory>::command()
            .mut_arg("trusted_proxy", |a| {
                a.requires(clap::builder::Resettable::Reset).help(
                    "A peer network trusted as a proxy (repeatable; CIDR or one address): its \
                     Forwarded/X-Forwarded-* fields are kept, its forward-auth sub-requests are \
                     answered, and with --client-cert-header its certificate header is believed",
                )
            })
            .mut_arg("scope", |a| {
                a.help("Every request that needs a token requires this scope (403 insufficient_scope without it)")
            })
            // CORS answers every OPTIONS itself: in forward-auth mode that would authorise any
            // OPTIONS sub-request (Envoy sends the original method). CORS belongs to the front
            // proxy or the upstream there.
            .mut_arg("cors_origin", |a| a.conflicts_with("forward_auth"))
    }

    /// Parse these arguments (the first is the program name).
    ///
    /// # Errors
    /// clap's error for a bad or missing flag.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = crate::with_env(Self::command()).try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }

    /// Parse the process arguments; `--help`/`--version` exit 0, a bad flag exits 2.
    #[must_use]
    pub fn from_env() -> Self {
        Self::try_parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }
}

/// The identity fields the gateway sets; any field whose name starts with `x-pop-` is removed
/// from the client's request first.
pub const IDENTITY_PREFIX: &str = "x-pop-";
/// The token's `sub`.
pub const X_POP_SUB: &str = "x-pop-sub";
/// The binding proven: `dpop`, `mtls`, `dpop+mtls` or `bearer` (with --allow-bearer).
pub const X_POP_BINDING: &str = "x-pop-binding";
/// The RFC 7638 thumbprint of the proven DPoP key.
pub const X_POP_JKT: &str = "x-pop-jkt";
/// The `x5t#S256` of the proven client certificate.
pub const X_POP_X5T_S256: &str = "x-pop-x5t-s256";
/// The token's `client_id` (RFC 9068 §2.2).
pub const X_POP_CLIENT_ID: &str = "x-pop-client-id";
/// The token's `scope` (RFC 9068 §2.2.3).
pub const X_POP_SCOPE: &str = "x-pop-scope";

/// The hop-by-hop fields of RFC 9110 §7.6.1 (and the obsolete `Keep-Alive`,
/// `Proxy-Connection`): they describe one connection.
const HOP_BY_HOP: [&str; 9] = [
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
const NOT_FORWARDED: [&str; 6] = [
    "expect",
    "dpop",
    "client-cert",
    "client-cert-chain",
    "x-forwarded-client-cert",
    "ssl-client-cert",
];

/// Fields that only a trusted proxy may set (they name the client), replaced otherwise.
const FORWARDING: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

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
    /// Whether the peer is a --trusted-proxy (its forwarding fields are kept and appended to).
    pub peer_trusted: bool,
    /// `http` or `https`: how the client reached the gateway.
    pub proto: &'static str,
    /// The `Host` the client asked for (`:authority` on HTTP/2), if any.
    pub host: Option<&'a str>,
}

/// The request fields for the upstream: `incoming` without the hop-by-hop fields, the proof and
/// certificate fields, `Host` (the client sets the upstream's), any `X-Pop-*` field, and
/// `Authorization` unless `forward_authorization`; with `Forwarded` and `X-Forwarded-For`
/// appended for `hop` (RFC 7239 §4, §5.2), and `X-Forwarded-Host`/`-Proto` set if a trusted
/// proxy did not set them. `TE: trailers` survives (trailers are streamed through).
#[must_use]
pub fn upstream_request_headers(
    incoming: &HeaderMap,
    hop: &Hop<'_>,
    forward_authorization: bool,
) -> HeaderMap {
    let wants_trailers = incoming
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    let mut headers = incoming.clone();
    remove_hop_by_hop(&mut headers);
    for name in NOT_FORWARDED {
        headers.remove(name);
    }
    headers.remove(header::HOST);
    if !forward_authorization {
        headers.remove(header::AUTHORIZATION);
    }
    // Besides the gateway's own `X-Pop-*`: every name with an `_`, as nginx does by default
    // (`underscores_in_headers off`). CGI, WSGI, PHP and Rack read `X_Pop_Sub` as `X-Pop-Sub`
    // (and `X_Forwarded_For` as `X-Forwarded-For`), so it would forge what the gateway owns.
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with(IDENTITY_PREFIX) || n.as_str().contains('_'))
        .cloned()
        .collect();
    for name in forged {
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

/// Append `element` to the list field `name`, as one field line (some upstreams read only the
/// first line of a list field).
fn append_list(headers: &mut HeaderMap, name: &HeaderName, element: &str) {
    let mut joined: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    joined.push(element);
    if let Ok(value) = HeaderValue::from_str(&joined.join(", ")) {
        headers.insert(name.clone(), value);
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

/// The identity fields for a verified request. A claim the upstream would be told about but
/// that is not a string, or not a valid field value (control characters, non-ASCII), is an
/// error: the gateway then refuses the token (401 `invalid_token`) rather than forward a partial
/// or mangled identity.
///
/// # Errors
/// [`UnsafeClaim`] naming the claim that cannot be written as a field value.
pub fn identity_headers(
    verified: &Verified,
) -> Result<Vec<(HeaderName, HeaderValue)>, UnsafeClaim> {
    let claim = |name: &'static str| -> Result<Option<HeaderValue>, UnsafeClaim> {
        match verified.claims().get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => safe_value(s).map(Some).map_err(|()| UnsafeClaim(name)),
            Some(_) => Err(UnsafeClaim(name)),
        }
    };
    let thumbprint = |name: &'static str, value: Option<&str>| {
        value
            .map(safe_value)
            .transpose()
            .map_err(|()| UnsafeClaim(name))
    };
    let mut fields = Vec::with_capacity(6);
    let mut add = |name: &'static str, value: Option<HeaderValue>| {
        if let Some(value) = value {
            fields.push((HeaderName::from_static(name), value));
        }
    };
    add(X_POP_SUB, claim("sub")?);
    add(
        X_POP_BINDING,
        Some(HeaderValue::from_static(verified.binding().as_str())),
    );
    add(X_POP_JKT, thumbprint("cnf.jkt", verified.jkt())?);
    add(
        X_POP_X5T_S256,
        thumbprint("cnf.x5t#S256", verified.certificate_thumbprint())?,
    );
    add(X_POP_CLIENT_ID, claim("client_id")?);
    add(X_POP_SCOPE, claim("scope")?);
    Ok(fields)
}

/// A verified token's claim that cannot become an identity field (its name; never its value,
/// which may be personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsafeClaim(pub &'static str);

impl std::fmt::Display for UnsafeClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "claim {} is not a plain visible-ASCII string", self.0)
    }
}

impl std::error::Error for UnsafeClaim {}

/// A field value of visible ASCII and inner spaces only (RFC 9110 §5.5, without obs-text), at
/// most 4 KiB.
fn safe_value(s: &str) -> Result<HeaderValue, ()> {
    let ok = !s.is_empty()
        && s.len() <= 4096
        && s.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && !s.starts_with(' ')
        && !s.ends_with(' ');
    if !ok {
        return Err(());
    }
    HeaderValue::from_str(s).map_err(|_| ())
}

/// The `--public-path` prefixes, checked at start-up.
#[derive(Debug, Clone, Default)]
pub struct PublicPaths(Vec<String>);

impl PublicPaths {
    /// Each prefix must start with `/`, must not be `/` itself (that is no gateway at all), and
    /// must hold no `.`/`..` segment and no `%`; a trailing `/` is dropped.
    ///
    /// # Errors
    /// A message naming the bad prefix.
    pub fn new(prefixes: &[String]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            let trimmed = prefix.trim_end_matches('/');
            if !prefix.starts_with('/')
                || trimmed.is_empty()
                || trimmed.contains(['%', '?', '#', '\\'])
                || !path_is_plain(trimmed)
            {
                return Err(format!(
                    "--public-path {prefix:?}: a path like /static, not /, without dot segments or %"
                ));
            }
            out.push(trimmed.to_owned());
        }
        Ok(Self(out))
    }

    /// Whether `path` (the path forwarded, as the client sent it) is under a public prefix: on
    /// segment boundaries, and only if the path holds nothing an upstream could resolve to
    /// somewhere else (dot segments, also percent-encoded or with `;` parameters, encoded
    /// slashes, backslashes). A path that fails these needs a token like any other.
    #[must_use]
    pub fn covers(&self, path: &str) -> bool {
        let under = self.0.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        under && path_is_plain(path)
    }
}

/// No segment of `path` is, after up to two rounds of percent-decoding and without `;`
/// parameters, `.` or `..`; no segment decodes to one holding `/` or `\`.
fn path_is_plain(path: &str) -> bool {
    if path.contains('\\') {
        return false;
    }
    path.split('/').all(|segment| {
        let mut current = segment.to_owned();
        for _ in 0..3 {
            let bare = current.split(';').next().unwrap_or_default();
            if bare == "." || bare == ".." || current.contains(['/', '\\', '\0']) {
                return false;
            }
            if !current.contains('%') {
                return true;
            }
            current = percent_decode_str(&current)
                .decode_utf8_lossy()
                .into_owned();
        }
        // Still percent-encoded after two decodings: nothing legitimate looks like that.
        false
    })
}

/// Why a forward-auth sub-request cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardAuthError {
    /// A field is missing, repeated, not a method or not an origin-form URI, or the nginx and
    /// Traefik fields disagree.
    BadOriginal,
}

/// The original request of a forward-auth sub-request: nginx's `X-Original-Method` and
/// `X-Original-URI`, or Traefik's `X-Forwarded-Method` and `X-Forwarded-Uri`. `Ok(None)` when
/// neither is present (Envoy's `ext_authz` sends the original method and path as the
/// sub-request's own). Each field must appear once; a URI without its method is an error, and
/// so are both families naming different requests.
///
/// # Errors
/// [`ForwardAuthError::BadOriginal`].
pub fn original_request(headers: &HeaderMap) -> Result<Option<(Method, Uri)>, ForwardAuthError> {
    let nginx = pair(headers, "x-original-method", "x-original-uri")?;
    let traefik = pair(headers, "x-forwarded-method", "x-forwarded-uri")?;
    match (nginx, traefik) {
        (Some(a), Some(b)) if a != b => Err(ForwardAuthError::BadOriginal),
        (Some(a), _) | (None, Some(a)) => Ok(Some(a)),
        (None, None) => Ok(None),
    }
}

fn pair(
    headers: &HeaderMap,
    method: &str,
    uri: &str,
) -> Result<Option<(Method, Uri)>, ForwardAuthError> {
    let one = |name: &str| -> Result<Option<&str>, ForwardAuthError> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => v
                .to_str()
                .map(Some)
                .map_err(|_| ForwardAuthError::BadOriginal),
            (Some(_), Some(_)) => Err(ForwardAuthError::BadOriginal),
        }
    };
    match (one(method)?, one(uri)?) {
        (None, None) => Ok(None),
        (Some(m), Some(u)) => {
            let method =
                Method::from_bytes(m.as_bytes()).map_err(|_| ForwardAuthError::BadOriginal)?;
            if !u.starts_with('/') || u.starts_with("//") {
                return Err(ForwardAuthError::BadOriginal);
            }
            let uri = u
                .parse::<Uri>()
                .map_err(|_| ForwardAuthError::BadOriginal)?;
            Ok(Some((method, uri)))
        }
        _ => Err(ForwardAuthError::BadOriginal),
    }
}

/// `authority` without the scheme's default port, lowercase: for comparing a proxy's
/// `X-Forwarded-Host` with the public URL.
#[must_use]
pub fn normalized_authority(scheme: &str, authority: &str) -> String {
    let lower = authority.to_ascii_lowercase();
    let default = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return lower,
    };
    lower
        .strip_suffix(default)
        .map_or(lower.clone(), str::to_owned)
}

/// A request body that ends in an error once more than a limit has been read, and says so
/// through a flag the proxy checks to answer 413 instead of 502.
#[derive(Debug)]
pub struct LimitedBody {
    inner: Body,
    remaining: u64,
    exceeded: Arc<AtomicBool>,
}

impl LimitedBody {
    /// `inner`, cut off after `limit` bytes; the flag turns true when it was.
    #[must_use]
    pub fn new(inner: Body, limit: u64) -> (Self, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        let body = Self {
            inner,
            remaining: limit,
            exceeded: Arc::clone(&exceeded),
        };
        (body, exceeded)
    }
}

/// The body's error: the client's stream failed, or it went past the limit.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    if len > this.remaining {
                        this.exceeded.store(true, Ordering::SeqCst);
                        return Poll::Ready(Some(Err("request body over the limit".into())));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn hop(peer: &str, trusted: bool) -> Hop<'static> {
        Hop {
            peer: peer.parse().unwrap(),
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
        let out = upstream_request_headers(&incoming, &hop("192.0.2.1", false), false);
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
        let kept = upstream_request_headers(&incoming, &hop("192.0.2.1", false), true);
        assert_eq!(kept["authorization"], "DPoP token");
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
        let out = upstream_request_headers(&incoming, &h, false);
        assert_eq!(out["x-forwarded-for"], "203.0.113.9, 10.0.0.1");
        assert_eq!(
            out["forwarded"],
            r#"for=203.0.113.9, for=10.0.0.1;host="api.example.com:8443";proto=http"#
        );
        assert_eq!(out["x-forwarded-proto"], "https");
        let out = upstream_request_headers(&HeaderMap::new(), &hop("2001:db8::1", false), false);
        assert!(
            out["forwarded"]
                .to_str()
                .unwrap()
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

    #[test]
    fn public_paths_match_whole_segments_and_refuse_dot_tricks() {
        let p = PublicPaths::new(&["/public/".to_owned(), "/static".to_owned()]).unwrap();
        for yes in [
            "/public",
            "/public/",
            "/public/a/b",
            "/static/app.js",
            "/public/%20x",
        ] {
            assert!(p.covers(yes), "{yes}");
        }
        for no in [
            "/publicity",
            "/private",
            "/",
            "/public/../private",
            "/public/..",
            "/public/%2e%2e/private",
            "/public/%2E./private",
            "/public/%252e%252e/private",
            "/public/..;/private",
            "/public/.;x/private",
            "/public/a%2f..%2fb",
            "/public\\..\\private",
            "//public/x",
            "/PUBLIC/x",
        ] {
            assert!(!p.covers(no), "{no}");
        }
        for bad in ["/", "public", "/a/../b", "/a%2f", ""] {
            assert!(PublicPaths::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_the_original_request_of_a_sub_request() {
        let nginx = headers(&[("x-original-method", "POST"), ("x-original-uri", "/a?b=c")]);
        let (m, u) = original_request(&nginx).unwrap().unwrap();
        assert_eq!(
            (m.as_str(), u.path(), u.query()),
            ("POST", "/a", Some("b=c"))
        );
        let traefik = headers(&[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/x")]);
        assert_eq!(original_request(&traefik).unwrap().unwrap().1.path(), "/x");
        assert_eq!(original_request(&HeaderMap::new()), Ok(None));
        for bad in [
            headers(&[("x-original-uri", "/a")]),
            headers(&[("x-original-method", "GET")]),
            headers(&[
                ("x-original-method", "GET"),
                ("x-original-uri", "http://evil/a"),
            ]),
            headers(&[("x-original-method", "GET"), ("x-original-uri", "//evil/a")]),
            headers(&[("x-original-method", "G T"), ("x-original-uri", "/a")]),
            headers(&[
                ("x-original-method", "GET"),
                ("x-original-uri", "/a"),
                ("x-original-uri", "/b"),
            ]),
            headers(&[
                ("x-original-method", "GET"),
                ("x-original-uri", "/a"),
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/b"),
            ]),
        ] {
            assert_eq!(
                original_request(&bad).map(|_| ()),
                Err(ForwardAuthError::BadOriginal),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn field_values_must_be_safe() {
        assert!(safe_value("user-1 x").is_ok());
        for bad in [
            "",
            " x",
            "a\r\nX-Pop-Sub: admin",
            "é",
            "a\u{7f}",
            &"a".repeat(5000),
        ] {
            assert!(safe_value(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            normalized_authority("https", "API.example.com:443"),
            "api.example.com"
        );
        assert_eq!(normalized_authority("http", "h:8080"), "h:8080");
    }

    #[test]
    fn cors_is_refused_in_forward_auth_mode() {
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "pop_gateway",
                "--issuer",
                "https://as.example",
                "--audience",
                "a",
            ];
            args.extend_from_slice(extra);
            GatewayArgs::try_parse_args(args)
        };
        let both = parse(&["--forward-auth", "--cors-origin", "https://app.example"]);
        assert_eq!(
            both.err().map(|e| e.kind()),
            Some(clap::error::ErrorKind::ArgumentConflict)
        );
        assert!(
            parse(&[
                "--upstream",
                "http://127.0.0.1:1",
                "--cors-origin",
                "https://app.example"
            ])
            .is_ok()
        );
    }

    #[test]
    fn gateway_flags_parse_and_keep_the_servers_flags() {
        let base = ["gw", "--issuer", "i", "--audience", "a", "--jwks-file", "k"];
        let parse =
            |extra: &[&str]| GatewayArgs::try_parse_args(base.iter().chain(extra.iter()).copied());
        let a = parse(&["--upstream", "http://127.0.0.1:9", "--public-path", "/p"]).unwrap();
        assert_eq!(a.upstream.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(a.common.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(a.max_body_bytes, 10 * 1024 * 1024);
        let a = parse(&["--forward-auth", "--trusted-proxy", "127.0.0.2"]).unwrap();
        assert!(a.forward_auth && a.common.client_cert_header.is_none());
        assert!(parse(&[]).is_err(), "--upstream or --forward-auth required");
        assert!(parse(&["--forward-auth", "--upstream", "http://x"]).is_err());
        assert!(parse(&["--upstream", "http://x", "--upstream-timeout-secs", "0"]).is_err());
    }
}
