//! `Authorization` parsing (`credentials::parse`) and the single-`DPoP`-field rule (RFC 6750
//! §2.1, RFC 9449 §4.3 step 1, §7.1). Input: the request text format of `src/lib.rs`.

#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use tower_pop::{AuthScheme, PopErrorKind, PopRequest};
use tower_pop_fuzz::{Fixture, block_on, header_values, request};

/// RFC 9449's opaque example token: not a JWT, so the verifier refuses it after the proof rules.
const AT0: &[u8] = b"DPoP Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

fuzz_target!(|data: &[u8]| {
    let Some((_, parsed)) = request(data) else {
        return;
    };
    let authorization = header_values(data, "authorization");
    match tower_pop::__fuzzing::credentials(&parsed) {
        Ok((scheme, token)) => {
            assert_eq!(authorization.len(), 1, "one field only");
            assert!(!token.is_empty() && token.len() <= 16 * 1024);
            assert!(!token.contains([' ', ',', '"']), "token68 only");
            let value = std::str::from_utf8(authorization[0]).expect("UTF-8 was checked");
            let name = value.split(' ').next().unwrap_or_default();
            let expected = if name.eq_ignore_ascii_case("dpop") {
                AuthScheme::Dpop
            } else {
                AuthScheme::Bearer
            };
            assert_eq!(scheme, expected);
        }
        Err(kind) => {
            assert!(matches!(
                kind,
                PopErrorKind::MissingCredentials
                    | PopErrorKind::InvalidRequest
                    | PopErrorKind::TokenInvalid
            ));
            if authorization.is_empty() {
                assert_eq!(kind, PopErrorKind::MissingCredentials);
            }
            if authorization.len() > 1 {
                assert_eq!(kind, PopErrorKind::InvalidRequest);
            }
        }
    }

    // The DPoP fields of the input under a well-formed DPoP-scheme Authorization.
    let dpop = header_values(data, "dpop");
    let mut proof_request = PopRequest::new("GET", "/protectedresource").authorization(AT0);
    for value in &dpop {
        proof_request = proof_request.dpop(value);
    }
    let verifier = Fixture::Dpop.verifier();
    let kind = block_on(verifier.verify(&proof_request))
        .expect_err("an opaque token is never accepted")
        .kind();
    match dpop.as_slice() {
        [] => assert_eq!(kind, PopErrorKind::MissingProof),
        [one] if !one.contains(&b',') => {
            assert!(!matches!(
                kind,
                PopErrorKind::MissingProof | PopErrorKind::MultipleProofs
            ));
            if std::str::from_utf8(one).is_err() {
                assert_eq!(kind, PopErrorKind::MalformedProof);
            }
        }
        _ => assert_eq!(kind, PopErrorKind::MultipleProofs),
    }
});
