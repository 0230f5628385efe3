//! The gateway's request-field rules (`tower_pop_gateway::fields::FieldRules`): which of a
//! client's fields reach the upstream, and the forwarding fields added. Input: one byte of flags
//! (bit 0: the peer is a trusted proxy; bit 1: `Authorization` is forwarded), then field lines
//! `name: value` separated by `\n` (lines that are not a valid field are skipped). Oracles: no
//! field the rules refuse reaches the upstream (the built-in override list, an operator's
//! `--strip-header`, `X-Pop-*`, names with `_`, hop-by-hop fields and those `Connection` names);
//! every other field arrives with all its values, in order; from an untrusted peer the
//! forwarding fields are exactly the gateway's own.

#![no_main]
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_pop_gateway::fields::{FORWARDING, FieldRules, Hop, OVERRIDES};

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
const STRIPPED: &str = "x-fuzz-strip";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (trusted, forward_authorization) = (flags & 1 == 1, flags & 2 == 2);
    let mut incoming = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            incoming.append(name, value);
        }
    }
    let rules = FieldRules::new(forward_authorization)
        .strip(&[STRIPPED.to_owned()])
        .expect("a valid name");
    let hop = Hop {
        peer: PEER,
        peer_trusted: trusted,
        proto: "https",
        host: incoming.get("host").and_then(|h| h.to_str().ok()),
    };
    let out = rules.upstream_request_headers(&incoming, &hop);

    let named_by_connection: Vec<String> = incoming
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let gateway_owned = |n: &str| FORWARDING.contains(&n) || n == "te";
    for name in out.keys() {
        let n = name.as_str();
        if gateway_owned(n) {
            continue;
        }
        assert!(rules.passes(name), "{n} reached the upstream");
        assert!(!OVERRIDES.contains(&n) && n != STRIPPED, "{n}");
        assert!(!n.starts_with("x-pop-") && !n.contains('_'), "{n}");
        assert!(
            !named_by_connection.iter().any(|c| c == n),
            "{n} is hop-by-hop here"
        );
    }
    if let Some(te) = out.get("te") {
        assert_eq!(te, "trailers");
    }
    // Nothing valid is lost: every other field arrives whole, in order.
    for name in incoming.keys() {
        let n = name.as_str();
        if gateway_owned(n) || !rules.passes(name) || named_by_connection.iter().any(|c| c == n) {
            continue;
        }
        let sent: Vec<&HeaderValue> = incoming.get_all(name).iter().collect();
        let got: Vec<&HeaderValue> = out.get_all(name).iter().collect();
        assert_eq!(sent, got, "{n}");
    }
    // The forwarding fields: from an untrusted peer, only this hop.
    let xff: Vec<&HeaderValue> = out.get_all("x-forwarded-for").iter().collect();
    assert_eq!(xff.len(), 1);
    let xff = xff[0].to_str().expect("text");
    if trusted {
        assert!(xff == "192.0.2.7" || xff.ends_with(", 192.0.2.7"), "{xff}");
    } else {
        assert_eq!(xff, "192.0.2.7");
        let forwarded = out.get("forwarded").expect("set").to_str().expect("text");
        assert!(
            forwarded.starts_with("for=192.0.2.7") && !forwarded.contains(", for="),
            "{forwarded}"
        );
        assert_eq!(out.get_all("forwarded").iter().count(), 1);
    }
});
