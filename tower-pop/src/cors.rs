//! What a CORS layer must allow for a browser app on another origin to use DPoP, shared by the
//! adapters' presets (`axum_pop::cors`, `actix_pop::cors`) so neither spells the names itself.
//!
//! DPoP was designed first of all for single-page apps (RFC 9449 §1): the app keeps a
//! non-extractable WebCrypto key and signs a proof per request. When the app's origin is not the
//! API's, the browser applies the Fetch standard's CORS protocol:
//!
//! - `Authorization` and `DPoP` are not CORS-safelisted request headers, so every call is
//!   preceded by a preflight (`OPTIONS` with `Access-Control-Request-Headers`). The preflight
//!   carries no credentials: it must be answered by the CORS layer, never reach the verifier
//!   (which would refuse it with 401, and the browser would then refuse the call).
//! - Only CORS-safelisted response headers are readable by the page unless listed in
//!   `Access-Control-Expose-Headers`. The app needs `DPoP-Nonce` to answer `use_dpop_nonce`
//!   (RFC 9449 §8, §9) and `WWW-Authenticate` to learn why it was refused (RFC 9449 §7.1,
//!   RFC 6750 §3). So the CORS layer must wrap the authentication layer: refusals must carry
//!   the CORS headers too.
//! - A DPoP app sends its token in a header, not in a cookie: no `credentials: "include"` is
//!   needed, so the presets do not allow credentials, and the allowed origins are an exact list
//!   (never `*`), checked by [`allowed_origins`].
//!
//! ```
//! use tower_pop::cors::{EXPOSE_HEADERS, REQUEST_HEADERS, allowed_origins};
//!
//! assert!(REQUEST_HEADERS.contains(&"dpop"));
//! assert!(EXPOSE_HEADERS.contains(&"dpop-nonce"));
//! assert_eq!(allowed_origins(["https://app.example.com"]).unwrap(), ["https://app.example.com"]);
//! // A path, a wildcard or a default port would never equal the browser's `Origin` header.
//! assert!(allowed_origins(["https://app.example.com/"]).is_err());
//! assert!(allowed_origins(["*"]).is_err());
//! assert!(allowed_origins(["https://app.example.com:443"]).is_err());
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::error::ConfigError;

/// Request headers a DPoP app sends that are not CORS-safelisted: `Authorization` (the token,
/// RFC 9449 §7.1), `DPoP` (the proof, §4.1) and `Content-Type` (JSON bodies are not safelisted).
pub const REQUEST_HEADERS: [&str; 3] = ["authorization", "dpop", "content-type"];

/// Response headers the app must be able to read: `DPoP-Nonce` (the nonce to use, RFC 9449 §8),
/// `WWW-Authenticate` (the challenge, §7.1) and `Retry-After` (sent with a 503 when the server
/// cannot verify for now).
pub const EXPOSE_HEADERS: [&str; 3] = ["dpop-nonce", "www-authenticate", "retry-after"];

/// Methods the presets allow (`OPTIONS` is the preflight itself).
pub const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// How long a browser may cache a preflight answer: 10 minutes (Chromium caps it at 2 hours),
/// so most calls cost one request, and a changed configuration is picked up soon.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// The longest origin accepted (scheme, a DNS name of at most 253 octets, a port).
const MAX_ORIGIN_LEN: usize = 300;

/// Check `origins` and return them, duplicates dropped, in order.
///
/// Each must be exactly what a browser sends in its `Origin` header for that site (Fetch
/// standard, the ASCII serialization of an origin): `http` or `https`, `://`, a lowercase host
/// (a DNS name, an IPv4 address or a bracketed IPv6 address, as the browser writes them), and a
/// port only when it is not the scheme's default; no path (not even `/`), query, user or
/// wildcard. Anything else could never match and is a configuration mistake.
///
/// # Errors
/// [`ConfigError::InvalidCorsOrigin`] naming the first bad origin and why;
/// [`ConfigError::Missing`] when there are none.
pub fn allowed_origins<I, S>(origins: I) -> Result<Vec<String>, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut checked: Vec<String> = Vec::new();
    for origin in origins {
        let origin = origin.as_ref();
        check_origin(origin).map_err(|reason| ConfigError::InvalidCorsOrigin {
            origin: origin.chars().take(MAX_ORIGIN_LEN).collect(),
            reason,
        })?;
        if !checked.iter().any(|o| o == origin) {
            checked.push(origin.to_owned());
        }
    }
    if checked.is_empty() {
        return Err(ConfigError::Missing {
            setting: "CORS allowed origins",
        });
    }
    Ok(checked)
}

/// Why `origin` is not a serialized `http(s)` origin, if it is not.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    if origin.len() > MAX_ORIGIN_LEN {
        return Err("too long");
    }
    if origin == "*" || origin == "null" {
        return Err("only exact origins can be allowed");
    }
    let (scheme, rest) = origin.split_once("://").ok_or("not scheme://host[:port]")?;
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return Err("the scheme must be http or https, in lowercase"),
    };
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path, query or fragment (not even a trailing /)");
    }
    if rest.contains('@') {
        return Err("an origin has no user information");
    }
    let (host, port) = split_port(rest)?;
    if let Some(port) = port {
        check_port(port, default_port)?;
    }
    check_host(host)
}

/// `host[:port]` with a bracketed IPv6 host.
fn split_port(rest: &str) -> Result<(&str, Option<&str>), &'static str> {
    if rest.starts_with('[') {
        let end = rest.find(']').ok_or("unclosed IPv6 bracket")?;
        let (host, after) = rest.split_at(end + 1);
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or("junk after the IPv6 address"),
        };
    }
    Ok(match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    })
}

fn check_port(port: &str, default_port: &str) -> Result<(), &'static str> {
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let value = if digits {
        port.parse::<u16>().ok()
    } else {
        None
    };
    match value {
        Some(0) | None => Err("the port must be a number from 1 to 65535"),
        Some(_) if port.starts_with('0') => Err("the port must not have leading zeros"),
        Some(_) if port == default_port => {
            Err("browsers omit the scheme's default port: leave it out")
        }
        Some(_) => Ok(()),
    }
}

fn check_host(host: &str) -> Result<(), &'static str> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: Ipv6Addr = inner.parse().map_err(|_| "not an IPv6 address")?;
        return if ip.to_string() == inner {
            Ok(())
        } else {
            Err("write the IPv6 address as browsers do (lowercase, zeros compressed)")
        };
    }
    if host.is_empty() {
        return Err("no host");
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let ip: Ipv4Addr = host.parse().map_err(|_| "not an IPv4 address")?;
        return if ip.to_string() == host {
            Ok(())
        } else {
            Err("write the IPv4 address in dotted decimal")
        };
    }
    let labels_ok = host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
    if labels_ok {
        Ok(())
    } else {
        Err("the host must be a lowercase ASCII DNS name (punycode for international names)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_origins_as_browsers_serialize_them() {
        for origin in [
            "https://app.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://[::1]:8443",
            "https://[2001:db8::1]",
            "https://xn--bcher-kva.example",
            "https://app.example.com:8443",
        ] {
            assert_eq!(allowed_origins([origin]).unwrap(), [origin], "{origin}");
        }
    }

    #[test]
    fn rejects_what_never_equals_an_origin_header() {
        for origin in [
            "*",
            "null",
            "",
            "app.example.com",
            "https://",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x",
            "https://app.example.com#x",
            "https://user@app.example.com",
            "https://App.Example.com",
            "HTTPS://app.example.com",
            "ftp://app.example.com",
            "https://*.example.com",
            "https://app.example.com:443",
            "http://app.example.com:80",
            "https://app.example.com:0",
            "https://app.example.com:65536",
            "https://app.example.com:080",
            "https://app.example.com:",
            "https://app.example.com:x",
            "https://[::1",
            "https://[::1]x",
            "https://[0:0:0:0:0:0:0:1]",
            "https://127.1",
            "https://999.0.0.1",
            "https://a..b",
            "https://bücher.example",
            " https://app.example.com",
        ] {
            let error = allowed_origins([origin]).unwrap_err();
            assert!(
                matches!(error, ConfigError::InvalidCorsOrigin { .. }),
                "{origin}: {error}"
            );
        }
        let long = format!("https://{}.example", "a.".repeat(200));
        assert!(allowed_origins([long]).is_err());
    }

    #[test]
    fn rejects_an_empty_list_and_drops_duplicates() {
        let none: [&str; 0] = [];
        assert!(matches!(
            allowed_origins(none),
            Err(ConfigError::Missing { .. })
        ));
        let two = allowed_origins([
            "https://a.example",
            "https://b.example",
            "https://a.example",
        ]);
        assert_eq!(two.unwrap(), ["https://a.example", "https://b.example"]);
    }

    #[test]
    fn the_error_quotes_the_origin_and_the_reason() {
        let error = allowed_origins(["https://app.example.com/"]).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("\"https://app.example.com/\""), "{text}");
        assert!(text.contains("path"), "{text}");
    }
}
