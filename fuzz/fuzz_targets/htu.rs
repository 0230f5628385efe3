//! The `htu` normaliser (`dpop::htu::normalize`, RFC 3986 §6.2.2-6.2.3) and the request-path
//! check (`is_normal_path`). Oracles: normalising is idempotent, drops query and fragment, and
//! leaves a path that `is_normal_path` accepts; and a path `is_normal_path` accepts always
//! normalises after an origin (the verifier's exact-match fast path relies on it); and that
//! fast path (`htu::names_exactly`) accepts a proof's `htu` for an origin and a path only when
//! the full comparison, both sides normalised, does.

#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use tower_pop::__fuzzing::fast_paths::{htu_fast, htu_full};
use tower_pop::__fuzzing::{htu_is_normal_path, htu_normalize};

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    // The input as a proof's `htu`, against the configured origin and every request path it
    // ends with.
    for origin in [
        "https://api.example",
        "https://api.example:8443",
        "http://127.0.0.1",
    ] {
        for (at, _) in uri.match_indices('/') {
            let path = &uri[at..];
            if htu_fast(uri, origin, path) {
                assert!(
                    htu_full(uri, origin, path),
                    "the fast path accepts only what the full check does"
                );
            }
        }
    }
    if uri.starts_with('/') && uri.len() < 4000 && htu_is_normal_path(uri) {
        assert!(
            htu_normalize(&format!("https://api.example{uri}")).is_some(),
            "a normal path normalises"
        );
    }
    let Some(normal) = htu_normalize(uri) else {
        return;
    };
    assert_eq!(
        htu_normalize(&normal).as_deref(),
        Some(normal.as_str()),
        "normalize is idempotent"
    );
    assert!(!normal.contains(['?', '#']));
    let rest = normal
        .strip_prefix("https://")
        .or_else(|| normal.strip_prefix("http://"))
        .expect("http or https");
    let path = &rest[rest.find('/').expect("a path")..];
    assert!(htu_is_normal_path(path), "normal form has a normal path");
});
