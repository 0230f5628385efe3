//! The strict JSON parser of JOSE headers and payloads (`jose::parse_json_object`: UTF-8,
//! bounded depth and width, duplicate member names refused). Oracle: whatever it accepts, it
//! accepts again once serialised, unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_pop::fuzzing::json_object;

fuzz_target!(|data: &[u8]| {
    if let Some(serialised) = json_object(data) {
        let again = json_object(serialised.as_bytes());
        assert_eq!(again.as_deref(), Some(serialised.as_str()), "round trip");
    }
});
