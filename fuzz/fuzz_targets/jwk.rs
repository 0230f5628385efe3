//! JWK parsing (`jwk::PublicJwk::from_json`: public EC/RSA/OKP keys, canonical encodings
//! only) and the RFC 7638 thumbprint (`thumbprint::jwk_thumbprint`). Oracle: the internal and the
//! public path agree, and an accepted key fits at least one algorithm.

#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use tower_pop::thumbprint::jwk_thumbprint;

fuzz_target!(|data: &[u8]| {
    let parsed = tower_pop::__fuzzing::jwk(data);
    let public = std::str::from_utf8(data).ok().and_then(jwk_thumbprint);
    assert_eq!(parsed.as_ref().map(|(jkt, _)| jkt), public.as_ref());
    if let Some((jkt, fits)) = parsed {
        assert_eq!(jkt.len(), 43);
        assert!(!fits.is_empty());
    }
});
