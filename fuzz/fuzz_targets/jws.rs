//! Compact JWS splitting and decoding (`jose::CompactJws::split` and decoding), shared by DPoP proofs and
//! JWT access tokens: exactly three strict base64url parts, the first two JSON objects.

#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use tower_pop::__fuzzing::compact_jws;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((signing_input, signature)) = compact_jws(input) {
        assert_eq!(input.matches('.').count(), 2, "three parts");
        assert_eq!(input.as_bytes()[signing_input], b'.');
        assert_eq!(input[..signing_input].matches('.').count(), 1);
        assert!(signature > 0);
        assert!(
            input
                .bytes()
                .all(|b| b == b'.' || b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
});
