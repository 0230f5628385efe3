//! A `DPoP` header value through `dpop::proof::Proof::parse` (RFC 9449 §4.3 checks 2-7) and
//! every request-bound check (8-12, nonce), and through the public
//! `dpop::verify_token_request_proof`. Oracle: the two agree on the key thumbprint and only a
//! proof whose signature verifies passes the latter.

#![no_main]
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower_pop::Algorithm;
use tower_pop::dpop::verify_token_request_proof;
use tower_pop::nonce::Nonces;
use tower_pop::thumbprint::ath;

/// RFC 9449 Figure 13's time, so the RFC proofs in the corpus pass the `iat` check.
const RFC_NOW: u64 = 1_562_262_618;

fuzz_target!(|data: &[u8]| {
    static NONCES: OnceLock<Nonces> = OnceLock::new();
    let nonces = NONCES.get_or_init(tower_pop_fuzz::nonces);
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = tower_pop::__fuzzing::proof(
        value,
        "GET",
        "https://resource.example.org/protectedresource",
        RFC_NOW,
        &ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        Some(nonces),
    );
    if let Some((_, jkt)) = &parsed {
        assert_eq!(jkt.len(), 43);
    }
    let token_endpoint = verify_token_request_proof(
        value,
        "POST",
        "https://server.example.com/token",
        RFC_NOW,
        &Algorithm::ALL,
    );
    if let Ok(jkt) = token_endpoint {
        let (signed, parsed_jkt) = parsed.expect("a verified proof parses");
        assert!(signed, "a verified proof has a valid signature");
        assert_eq!(jkt, parsed_jkt);
    }
});
