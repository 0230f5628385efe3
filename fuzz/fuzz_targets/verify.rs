//! The whole `Verifier::verify` on arbitrary header bytes: credentials, proof, nonce, access
//! token (RFC 9068 JWT against a static JWK Set), binding, forwarded certificate, replay. Input:
//! the request text format of `src/lib.rs` (`<fixture> <METHOD> <path>` then header lines).
//! Oracles: never a panic; a success carries the proof its binding names, and only the
//! `bearer` fixture accepts an unbound token; every refusal has a challenge.

#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use tower_pop::Binding;
use tower_pop_fuzz::{Fixture, block_on, request};

fuzz_target!(|data: &[u8]| {
    let Some((fixture, request)) = request(data) else {
        return;
    };
    let verifier = fixture.verifier();
    match block_on(verifier.verify(&request)) {
        Ok(verified) => match verified.binding() {
            Binding::Bearer => assert_eq!(fixture, Fixture::Bearer, "bearer only when allowed"),
            Binding::Dpop => assert!(verified.jkt().is_some()),
            Binding::Mtls => assert!(verified.certificate_thumbprint().is_some()),
            Binding::DpopAndMtls => {
                assert!(verified.jkt().is_some() && verified.certificate_thumbprint().is_some());
            }
            _ => {}
        },
        Err(error) => {
            let challenge = verifier.challenge(&error);
            assert!(matches!(challenge.status(), 400 | 401 | 403 | 500 | 503));
        }
    }
});
