//! What the client reads and writes on the wire, shared by the tower layer and the reqwest
//! middleware: the proof's `htu` and the nonce map's origin key from a request URL, the access
//! token of an `Authorization: DPoP` header, and whether a response asks for a nonce.

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, StatusCode};

/// The `DPoP` request header (RFC 9449 §4.1).
pub(crate) static DPOP: HeaderName = HeaderName::from_static("dpop");
/// The `DPoP-Nonce` response header (RFC 9449 §8).
pub(crate) static DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Largest response body read to look for a token endpoint's `{"error":"use_dpop_nonce"}`; an
/// OAuth error response is a few hundred bytes.
pub(crate) const MAX_ERROR_BODY: u64 = 16 * 1024;

/// Where a request goes: the proof's `htu` and the origin its nonce is remembered under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Scheme, host, explicit port and path: no userinfo, query or fragment (RFC 9449 §4.2).
    pub(crate) htu: String,
    /// `scheme://host:port`, lowercase, with the scheme's default port made explicit.
    pub(crate) origin: String,
}

impl Target {
    /// From an absolute URL's parts; `None` without a scheme or host.
    pub(crate) fn new(scheme: &str, host: &str, port: Option<u16>, path: &str) -> Option<Self> {
        if scheme.is_empty() || host.is_empty() {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let path = if path.is_empty() { "/" } else { path };
        let htu = match port {
            Some(port) => format!("{scheme}://{host}:{port}{path}"),
            None => format!("{scheme}://{host}{path}"),
        };
        let effective = port.or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        let origin = match effective {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        Some(Self { htu, origin })
    }

    /// From an `http::Uri`; `None` unless it is absolute (scheme and authority).
    pub(crate) fn from_uri(uri: &http::Uri) -> Option<Self> {
        let authority = uri.authority()?;
        Self::new(
            uri.scheme_str()?,
            authority.host(),
            authority.port_u16(),
            uri.path(),
        )
    }

    /// From a reqwest URL (`url::Url`): its `port()` is `None` for the scheme's default.
    pub(crate) fn from_url(url: &reqwest::Url) -> Option<Self> {
        Self::new(url.scheme(), url.host_str()?, url.port(), url.path())
    }
}

/// The access token of the first `Authorization: DPoP <token>` field, the one `ath` hashes
/// (RFC 9449 §4.2, §7.1). A `Bearer` or `Basic` field gives `None`: no `ath` then.
pub(crate) fn dpop_token(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(AUTHORIZATION).iter().find_map(|value| {
        let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("DPoP") && !token.is_empty()).then_some(token)
    })
}

/// A server nonce is `1*NQCHAR` (RFC 9449 §8.1); a longer one than this is ignored.
const MAX_NONCE_LEN: usize = 4096;

/// The response's `DPoP-Nonce`, if it is one well-formed value.
pub(crate) fn response_nonce(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(&DPOP_NONCE).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let nonce = value.to_str().ok()?;
    let nqchar = |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
    (!nonce.is_empty() && nonce.len() <= MAX_NONCE_LEN && nonce.bytes().all(nqchar))
        .then_some(nonce)
}

/// What a response says about nonces, from its head alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceAsk {
    /// Nothing to retry.
    No,
    /// A resource server's 401 `WWW-Authenticate: DPoP error="use_dpop_nonce"` with a
    /// `DPoP-Nonce` (RFC 9449 §9).
    Yes,
    /// A 400 with a `DPoP-Nonce` and a body not known to be large: a token endpoint's answer,
    /// whose JSON says whether the error is `use_dpop_nonce` (RFC 9449 §8). Read it up to
    /// [`MAX_ERROR_BODY`] bytes: only a body that ends by then is looked at.
    ReadBody,
}

/// Classify a response head. `body_len` is the body's known length, if any: a 400 known to be
/// longer than [`MAX_ERROR_BODY`] is not read.
pub(crate) fn nonce_ask(
    status: StatusCode,
    headers: &HeaderMap,
    body_len: Option<u64>,
) -> NonceAsk {
    if response_nonce(headers).is_none() {
        return NonceAsk::No;
    }
    let asks = || {
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(asks_dpop_nonce)
    };
    // A gRPC refusal is trailers-only: HTTP 200 with `grpc-status` 16 (UNAUTHENTICATED) and
    // the challenge as metadata in the same headers.
    let grpc_unauthenticated =
        status == StatusCode::OK && headers.get("grpc-status").is_some_and(|code| code == "16");
    match status {
        StatusCode::UNAUTHORIZED if asks() => NonceAsk::Yes,
        StatusCode::OK if grpc_unauthenticated && asks() => NonceAsk::Yes,
        StatusCode::BAD_REQUEST if body_len.is_none_or(|n| n <= MAX_ERROR_BODY) => {
            NonceAsk::ReadBody
        }
        _ => NonceAsk::No,
    }
}

/// Whether a token endpoint's error body is `{"error":"use_dpop_nonce", ...}` (RFC 9449 §8).
pub(crate) fn body_asks_nonce(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(|e| e == "use_dpop_nonce"))
        .unwrap_or(false)
}

/// Whether one `WWW-Authenticate` value holds a `DPoP` challenge with
/// `error="use_dpop_nonce"`. The value is a list of challenges (RFC 9110 §11.6.1): an item
/// `scheme [param]` starts a challenge, an item `name=value` continues it.
pub(crate) fn asks_dpop_nonce(value: &str) -> bool {
    let mut in_dpop = false;
    for item in split_outside_quotes(value) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let param = match param_of(item) {
            Some(param) => Some(param),
            None => {
                // A new challenge: its scheme, then maybe its first parameter.
                let (scheme, rest) = item.split_once([' ', '\t']).unwrap_or((item, ""));
                in_dpop = scheme.eq_ignore_ascii_case("DPoP");
                param_of(rest.trim())
            }
        };
        if let Some((name, value)) = param
            && in_dpop
            && name.eq_ignore_ascii_case("error")
            && value == "use_dpop_nonce"
        {
            return true;
        }
    }
    false
}

/// `name = value` (a token, `BWS`, `=`, a token or quoted string), unquoted.
fn param_of(item: &str) -> Option<(&str, String)> {
    let (name, value) = item.split_once('=')?;
    let name = name.trim_end();
    if name.is_empty() || name.contains([' ', '\t', '"']) {
        return None;
    }
    let value = value.trim_start();
    let value = match value.strip_prefix('"') {
        Some(quoted) => {
            let mut out = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '"' => break,
                    c => out.push(c),
                }
            }
            out
        }
        None => value.trim_end().to_owned(),
    };
    Some((name, value))
}

/// Split at commas that are not inside a quoted string.
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn target(url: &str) -> Target {
        Target::from_uri(&url.parse().unwrap()).unwrap()
    }

    #[test]
    fn htu_drops_query_fragment_and_userinfo() {
        let t = target("https://user:pw@API.Example.com/a/b?x=1&token=secret");
        assert_eq!(t.htu, "https://api.example.com/a/b");
        assert_eq!(t.origin, "https://api.example.com:443");
        let t = target("http://127.0.0.1:8080?q");
        assert_eq!(t.htu, "http://127.0.0.1:8080/");
        assert_eq!(t.origin, "http://127.0.0.1:8080");
        let url = reqwest::Url::parse("https://u:p@[::1]:8443/x/y?q=1#frag").unwrap();
        let t = Target::from_url(&url).unwrap();
        assert_eq!(t.htu, "https://[::1]:8443/x/y");
        assert_eq!(t.origin, "https://[::1]:8443");
        // reqwest's URL drops a default port; the origin key is the same either way.
        let url = reqwest::Url::parse("https://api.example.com:443/p#f").unwrap();
        let from_url = Target::from_url(&url).unwrap();
        assert_eq!(from_url.htu, "https://api.example.com/p");
        assert_eq!(
            from_url.origin,
            target("https://api.example.com:443/p").origin
        );
    }

    #[test]
    fn relative_uri_has_no_target() {
        assert!(Target::from_uri(&"/whoami".parse().unwrap()).is_none());
    }

    #[test]
    fn dpop_token_reads_only_the_dpop_scheme() {
        let mut h = HeaderMap::new();
        h.append(
            AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        assert_eq!(dpop_token(&h), None);
        h.append(AUTHORIZATION, HeaderValue::from_static("dpop  the.token "));
        assert_eq!(dpop_token(&h), Some("the.token"));
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer the.token"));
        assert_eq!(dpop_token(&h), None);
    }

    #[test]
    fn finds_use_dpop_nonce_in_the_dpop_challenge_only() {
        assert!(asks_dpop_nonce(
            r#"Bearer, DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256""#
        ));
        assert!(asks_dpop_nonce(
            r#"DPoP algs="ES256, PS256", error=use_dpop_nonce"#
        ));
        assert!(asks_dpop_nonce(r#"dpop error = "use_dpop_nonce""#));
        // In another scheme's challenge, inside a quoted string, or another error: no.
        assert!(!asks_dpop_nonce(
            r#"Bearer error="use_dpop_nonce", DPoP algs="ES256""#
        ));
        assert!(!asks_dpop_nonce(
            r#"DPoP error_description="not error=\"use_dpop_nonce\", really""#
        ));
        assert!(!asks_dpop_nonce(r#"DPoP error="invalid_dpop_proof""#));
        assert!(!asks_dpop_nonce(""));
    }

    #[test]
    fn nonce_ask_needs_a_nonce_and_the_right_status() {
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"DPoP error="use_dpop_nonce""#),
        );
        assert_eq!(nonce_ask(StatusCode::UNAUTHORIZED, &h, None), NonceAsk::No);
        h.insert(
            &DPOP_NONCE,
            HeaderValue::from_static("eyJ7S_zG.eyJH0-Z.HX4w-7v"),
        );
        assert_eq!(nonce_ask(StatusCode::UNAUTHORIZED, &h, None), NonceAsk::Yes);
        assert_eq!(nonce_ask(StatusCode::OK, &h, None), NonceAsk::No);
        // A gRPC UNAUTHENTICATED answer (trailers-only, HTTP 200) asks too; another status not.
        h.insert("grpc-status", HeaderValue::from_static("16"));
        assert_eq!(nonce_ask(StatusCode::OK, &h, None), NonceAsk::Yes);
        h.insert("grpc-status", HeaderValue::from_static("7"));
        assert_eq!(nonce_ask(StatusCode::OK, &h, None), NonceAsk::No);
        h.remove("grpc-status");
        assert_eq!(
            nonce_ask(StatusCode::BAD_REQUEST, &h, Some(40)),
            NonceAsk::ReadBody
        );
        // A chunked 400 is read (up to the bound), one known to be large is not.
        assert_eq!(
            nonce_ask(StatusCode::BAD_REQUEST, &h, None),
            NonceAsk::ReadBody
        );
        assert_eq!(
            nonce_ask(StatusCode::BAD_REQUEST, &h, Some(MAX_ERROR_BODY + 1)),
            NonceAsk::No
        );
        assert!(body_asks_nonce(
            br#"{"error":"use_dpop_nonce","error_description":"x"}"#
        ));
        assert!(!body_asks_nonce(br#"{"error":"invalid_grant"}"#));
        assert!(!body_asks_nonce(b"use_dpop_nonce"));
    }

    #[test]
    fn malformed_nonces_are_ignored() {
        let mut h = HeaderMap::new();
        h.insert(&DPOP_NONCE, HeaderValue::from_static("has space"));
        assert_eq!(response_nonce(&h), None);
        h.insert(&DPOP_NONCE, HeaderValue::from_static("quote\"d"));
        assert_eq!(response_nonce(&h), None);
        h.insert(&DPOP_NONCE, HeaderValue::from_static("ok-nonce"));
        assert_eq!(response_nonce(&h), Some("ok-nonce"));
        h.append(&DPOP_NONCE, HeaderValue::from_static("second"));
        assert_eq!(response_nonce(&h), None);
    }
}
