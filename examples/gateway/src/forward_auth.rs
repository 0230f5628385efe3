//! The original request of a forward-auth sub-request, read only from the fields of the proxy
//! named in front (`--forward-auth nginx|traefik|envoy`): the fields of the others pass through
//! proxies untouched, so a client could set them.
//!
//! | proxy | method and URI | origin check |
//! |---|---|---|
//! | nginx `auth_request` | `X-Original-Method` + `X-Original-URI` (set with `proxy_set_header`) | none: the sub-request names no host |
//! | Traefik `ForwardAuth` | `X-Forwarded-Method` + `X-Forwarded-Uri` | `X-Forwarded-Host` and `X-Forwarded-Proto` (Traefik sets both) name the public URL |
//! | Envoy `ext_authz` (HTTP service) | the sub-request's own method and path | its `:authority` / `Host` (the original's) names the public URL |
//!
//! Each field must appear exactly once; the URI must be origin-form (`/path?query`). A
//! sub-request that does not name its original request this way is malformed (400); one whose
//! host is not the gateway's public URL is refused (403): a proof for this gateway's URL must
//! not authorize a request to another host.

use std::fmt;
use std::str::FromStr;

use http::header::{self, HeaderMap};
use http::{Method, Uri};

/// The proxy whose sub-requests the gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// nginx `auth_request`.
    Nginx,
    /// Traefik `ForwardAuth`.
    Traefik,
    /// Envoy `ext_authz`, HTTP service.
    Envoy,
}

impl ProxyKind {
    /// The names the flag takes.
    pub const NAMES: [&'static str; 3] = ["nginx", "traefik", "envoy"];

    /// The flag's name for this proxy.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Traefik => "traefik",
            Self::Envoy => "envoy",
        }
    }
}

impl FromStr for ProxyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nginx" => Ok(Self::Nginx),
            "traefik" => Ok(Self::Traefik),
            "envoy" => Ok(Self::Envoy),
            _ => Err(format!("{s:?}: one of nginx, traefik, envoy")),
        }
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public URL's scheme and authority, to compare a forwarded host with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin {
    scheme: String,
    authority: String,
}

impl PublicOrigin {
    /// From an origin such as `https://api.example.com`.
    ///
    /// # Errors
    /// A message when `origin` has no `http`/`https` scheme or no authority.
    pub fn new(origin: &str) -> Result<Self, String> {
        let uri: Uri = origin.parse().map_err(|e| format!("{origin}: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_owned(),
            _ => return Err(format!("{origin}: not an http(s) origin")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{origin}: no host"))?;
        Ok(Self {
            authority: normalized_authority(&scheme, authority.as_str()),
            scheme,
        })
    }

    /// Whether `authority` (and `scheme`, when given) name this origin.
    #[must_use]
    pub fn matches(&self, scheme: Option<&str>, authority: &str) -> bool {
        scheme.is_none_or(|s| s.eq_ignore_ascii_case(&self.scheme))
            && normalized_authority(&self.scheme, authority.trim()) == self.authority
    }
}

/// `authority` without the scheme's default port, lowercase.
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

/// Why a forward-auth sub-request cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardAuthError {
    /// The proxy's fields are missing, repeated, not a method or not an origin-form URI: 400.
    BadOriginal,
    /// The forwarded host or scheme is not the public URL's: 403.
    ForeignOrigin,
}

/// The method and URI to verify for a sub-request from `kind`, whose own method, URI and
/// fields are `method`, `uri` and `headers`.
///
/// # Errors
/// See [`ForwardAuthError`].
pub fn original_request(
    kind: ProxyKind,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    public: &PublicOrigin,
) -> Result<(Method, Uri), ForwardAuthError> {
    match kind {
        ProxyKind::Nginx => named(headers, "x-original-method", "x-original-uri"),
        ProxyKind::Traefik => {
            let original = named(headers, "x-forwarded-method", "x-forwarded-uri")?;
            let host = one(headers, "x-forwarded-host")?.ok_or(ForwardAuthError::BadOriginal)?;
            let proto = one(headers, "x-forwarded-proto")?.ok_or(ForwardAuthError::BadOriginal)?;
            if !public.matches(Some(proto), host) {
                return Err(ForwardAuthError::ForeignOrigin);
            }
            Ok(original)
        }
        ProxyKind::Envoy => {
            let authority = match uri.authority() {
                Some(authority) => authority.as_str(),
                None => {
                    one(headers, header::HOST.as_str())?.ok_or(ForwardAuthError::BadOriginal)?
                }
            };
            if !public.matches(None, authority) {
                return Err(ForwardAuthError::ForeignOrigin);
            }
            // A request-target without a path (authority-form, CONNECT's) names no resource.
            let target = uri.path_and_query().ok_or(ForwardAuthError::BadOriginal)?;
            Ok((method.clone(), origin_form(target.as_str())?))
        }
    }
}

/// The field `name`, present exactly once and text.
fn one<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ForwardAuthError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v
            .to_str()
            .map(Some)
            .map_err(|_| ForwardAuthError::BadOriginal),
        (Some(_), Some(_)) => Err(ForwardAuthError::BadOriginal),
    }
}

/// A method and a URI from two fields, both present once.
fn named(headers: &HeaderMap, method: &str, uri: &str) -> Result<(Method, Uri), ForwardAuthError> {
    let (Some(m), Some(u)) = (one(headers, method)?, one(headers, uri)?) else {
        return Err(ForwardAuthError::BadOriginal);
    };
    let method = Method::from_bytes(m.as_bytes()).map_err(|_| ForwardAuthError::BadOriginal)?;
    Ok((method, origin_form(u)?))
}

/// `target` as an origin-form URI (`/path?query`, RFC 9112 §3.2.1): never an absolute URI or a
/// network path (`//host/...`), which would name another host.
fn origin_form(target: &str) -> Result<Uri, ForwardAuthError> {
    if !target.starts_with('/') || target.starts_with("//") {
        return Err(ForwardAuthError::BadOriginal);
    }
    let uri = target
        .parse::<Uri>()
        .map_err(|_| ForwardAuthError::BadOriginal)?;
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(ForwardAuthError::BadOriginal);
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_headers as headers;

    fn public() -> PublicOrigin {
        PublicOrigin::new("https://api.example.com").expect("an origin")
    }

    fn read(
        kind: ProxyKind,
        uri: &str,
        fields: &[(&str, &str)],
    ) -> Result<(Method, Uri), ForwardAuthError> {
        let uri: Uri = uri.parse().expect("a URI");
        original_request(kind, &Method::GET, &uri, &headers(fields), &public())
    }

    const NGINX: [(&str, &str); 2] = [("x-original-method", "POST"), ("x-original-uri", "/a?b=c")];
    const TRAEFIK: [(&str, &str); 4] = [
        ("x-forwarded-method", "PUT"),
        ("x-forwarded-uri", "/t"),
        ("x-forwarded-host", "API.example.com:443"),
        ("x-forwarded-proto", "https"),
    ];

    #[test]
    fn each_proxy_is_read_from_its_own_fields_only() {
        let all: Vec<(&str, &str)> = NGINX.iter().chain(&TRAEFIK).copied().collect();
        let (m, u) = read(ProxyKind::Nginx, "/auth", &all).expect("nginx");
        assert_eq!(
            (m.as_str(), u.path(), u.query()),
            ("POST", "/a", Some("b=c"))
        );
        let (m, u) = read(ProxyKind::Traefik, "/auth", &all).expect("traefik");
        assert_eq!((m.as_str(), u.path()), ("PUT", "/t"));
        // Behind Envoy, a client's X-Original-* and X-Forwarded-* change nothing.
        let mut envoy = all.clone();
        envoy.push(("host", "api.example.com"));
        let (m, u) = read(ProxyKind::Envoy, "/real/path?q=1", &envoy).expect("envoy");
        assert_eq!(
            (m.as_str(), u.path(), u.query()),
            ("GET", "/real/path", Some("q=1"))
        );
        // nginx's fields do not stand in for Traefik's, nor the other way round.
        assert_eq!(
            read(ProxyKind::Traefik, "/auth", &NGINX),
            Err(ForwardAuthError::BadOriginal)
        );
        assert_eq!(
            read(ProxyKind::Nginx, "/auth", &TRAEFIK),
            Err(ForwardAuthError::BadOriginal)
        );
    }

    #[test]
    fn a_foreign_host_is_refused() {
        let mut traefik = TRAEFIK.to_vec();
        traefik[2] = ("x-forwarded-host", "other.example");
        assert_eq!(
            read(ProxyKind::Traefik, "/auth", &traefik),
            Err(ForwardAuthError::ForeignOrigin)
        );
        let mut traefik = TRAEFIK.to_vec();
        traefik[3] = ("x-forwarded-proto", "http");
        assert_eq!(
            read(ProxyKind::Traefik, "/auth", &traefik),
            Err(ForwardAuthError::ForeignOrigin)
        );
        assert_eq!(
            read(ProxyKind::Traefik, "/auth", &TRAEFIK[..2]),
            Err(ForwardAuthError::BadOriginal)
        );
        assert_eq!(
            read(ProxyKind::Envoy, "/x", &[("host", "other.example")]),
            Err(ForwardAuthError::ForeignOrigin)
        );
        assert_eq!(
            read(ProxyKind::Envoy, "/x", &[]),
            Err(ForwardAuthError::BadOriginal)
        );
        assert_eq!(
            read(
                ProxyKind::Envoy,
                "/x",
                &[("host", "api.example.com"), ("host", "api.example.com")]
            ),
            Err(ForwardAuthError::BadOriginal)
        );
        // An HTTP/2 sub-request's :authority.
        assert!(read(ProxyKind::Envoy, "https://api.example.com/x", &[]).is_ok());
        // An authority-form target names no resource (found by the fuzz target).
        assert_eq!(
            read(
                ProxyKind::Envoy,
                "api.example.com",
                &[("host", "api.example.com")]
            ),
            Err(ForwardAuthError::BadOriginal)
        );
    }

    #[test]
    fn malformed_fields_are_refused() {
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
        ] {
            let uri: Uri = "/auth".parse().expect("a URI");
            assert_eq!(
                original_request(ProxyKind::Nginx, &Method::GET, &uri, &bad, &public()).map(|_| ()),
                Err(ForwardAuthError::BadOriginal),
                "{bad:?}"
            );
        }
        assert_eq!("envoy".parse::<ProxyKind>(), Ok(ProxyKind::Envoy));
        assert!("haproxy".parse::<ProxyKind>().is_err());
        assert_eq!(
            normalized_authority("https", "API.example.com:443"),
            "api.example.com"
        );
        assert_eq!(normalized_authority("http", "h:8080"), "h:8080");
    }
}
