//! Access-token checks (SPEC-CHECKLIST §11, §13) and the Authorization header (§1).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::{Algorithm, PopConfig, Verifier};

use crate::support::*;

const INVALID_TOKEN: &str = "invalid_token";

async fn dpop_with_token(f: &Fixture, token: &str) -> http::Response<String> {
    f.dpop(token, &f.proof(token)).await
}

#[tokio::test]
async fn typ_must_be_at_jwt_jwtat_01() {
    let f = Fixture::new();
    for typ in ["at+JWT", "application/at+jwt", "AT+JWT"] {
        let token = f.token_with(
            json!({"typ": typ, "alg": "ES256", "kid": "as-1"}),
            f.claims(json!({})),
        );
        assert_ok(&dpop_with_token(&f, &token).await, "dpop");
    }
    for header in [
        // typ JWT, as an ID Token of the same issuer has: not an access token (JWTAT-10).
        json!({"typ": "JWT", "alg": "ES256", "kid": "as-1"}),
        json!({"typ": "dpop+jwt", "alg": "ES256", "kid": "as-1"}),
        json!({"alg": "ES256", "kid": "as-1"}),
    ] {
        let token = f.token_with(header, f.claims(json!({})));
        assert_refused(
            &dpop_with_token(&f, &token).await,
            401,
            Some("DPoP"),
            INVALID_TOKEN,
        );
    }
}

#[tokio::test]
async fn issuer_must_match_exactly_jwtat_02() {
    let f = Fixture::new();
    let token = f.token_patched(json!({"iss": "https://server.example.com/"}));
    assert_refused(
        &dpop_with_token(&f, &token).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
}

#[tokio::test]
async fn audience_must_contain_ours_jwtat_03() {
    let f = Fixture::new();
    let token = f.token_patched(json!({"aud": ["https://other.example", AUDIENCE]}));
    assert_ok(&dpop_with_token(&f, &token).await, "dpop");
    for aud in [
        json!("https://other.example"),
        json!(null),
        json!([]),
        json!(7),
    ] {
        let token = f.token_patched(json!({"aud": aud}));
        assert_refused(
            &dpop_with_token(&f, &token).await,
            401,
            Some("DPoP"),
            INVALID_TOKEN,
        );
    }
}

#[tokio::test]
async fn signature_and_keys_come_only_from_the_issuer_jwtat_04_jose_07_08() {
    let f = Fixture::new();
    // Signed by the client's own key, which the token header offers as jwk/jku.
    let mut header = Fixture::at_header();
    header["jwk"] = serde_json::from_str(&f.client.public_jwk()).unwrap();
    header["jku"] = json!("https://attacker.example/jwks");
    let forged = f
        .client
        .sign_compact(&header, &f.claims(json!({})))
        .unwrap();
    // Header jwk and jku are not used: invalid_token, not a fetch failure (JOSE-08, FAPI-09).
    assert_refused(
        &dpop_with_token(&f, &forged).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
    // Unknown kid, including a path-like one (JOSE-08).
    for kid in ["as-2", "../../etc/passwd"] {
        let token = f.token_with(
            json!({"typ": "at+jwt", "alg": "ES256", "kid": kid}),
            f.claims(json!({})),
        );
        assert_refused(
            &dpop_with_token(&f, &token).await,
            401,
            Some("DPoP"),
            INVALID_TOKEN,
        );
    }
    // No kid: refused under RFC 9068 (the header must name its key)...
    let token = f.token_with(
        json!({"typ": "at+jwt", "alg": "ES256"}),
        f.claims(json!({})),
    );
    assert_refused(
        &dpop_with_token(&f, &token).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
    // ...and with the plain-JWT profile the one fitting key is used.
    let plain = Fixture::with(|b| b.token_profile(tower_pop::TokenProfile::PlainJwt));
    let token = plain.token_with(json!({"alg": "ES256"}), plain.claims(json!({})));
    assert_ok(&dpop_with_token(&plain, &token).await, "dpop");
}

#[tokio::test]
async fn rfc_9068_claims_required_unless_plain_profile_jwtat_06() {
    let f = Fixture::new();
    for missing in ["client_id", "jti", "iat", "sub"] {
        let token = f.token_patched(json!({ missing: null }));
        assert_refused(
            &dpop_with_token(&f, &token).await,
            401,
            Some("DPoP"),
            INVALID_TOKEN,
        );
    }
    // iat in the future beyond the leeway (30 s), integer or fractional.
    for iat in [json!(NOW + 31), json!((NOW + 31) as f64 + 0.5)] {
        let token = f.token_patched(json!({ "iat": iat }));
        assert_refused(
            &dpop_with_token(&f, &token).await,
            401,
            Some("DPoP"),
            INVALID_TOKEN,
        );
    }
    let token = f.token_patched(json!({"iat": (NOW + 29) as f64 + 0.5}));
    assert_ok(&dpop_with_token(&f, &token).await, "dpop");
    let plain = Fixture::with(|b| b.token_profile(tower_pop::TokenProfile::PlainJwt));
    let token = plain.token_patched(json!({"client_id": null, "jti": null, "iat": null}));
    assert_ok(&dpop_with_token(&plain, &token).await, "dpop");
    // sub stays required in every profile.
    let token = plain.token_patched(json!({"sub": null}));
    assert_refused(
        &dpop_with_token(&plain, &token).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
}

#[tokio::test]
async fn alg_none_and_hmac_with_public_key_are_refused_jose_02_03() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let f = Fixture::new();
    let claims = f.claims(json!({})).to_string();
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b64(&json!({"typ": "at+jwt", "alg": alg}).to_string()),
            b64(&claims)
        );
        let response = f
            .send(req(
                "GET",
                PATH,
                &[&format!("DPoP {token}")],
                &[&f.proof(&token)],
            ))
            .await;
        assert_eq!(response.status(), 401);
        assert!(challenge_params(&response, "DPoP").contains("error="));
    }
    // HS256 keyed with the issuer's public key bytes (the RS256->HS256 confusion).
    let public_jwk = f.issuer_key.public_jwk();
    for secret in [public_jwk.as_bytes().to_vec(), b"as-1".to_vec()] {
        let key = jsonwebtoken::EncodingKey::from_secret(&secret);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some("as-1".into());
        let token = jsonwebtoken::encode(&header, &f.claims(json!({})), &key).unwrap();
        assert_refused(
            &dpop_with_token(&f, &token).await,
            401,
            Some("DPoP"),
            INVALID_TOKEN,
        );
    }
}

#[tokio::test]
async fn access_token_algorithm_allow_list_jose_01() {
    let f = Fixture::with(|b| b.token_algorithms([Algorithm::RS256]));
    assert_refused(
        &dpop_with_token(&f, &f.token()).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
}

#[tokio::test]
async fn exp_and_nbf_with_leeway_jwtat_05_09() {
    let f = Fixture::new(); // 30 s leeway
    // RFC 7519 §4.1.4: refused from exp + leeway on (exclusive).
    let token = f.token_patched(json!({"exp": NOW - 29}));
    assert_ok(&dpop_with_token(&f, &token).await, "dpop");
    // Expired and the rest: invalid_token in the DPoP challenge, the scheme used (JWTAT-08).
    for patch in [
        json!({"exp": NOW - 30}),
        json!({"exp": NOW - 31}),
        json!({"exp": NOW - 600}),
        json!({"exp": null}),
        // nbf ten minutes ahead (JWTAT-09).
        json!({"nbf": NOW + 600}),
        json!({"exp": "soon"}),
    ] {
        let token = f.token_patched(patch);
        assert_refused(
            &dpop_with_token(&f, &token).await,
            401,
            Some("DPoP"),
            INVALID_TOKEN,
        );
    }
    let strict = Fixture::with(|b| b.token_leeway(Duration::ZERO));
    let token = strict.token_patched(json!({"exp": NOW}));
    assert_refused(
        &dpop_with_token(&strict, &token).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
}

#[tokio::test]
async fn cached_token_still_expires() {
    let f = Fixture::new();
    let token = f.token_patched(json!({"exp": NOW + 5}));
    assert_ok(&dpop_with_token(&f, &token).await, "dpop");
    f.clock.advance(5 + 30 + 1);
    let proof = f
        .client
        .proof_at("GET", URL, Some(&token), None, NOW + 36)
        .unwrap();
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
}

/// A cached DPoP-bound token is the verified token only: every request still needs its own
/// proof, signed by the bound key, never replayed (RFC 9449 §4.3, §7.1, §11.1).
#[tokio::test]
async fn cached_dpop_token_still_needs_a_fresh_bound_proof() {
    let f = Fixture::new();
    let token = f.token();
    let first = f.proof(&token);
    assert_ok(&f.dpop(&token, &first).await, "dpop");
    // The token is cached now; the proof of another key is still refused ...
    let thief = ProofSigner::generate(Algorithm::ES256).unwrap();
    let stolen = thief.proof_at("GET", URL, Some(&token), None, NOW).unwrap();
    assert_refused(
        &f.dpop(&token, &stolen).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
    // ... the same proof again is a replay ...
    assert_refused(
        &f.dpop(&token, &first).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    // ... and none at all is a missing proof.
    let response = f
        .send(req("GET", PATH, &[&format!("DPoP {token}")], &[]))
        .await;
    assert_eq!(response.status(), 401);
    // A fresh proof of the bound key passes.
    assert_ok(&f.dpop(&token, &f.proof(&token)).await, "dpop");
}

#[tokio::test]
async fn claims_are_typed_jwtat_06() {
    let f = Fixture::new();
    for patch in [
        json!({"iat": "x"}),
        json!({"sub": null}),
        json!({"sub": 5}),
        json!({"client_id": 1}),
        json!({"scope": ["a"]}),
    ] {
        let token = f.token_patched(patch);
        assert_refused(
            &dpop_with_token(&f, &token).await,
            401,
            Some("DPoP"),
            INVALID_TOKEN,
        );
    }
}

#[tokio::test]
async fn jwe_nested_and_proofs_are_not_access_tokens_jose_04_09() {
    let f = Fixture::new();
    let nested = f.token_with(
        json!({"typ": "at+jwt", "alg": "ES256", "kid": "as-1", "cty": "JWT"}),
        f.claims(json!({})),
    );
    assert_refused(
        &dpop_with_token(&f, &nested).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
    let jwe = "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d";
    assert_refused(
        &dpop_with_token(&f, jwe).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
    let proof_as_token = f.proof("x");
    assert_refused(
        &dpop_with_token(&f, &proof_as_token).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
    // Opaque token (no introspection configured).
    let opaque = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    assert_refused(
        &dpop_with_token(&f, opaque).await,
        401,
        Some("DPoP"),
        INVALID_TOKEN,
    );
}

#[tokio::test]
async fn duplicate_kid_chooses_key_by_type_fapi_08() {
    let rsa = ProofSigner::generate(Algorithm::RS256).unwrap();
    let ec = ProofSigner::generate(Algorithm::ES256).unwrap();
    let mut rsa_jwk: serde_json::Value = serde_json::from_str(&rsa.public_jwk()).unwrap();
    let mut ec_jwk: serde_json::Value = serde_json::from_str(&ec.public_jwk()).unwrap();
    rsa_jwk["kid"] = json!("k1");
    ec_jwk["kid"] = json!("k1");
    let jwks = json!({"keys": [rsa_jwk, ec_jwk]}).to_string();
    let mut f = Fixture::new();
    f.verifier = Arc::new(Verifier::new(
        PopConfig::builder()
            .public_origin(ORIGIN)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks_json(jwks)
            .clock(Arc::new(f.clock.clone()))
            .build()
            .unwrap(),
    ));
    for signer in [&ec, &rsa] {
        let header = json!({"typ": "at+jwt", "alg": signer.algorithm().as_str(), "kid": "k1"});
        let token = signer.sign_compact(&header, &f.claims(json!({}))).unwrap();
        assert_ok(&dpop_with_token(&f, &token).await, "dpop");
    }
}

#[tokio::test]
async fn no_credentials_or_unknown_scheme_get_challenges_without_error_brr_04_auth_08() {
    let f = Fixture::new();
    for auth in [vec![], vec!["Basic dXNlcjpwdw=="]] {
        // 401 with a DPoP challenge: algs, no error (BRR-01, DPOP-23).
        let response = f.send(req("GET", PATH, &auth, &[])).await;
        assert_refused(&response, 401, None, "");
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"DPoP algs="ES256 PS256 EdDSA Ed25519""#
        );
    }
    // Tokens in the query or in Proxy-Authorization are not read (AUTH-04, AUTH-07, FAPI-02).
    let token = f.token();
    let response = f
        .send(req(
            "GET",
            &format!("{PATH}?access_token={token}"),
            &[],
            &[],
        ))
        .await;
    assert_refused(&response, 401, None, "");
    let request = http::Request::builder()
        .uri(PATH)
        .header("proxy-authorization", format!("DPoP {token}"))
        .header("dpop", f.proof(&token))
        .body(String::new())
        .unwrap();
    assert_refused(&f.send(request).await, 401, None, "");
}

#[tokio::test]
async fn multiple_or_empty_credentials_are_invalid_request_auth_03_09_10() {
    let f = Fixture::new();
    let token = f.token();
    let (b, d) = (format!("Bearer {token}"), format!("DPoP {token}"));
    // Two Authorization fields: 400 invalid_request in both challenges (BRR-05).
    let response = f
        .send(req("GET", PATH, &[&b, &d], &[&f.proof(&token)]))
        .await;
    assert_refused(&response, 400, Some("both"), "invalid_request");
    // The two folded into one field by a proxy (AUTH-10).
    let response = f.send(req("GET", PATH, &[&format!("{b}, {d}")], &[])).await;
    assert_refused(&response, 400, Some("both"), "invalid_request");
    let response = f.send(req("GET", PATH, &["DPoP"], &[])).await;
    assert_refused(&response, 400, Some("DPoP"), "invalid_request");
}

#[tokio::test]
async fn malformed_token68_is_invalid_token_auth_02() {
    let f = Fixture::new();
    let token = f.token();
    let response = f
        .send(req(
            "GET",
            PATH,
            &[&format!("DPoP {token} x")],
            &[&f.proof(&token)],
        ))
        .await;
    assert_refused(&response, 401, Some("DPoP"), INVALID_TOKEN);
    let response = f.send(req("GET", PATH, &["Bearer a\"b"], &[])).await;
    assert_refused(&response, 401, Some("Bearer"), INVALID_TOKEN);
}

#[tokio::test]
async fn error_descriptions_never_carry_the_token_or_proof_brr_10() {
    let f = Fixture::new();
    let token = f.token_patched(json!({"iss": "https://evil.example"}));
    let proof = f.proof(&token);
    let response = f.dpop(&token, &proof).await;
    let value = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(!value.contains(&token) && !value.contains(&proof));
    assert!(!value.contains('\\'));
    let debug = format!(
        "{:?}",
        response.extensions().get::<tower_pop::PopError>().unwrap()
    );
    assert!(!debug.contains(&token));
}
