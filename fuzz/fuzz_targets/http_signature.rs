//! RFC 9421 / RFC 9530 on arbitrary fields (`tower_pop::httpsig`, feature `httpsig`): the
//! `Signature-Input`/`Signature` reader, the signature base of every signature, and the
//! `Content-Digest` check. Oracles (in `__fuzzing::httpsig`): no panic; a base is ASCII and
//! ends with the `@signature-params` line, whose serialization reads back to the same
//! parameters; a digest we compute is always accepted.
//!
//! Input: lines `name: value`; a line `?query` sets the query; the bytes after a blank line
//! are the body.

#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use tower_pop::__fuzzing::httpsig::{bases, digest};

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut headers = http::HeaderMap::new();
    let mut query = None;
    for line in head.split(|b| *b == b'\n') {
        if let Some(q) = line.strip_prefix(b"?") {
            query = std::str::from_utf8(q).ok();
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&line[..colon]),
            http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let _ = bases(&headers, "/pay", query);
    let _ = digest(&headers, body);
});
