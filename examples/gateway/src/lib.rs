//! The rules of `pop_gateway` (the example binary in `examples/pop_gateway.rs`), apart from its
//! I/O so that each has unit tests and a fuzz target:
//!
//! - [`fields`]: which request fields reach the upstream: not the hop-by-hop fields (RFC 9110
//!   §7.6.1), the proof, the certificate fields, a forged identity, nor any field an upstream
//!   framework may read to override the routed path, the method or the client address; and
//!   `Forwarded` (RFC 7239) and `X-Forwarded-For` appended.
//! - [`identity`]: the `X-Pop-*` fields the upstream is told the verified identity in.
//! - [`forward_auth`]: the original request a forward-auth sub-request names, read only from the
//!   fields of the proxy in front (nginx, Traefik or Envoy).
//! - [`paths`]: which paths pass without a token.

pub mod fields;
pub mod forward_auth;
pub mod identity;
pub mod paths;

/// Field sections for the unit tests: `(name, value)` pairs in order, repeats kept.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (n, v) in pairs {
        map.append(
            http::HeaderName::from_bytes(n.as_bytes()).expect("a name"),
            http::HeaderValue::from_str(v).expect("a value"),
        );
    }
    map
}
