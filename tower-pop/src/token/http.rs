//! HTTPS calls to the authorization server, shared by discovery and introspection.
//!
//! Every call is bounded: no proxy (neither configured nor from the environment), a total
//! timeout per request, the response body read in chunks and abandoned at a byte limit (the
//! `Content-Length` is not trusted), and redirects followed only within the origin of the first
//! URL, at most [`MAX_REDIRECTS`] hops (a redirect to another scheme, host or port is an error,
//! so an `https` URL can never be downgraded). URLs must be absolute `https`; plain `http` is
//! allowed only for loopback hosts and only through the loudly named
//! `insecure_allow_http_on_loopback` options (tests). TLS is rustls with the aws-lc-rs provider
//! (reqwest's `rustls` feature) and the platform's roots, plus an optional extra root CA.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::redirect::{Attempt, Policy};
use reqwest::{Client, Response, StatusCode, Url};

use crate::error::RemoteConfigError;

/// Most redirects followed within one origin.
pub(crate) const MAX_REDIRECTS: usize = 3;

/// Why one HTTP exchange failed; [`fmt::Display`] names no secret (URLs are ours or the
/// issuer's published ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// Connection, TLS, timeout or protocol failure.
    Transport,
    /// A redirect left the origin, or too many hops.
    Redirect,
    /// The body exceeded the limit.
    TooLarge,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Transport => "unreachable, timed out or broken connection",
            Self::Redirect => "redirect to another origin or too many redirects",
            Self::TooLarge => "response body too large",
        })
    }
}

/// The setters of the HTTP settings, for an options type whose `http` field is an
/// [`HttpSettings`]: discovery's and introspection's, written once.
macro_rules! http_setters {
    () => {
        /// Total time for one HTTP request to the authorization server, connecting included
        /// (default 5 s, [`HTTP_TIMEOUT`](crate::defaults::HTTP_TIMEOUT)).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.http.timeout = Some(timeout);
            self
        }

        /// An extra trusted root CA (PEM, one or more certificates) for the HTTPS calls, beside
        /// the platform's roots: for an authorization server with a private PKI (`--issuer-ca`).
        pub fn root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
            self.http.root_ca_pem = Some(pem.into());
            self
        }

        /// Allow plain `http` URLs whose host is loopback (`127.0.0.0/8`, `::1`, `localhost`).
        /// For tests only: what crosses plain HTTP (keys, tokens, client secrets) can be read
        /// and replaced by anyone on the path. Other hosts are refused with `http` even so.
        pub fn insecure_allow_http_on_loopback(mut self) -> Self {
            self.http.insecure_allow_http_on_loopback = true;
            self
        }
    };
}

pub(crate) use http_setters;

/// Settings of the HTTP client.
#[derive(Clone, Default)]
pub(crate) struct HttpSettings {
    pub(crate) timeout: Option<Duration>,
    pub(crate) root_ca_pem: Option<Vec<u8>>,
    pub(crate) insecure_allow_http_on_loopback: bool,
    /// Follow same-origin redirects (discovery); `false`: a 3xx is returned as is (introspection).
    pub(crate) follow_redirects: bool,
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("timeout", &self.timeout)
            .field("extra_root_ca", &self.root_ca_pem.is_some())
            .field(
                "insecure_allow_http_on_loopback",
                &self.insecure_allow_http_on_loopback,
            )
            .field("follow_redirects", &self.follow_redirects)
            .finish()
    }
}

/// The bounded HTTP client.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client,
    allow_http: bool,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("insecure_allow_http_on_loopback", &self.allow_http)
            .finish_non_exhaustive()
    }
}

/// Whether `next` has the origin (scheme, host, port) of the first URL of the chain.
fn same_origin(first: &Url, next: &Url) -> bool {
    first.origin() == next.origin()
}

fn redirect_policy(follow: bool) -> Policy {
    if !follow {
        return Policy::none();
    }
    Policy::custom(|attempt: Attempt<'_>| {
        let allowed = attempt.previous().len() <= MAX_REDIRECTS
            && attempt
                .previous()
                .first()
                .is_some_and(|first| same_origin(first, attempt.url()));
        if allowed {
            attempt.follow()
        } else {
            attempt.error("redirect refused")
        }
    })
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // An IPv6 host is written in brackets.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `url` as logs and `Debug` may show it: without user information (a password) and with its
/// query and fragment cut to `?…` (they may carry secrets, such as an API key).
pub(crate) fn redacted(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let (base, rest) = url.split_at(end);
    let mut shown = match base.split_once("://") {
        Some((scheme, after)) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_owned(),
    };
    if !rest.is_empty() {
        shown.push_str("?…");
    }
    shown
}

/// Check that `url` is absolute `https` (or `http` on loopback when allowed), without
/// credentials or fragment; `query` says whether a query is allowed.
pub(crate) fn check_url(
    url: &str,
    allow_http_on_loopback: bool,
    query: bool,
) -> Result<Url, &'static str> {
    let parsed = Url::parse(url).map_err(|_| "not an absolute URL")?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http_on_loopback && is_loopback(&parsed) => {}
        "http" if allow_http_on_loopback => return Err("plain http is allowed only on loopback"),
        "http" => return Err("not https"),
        _ => return Err("not https"),
    }
    if parsed.host().is_none() {
        return Err("no host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials in the URL");
    }
    if parsed.fragment().is_some() {
        return Err("has a fragment");
    }
    if !query && parsed.query().is_some() {
        return Err("has a query");
    }
    Ok(parsed)
}

impl HttpClient {
    pub(crate) fn new(settings: &HttpSettings) -> Result<Self, RemoteConfigError> {
        let mut builder = Client::builder()
            .no_proxy()
            .redirect(redirect_policy(settings.follow_redirects))
            .referer(false)
            .https_only(!settings.insecure_allow_http_on_loopback)
            .timeout(settings.timeout.unwrap_or(crate::defaults::HTTP_TIMEOUT))
            .connect_timeout(settings.timeout.unwrap_or(crate::defaults::HTTP_TIMEOUT))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("tower-pop/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &settings.root_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                RemoteConfigError::InvalidRootCa {
                    reason: e.to_string(),
                }
            })?;
            if certs.is_empty() {
                return Err(RemoteConfigError::InvalidRootCa {
                    reason: "no certificate in the PEM".to_owned(),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| RemoteConfigError::Client {
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            allow_http: settings.insecure_allow_http_on_loopback,
        })
    }

    /// Whether plain `http` on loopback is allowed.
    #[cfg(feature = "discovery")]
    pub(crate) fn allows_http_on_loopback(&self) -> bool {
        self.allow_http
    }

    /// `GET url` with `Accept: application/json`.
    #[cfg(feature = "discovery")]
    pub(crate) async fn get(&self, url: Url, limit: usize) -> Result<Fetched, FetchError> {
        let response = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        Fetched::read(response, limit).await
    }

    /// `POST url` with a form body and the given extra headers.
    #[cfg(feature = "introspection")]
    pub(crate) async fn post_form(
        &self,
        url: Url,
        headers: http::HeaderMap,
        body: String,
        limit: usize,
    ) -> Result<Fetched, FetchError> {
        let response = self
            .client
            .post(url)
            .headers(headers)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        Fetched::read(response, limit).await
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_redirect() {
        FetchError::Redirect
    } else {
        FetchError::Transport
    }
}

/// A response read in full, within the limit.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    #[cfg_attr(
        not(feature = "discovery"),
        allow(dead_code, reason = "read by discovery")
    )]
    pub(crate) cache_control: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl Fetched {
    async fn read(mut response: Response, limit: usize) -> Result<Self, FetchError> {
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let status = response.status();
        let cache_control = response
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Self {
            status,
            cache_control,
            body,
        })
    }
}

/// The `max-age` of a `Cache-Control` value in seconds; `Some(0)` for `no-cache`/`no-store`;
/// `None` when absent or unreadable (RFC 9111 §5.2.2).
#[cfg(feature = "discovery")]
pub(crate) fn max_age(cache_control: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = directive
            .split_once('=')
            .map_or((directive, None), |(n, v)| (n.trim(), Some(v.trim())));
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            let value = value?.trim_matches('"');
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Saturate absurd values: the caller clamps anyway.
            max_age = Some(value.parse::<u64>().unwrap_or(u64::MAX));
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_show_no_password_or_query() {
        assert_eq!(
            redacted("https://user:hunter2@as.example:8443/introspect?api_key=abc#frag"),
            "https://as.example:8443/introspect?…"
        );
        assert_eq!(redacted("redis://:pw@127.0.0.1/0"), "redis://127.0.0.1/0");
        assert_eq!(redacted("https://as.example/i"), "https://as.example/i");
        assert_eq!(redacted("not a url?secret"), "not a url?…");
    }

    #[test]
    fn urls_must_be_https_without_credentials_or_fragment() {
        assert!(check_url("https://as.example/tenant", false, false).is_ok());
        assert_eq!(
            check_url("http://as.example", false, false),
            Err("not https")
        );
        assert_eq!(
            check_url("http://127.0.0.1:8080", false, false),
            Err("not https")
        );
        assert!(check_url("http://127.0.0.1:8080/x", true, false).is_ok());
        assert!(check_url("http://[::1]:8080/x", true, false).is_ok());
        assert!(check_url("http://localhost:8080/x", true, false).is_ok());
        assert_eq!(
            check_url("http://as.example/x", true, false),
            Err("plain http is allowed only on loopback")
        );
        assert_eq!(
            check_url("https://u:p@as.example", false, false),
            Err("credentials in the URL")
        );
        assert_eq!(
            check_url("https://as.example/#f", false, false),
            Err("has a fragment")
        );
        assert_eq!(
            check_url("https://as.example/?q", false, false),
            Err("has a query")
        );
        assert!(check_url("https://as.example/jwks?v=2", false, true).is_ok());
        assert_eq!(check_url("/jwks", false, true), Err("not an absolute URL"));
        assert_eq!(
            check_url("file:///etc/passwd", true, true),
            Err("not https")
        );
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let a = Url::parse("https://as.example/a").expect("url");
        assert!(same_origin(
            &a,
            &Url::parse("https://as.example:443/b").expect("url")
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("http://as.example/b").expect("url")
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://as.example:8443/b").expect("url")
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://evil.example/a").expect("url")
        ));
    }

    #[cfg(feature = "discovery")]
    #[test]
    fn reads_max_age() {
        assert_eq!(max_age("max-age=300"), Some(300));
        assert_eq!(max_age("public, MAX-AGE = 60 , must-revalidate"), Some(60));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("max-age=300, no-cache"), Some(0));
        assert_eq!(max_age("max-age=-1"), None);
        assert_eq!(max_age("max-age="), None);
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=99999999999999999999999"), Some(u64::MAX));
    }
}
