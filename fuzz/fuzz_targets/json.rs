//! The strict JSON parser of JOSE headers and payloads (`jose::parse_json_object`: UTF-8,
//! bounded depth and width, duplicate member names refused). Oracle: whatever it accepts, it
//! accepts again once serialised, with the same structure, strings and integers. Floats may move
//! by an ulp: serde_json's default float parser is not correctly rounded for long mantissas
//! (its `float_roundtrip` feature is), which no JOSE member depends on (NumericDates are
//! range-checked integers of seconds). Second oracle: the map-free member reader of DPoP proofs
//! (`jose::parse_json_members`, and so its serde-free fast path) accepts exactly what the full
//! parser accepts, and reads the same values.

#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_pop::__fuzzing::{json_members, json_object};

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().expect("finite"), y.as_f64().expect("finite"));
            x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, x), (ky, y))| kx == ky && same(x, y))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let names = ["a", "alg", "jti"];
    let members = json_members(data, &names);
    let full = json_object(data);
    assert_eq!(
        members.is_some(),
        full.is_some(),
        "both readers accept the same input"
    );
    if let (Some(members), Some(full)) = (&members, &full) {
        let Value::Object(map) = serde_json::from_str::<Value>(full).expect("valid JSON") else {
            panic!("an object")
        };
        for (name, member) in names.iter().zip(members) {
            match (member, map.get(*name)) {
                (None, None) => {}
                (Some(member), Some(expected)) => assert!(same(member, expected), "member {name}"),
                _ => panic!("member {name} read by one reader only"),
            }
        }
    }
    if let Some(serialised) = full {
        let again = json_object(serialised.as_bytes()).expect("the parser accepts its own output");
        let parse = |s: &str| serde_json::from_str::<Value>(s).expect("valid JSON");
        assert!(same(&parse(&serialised), &parse(&again)), "round trip");
    }
});
