//! Property tests (proptest): `htu` normalisation is idempotent (RFC 3986 §6, HTU-*), and a
//! JWK's RFC 7638 thumbprint survives reordering, unknown members, JSON escapes and a re-parse
//! (JKT-01, RFC 7638 §3.2-3.3). Cases default to a few dozen so `cargo test` stays fast;
//! `PROPTEST_CASES=10000 cargo test -p tower-pop --test main properties` digs deeper.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};
use tower_pop::__fuzzing::htu_normalize;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::thumbprint::{jwk_thumbprint, x5t_s256};

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn joined(pieces: &'static [&'static str], len: std::ops::Range<usize>) -> BoxedStrategy<String> {
    prop::collection::vec(select(pieces), len)
        .prop_map(|p| p.concat())
        .boxed()
}

/// URL-shaped strings built from the pieces normalisation treats specially, plus arbitrary
/// text after an origin, plus hosts near the length bound.
fn uri() -> BoxedStrategy<String> {
    let shaped = (
        select(&["https", "http", "HTTPS", "hTTp", "ftp", ""][..]),
        select(&["://", "://", ":/", "//"][..]),
        select(&["", "", "u@", "u:p@"][..]),
        joined(
            &[
                "a",
                "B",
                "x-y",
                "127.0.0.1",
                "[::1]",
                "[fe80::1]",
                "[zz]",
                "example",
                ".",
                "~",
                "%41",
                " ",
                "_",
            ],
            1..4,
        ),
        select(
            &[
                "", "", ":", ":443", ":80", ":8443", ":0443", ":00080", ":99999", ":8a",
            ][..],
        ),
        joined(
            &[
                "/", "/", "a", "A", ".", "..", "%2e", "%2E%2E", "%41", "%7e", "%7E", "%2f", "%2F",
                "%zz", "%4", "%25", "%2541", "~", "-", "_", " ", "\u{e9}", "//", ";", "=", "@",
                ":", "\\",
            ],
            0..12,
        ),
        select(&["", "", "?q=1", "#f", "?a#b", "?/../x", "#?"][..]),
    )
        .prop_map(|(s, sep, user, host, port, path, tail)| {
            format!("{s}{sep}{user}{host}{port}{path}{tail}")
        });
    let arbitrary = any::<String>().prop_map(|s| format!("https://h.example/{s}"));
    // Just under, at and over the 4096-byte bound, with and without a path.
    let long = (4088usize..4100, any::<bool>()).prop_map(|(len, slash)| {
        let host = "a".repeat(len - "https://".len());
        format!("https://{host}{}", if slash { "/" } else { "" })
    });
    prop_oneof![6 => shaped, 3 => arbitrary, 1 => long].boxed()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn htu_normalisation_is_idempotent(uri in uri()) {
        if let Some(once) = htu_normalize(&uri) {
            prop_assert_eq!(htu_normalize(&once), Some(once), "from {:?}", uri);
        }
    }
}

/// Keys of every type the proof checks accept, generated once (RSA generation is slow).
static KEYS: LazyLock<Vec<ProofSigner>> = LazyLock::new(|| {
    [
        Algorithm::ES256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::Ed25519,
        Algorithm::PS256,
    ]
    .into_iter()
    .map(|alg| ProofSigner::generate(alg).unwrap())
    .collect()
});

/// The RFC 7638 §3.2 required members of each key type.
fn required(kty: &str) -> &'static [&'static str] {
    match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        _ => &["crv", "kty", "x"],
    }
}

/// Names that are neither required nor private members (`d`, `p`, `q`, `dp`, `dq`, `qi`,
/// `oth`, `k` would make the key refused), so adding them must not change the thumbprint.
const UNKNOWN_NAMES: &[&str] = &[
    "kid", "alg", "use", "key_ops", "x5t", "x5t#S256", "ext", "zz", "K", "D", "\u{e9}", "crv2",
    "n ",
];

fn unknown_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        select(&["", "a", "sig", "\u{e9}t\u{e9}"][..]).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!({"nested": [1, "two", {"three": null}]})),
        Just(json!(["sig", "enc"])),
    ]
}

/// JSON string literal of `s`, with the character at `escape` (if any) written as `\uXXXX`.
fn literal(s: &str, escape: Option<usize>) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if Some(i) == escape && (c as u32) < 0x10000 {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            let quoted = serde_json::to_string(&c.to_string()).unwrap();
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn jwk_thumbprint_ignores_order_unknown_members_and_escapes(
        key in 0..KEYS.len(),
        unknown in prop::collection::btree_map(select(UNKNOWN_NAMES), unknown_value(), 0..6),
        order in any::<prop::sample::Index>(),
        shuffle in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
        escape in prop::option::of(0usize..4),
        space in select(&["", " ", "\n\t"][..]),
    ) {
        let signer = &KEYS[key];
        let public: BTreeMap<String, Value> = serde_json::from_str(&signer.public_jwk()).unwrap();
        let kty = public["kty"].as_str().unwrap().to_owned();

        // RFC 7638 §3.3, computed here independently: required members, sorted, no spaces.
        let canonical: BTreeMap<&str, &Value> =
            required(&kty).iter().map(|m| (*m, &public[*m])).collect();
        let expected = x5t_s256(serde_json::to_string(&canonical).unwrap().as_bytes());
        prop_assert_eq!(signer.thumbprint(), expected.as_str());

        // Every member (required and unknown) in a shuffled order, one value escaped.
        let mut members: Vec<(String, Value)> = public.into_iter().collect();
        members.extend(unknown.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let n = members.len();
        members.rotate_left(order.index(n));
        for (i, swap) in shuffle.iter().enumerate() {
            members.swap(i % n, swap.index(n));
        }
        let body: Vec<String> = members
            .iter()
            .enumerate()
            .map(|(i, (name, value))| {
                let value = match value {
                    Value::String(s) if escape == Some(i % 4) => literal(s, Some(0)),
                    other => other.to_string(),
                };
                format!("{}{space}:{space}{value}", literal(name, escape.filter(|_| i == 0)))
            })
            .collect();
        let text = format!("{{{space}{}{space}}}", body.join(&format!(",{space}")));

        let thumbprint = jwk_thumbprint(&text);
        prop_assert_eq!(thumbprint.as_deref(), Some(expected.as_str()), "{}", text);

        // Parsed and serialised again (members sorted, escapes gone): the same thumbprint.
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(jwk_thumbprint(&reparsed.to_string()), Some(expected));
    }
}
