//! The original request of a forward-auth sub-request
//! (`tower_pop_gateway::forward_auth::original_request`) for each proxy. Input: one byte
//! choosing the proxy, then lines: the sub-request's method, its URI, then field lines
//! `name: value`. Oracles: the URI read is origin-form; each proxy reads only its own fields
//! (removing the others' changes nothing, and behind nginx or Traefik the sub-request's own
//! method and URI change nothing); behind Envoy the answer is the sub-request itself; a
//! Traefik or Envoy answer names the public origin.

#![no_main]
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use libfuzzer_sys::fuzz_target;
use tower_pop_gateway::forward_auth::{ProxyKind, PublicOrigin, original_request};

const KINDS: [ProxyKind; 3] = [ProxyKind::Nginx, ProxyKind::Traefik, ProxyKind::Envoy];
/// Each proxy's own fields.
const NGINX: [&str; 2] = ["x-original-method", "x-original-uri"];
const TRAEFIK: [&str; 4] = [
    "x-forwarded-method",
    "x-forwarded-uri",
    "x-forwarded-host",
    "x-forwarded-proto",
];

fn public() -> &'static PublicOrigin {
    static PUBLIC: OnceLock<PublicOrigin> = OnceLock::new();
    PUBLIC.get_or_init(|| PublicOrigin::new("https://api.example.com").expect("an origin"))
}

fn without(headers: &HeaderMap, names: &[&str]) -> HeaderMap {
    let mut out = headers.clone();
    for name in names {
        out.remove(*name);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    let mut lines = rest.split(|b| *b == b'\n');
    let (Some(method), Some(uri)) = (lines.next(), lines.next()) else {
        return;
    };
    let (Ok(method), Ok(uri)) = (Method::from_bytes(method), Uri::try_from(uri)) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    let read = |m: &Method, u: &Uri, h: &HeaderMap| original_request(kind, m, u, h, public());
    let answer = read(&method, &uri, &headers);
    if let Ok((_, original)) = &answer {
        let target = original.path_and_query().expect("a path").as_str();
        assert!(
            target.starts_with('/') && !target.starts_with("//"),
            "{target}"
        );
        assert!(original.scheme().is_none() && original.authority().is_none());
    }
    let other_method = Method::from_bytes(b"FUZZ").expect("a token");
    let other_uri = Uri::from_static("/fuzz/other");
    match kind {
        ProxyKind::Nginx => {
            assert_eq!(answer, read(&method, &uri, &without(&headers, &TRAEFIK)));
            assert_eq!(answer, read(&other_method, &other_uri, &headers));
        }
        ProxyKind::Traefik => {
            assert_eq!(answer, read(&method, &uri, &without(&headers, &NGINX)));
            assert_eq!(answer, read(&other_method, &other_uri, &headers));
            if answer.is_ok() {
                let host = headers
                    .get("x-forwarded-host")
                    .expect("read")
                    .to_str()
                    .expect("text");
                assert!(public().matches(Some("https"), host), "{host}");
            }
        }
        ProxyKind::Envoy => {
            let all: Vec<&str> = NGINX.iter().chain(&TRAEFIK).copied().collect();
            assert_eq!(answer, read(&method, &uri, &without(&headers, &all)));
            if let Ok((m, u)) = &answer {
                assert_eq!(m, &method);
                assert_eq!(u.path_and_query(), uri.path_and_query());
            }
        }
    }
});
