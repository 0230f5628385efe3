//! DPoP proof checks (SPEC-CHECKLIST §3, §6, §7, §13) through the layer.

use serde_json::json;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;

use crate::support::*;

const INVALID_PROOF: &str = "invalid_dpop_proof";

#[tokio::test]
async fn accepts_valid_proof_and_reports_binding() {
    let f = Fixture::new();
    let token = f.token();
    let response = f.dpop(&token, &f.proof(&token)).await;
    assert_ok(&response, "dpop");
    let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["jkt"], f.client.thumbprint());
}

#[tokio::test]
async fn accepts_every_supported_algorithm_when_allowed() {
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::EdDSA,
    ] {
        let mut f = Fixture::with(|b| b.dpop_algorithms(Algorithm::ALL));
        f.client = ProofSigner::generate(alg).unwrap();
        let token = f.token();
        assert_ok(&f.dpop(&token, &f.proof(&token)).await, "dpop");
    }
}

#[tokio::test]
async fn scheme_and_field_names_are_case_insensitive_auth_01_dpop_03() {
    let f = Fixture::new();
    for scheme in ["dpop", "DPOP"] {
        let token = f.token();
        let proof = f.proof(&token);
        let request = http::Request::builder()
            .uri(PATH)
            .header("Authorization", format!("{scheme}   {token}"))
            .header("DPOP", proof)
            .body(String::new())
            .unwrap();
        assert_ok(&f.send(request).await, "dpop");
    }
}

#[tokio::test]
async fn rejects_missing_proof_dpop_18() {
    let f = Fixture::new();
    let token = f.token();
    let response = f
        .send(req("GET", PATH, &[&format!("DPoP {token}")], &[]))
        .await;
    assert_refused(&response, 401, Some("DPoP"), INVALID_PROOF);
}

#[tokio::test]
async fn rejects_two_proofs_and_folded_proofs_dpop_01() {
    let f = Fixture::new();
    let token = f.token();
    let (p1, p2) = (f.proof(&token), f.proof(&token));
    let auth = format!("DPoP {token}");
    let response = f.send(req("GET", PATH, &[&auth], &[&p1, &p2])).await;
    assert_refused(&response, 401, Some("DPoP"), INVALID_PROOF);
    let response = f
        .send(req("GET", PATH, &[&auth], &[&format!("{p1}, {p2}")]))
        .await;
    assert_refused(&response, 401, Some("DPoP"), INVALID_PROOF);
}

#[tokio::test]
async fn rejects_malformed_proofs_dpop_02() {
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof(&token);
    let parts: Vec<&str> = proof.split('.').collect();
    let not_json = format!("{}.{}.{}", "bm90IGpzb24", parts[1], parts[2]);
    for bad in [
        "a.b",
        "",
        "e30.e30.e30.e30.e30",
        &not_json,
        "{\"payload\":\"x\"}",
    ] {
        let response = f.dpop(&token, bad).await;
        assert_refused(&response, 401, Some("DPoP"), INVALID_PROOF);
    }
}

#[tokio::test]
async fn rejects_flipped_case_in_payload_dpop_03() {
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof(&token);
    let (head, rest) = proof.split_once('.').unwrap();
    let mut payload: Vec<char> = rest.chars().collect();
    let i = payload.iter().position(|c| c.is_ascii_lowercase()).unwrap();
    payload[i] = payload[i].to_ascii_uppercase();
    let tampered = format!("{head}.{}", payload.into_iter().collect::<String>());
    assert_refused(
        &f.dpop(&token, &tampered).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn rejects_each_missing_required_member_dpop_04() {
    let f = Fixture::new();
    let token = f.token();
    let header = f.client.proof_header();
    for member in ["typ", "alg", "jwk"] {
        let mut h = header.clone();
        h.as_object_mut().unwrap().remove(member);
        let proof = f.proof_custom(h, json!({}), &token);
        assert_refused(
            &f.dpop(&token, &proof).await,
            401,
            Some("DPoP"),
            INVALID_PROOF,
        );
    }
    for claim in ["jti", "htm", "htu", "iat", "ath"] {
        let proof = f.proof_custom(header.clone(), json!({ claim: null }), &token);
        assert_refused(
            &f.dpop(&token, &proof).await,
            401,
            Some("DPoP"),
            INVALID_PROOF,
        );
    }
    let proof = f.proof_custom(header, json!({"iat": NOW.to_string()}), &token);
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn rejects_wrong_typ_dpop_05_and_accepts_typ_case_variants_a3() {
    let f = Fixture::new();
    let token = f.token();
    for typ in ["JWT", "at+jwt", "dpop"] {
        let mut h = f.client.proof_header();
        h["typ"] = json!(typ);
        let proof = f.proof_custom(h, json!({}), &token);
        assert_refused(
            &f.dpop(&token, &proof).await,
            401,
            Some("DPoP"),
            INVALID_PROOF,
        );
    }
    let mut h = f.client.proof_header();
    h["typ"] = json!("DPOP+JWT");
    let proof = f.proof_custom(h, json!({}), &token);
    assert_ok(&f.dpop(&token, &proof).await, "dpop");
}

#[tokio::test]
async fn rejects_none_hmac_and_disallowed_algorithms_dpop_06_jose_03() {
    let f = Fixture::new();
    let token = f.token();
    let signed = f.proof(&token);
    let (_, payload_and_sig) = signed.split_once('.').unwrap();
    let payload = payload_and_sig.split('.').next().unwrap();
    for alg in ["none", "None", "NONE"] {
        let mut h = f.client.proof_header();
        h["alg"] = json!(alg);
        let header = tower_pop_b64(&h.to_string());
        let unsigned = format!("{header}.{payload}.");
        assert_refused(
            &f.dpop(&token, &unsigned).await,
            401,
            Some("DPoP"),
            INVALID_PROOF,
        );
    }
    let mut h = f.client.proof_header();
    h["alg"] = json!("HS256");
    h["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"});
    let proof = f.proof_custom(h, json!({}), &token);
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );

    // An RS256 proof while the allow-list is ES256 PS256 EdDSA; the challenge names the list.
    let mut rsa = Fixture::new();
    rsa.client = ProofSigner::generate(Algorithm::RS256).unwrap();
    let token = rsa.token();
    let response = rsa.dpop(&token, &rsa.proof(&token)).await;
    assert_refused(&response, 401, Some("DPoP"), INVALID_PROOF);
    assert!(challenge_params(&response, "DPoP").ends_with(ALGS));
}

fn tower_pop_b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn rejects_alg_that_does_not_fit_the_key_dpop_07() {
    let mut f = Fixture::with(|b| b.dpop_algorithms(Algorithm::ALL));
    f.client = ProofSigner::generate(Algorithm::ES384).unwrap();
    let token = f.token();
    let mut h = f.client.proof_header();
    h["alg"] = json!("ES256");
    let proof = f.proof_custom(h, json!({}), &token);
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn rejects_bad_signatures_dpop_08() {
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof(&token);
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let zeros = format!("{input}.{}", tower_pop_b64(&"\0".repeat(64)));
    assert_refused(
        &f.dpop(&token, &zeros).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
    // Another valid signature, over different bytes, under the same key.
    let other = f.proof(&token);
    let swapped = format!("{input}.{}", other.rsplit_once('.').unwrap().1);
    assert_ne!(sig, other.rsplit_once('.').unwrap().1);
    assert_refused(
        &f.dpop(&token, &swapped).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn rejects_private_key_in_jwk_dpop_09() {
    let f = Fixture::new();
    let token = f.token();
    let mut h = f.client.proof_header();
    h["jwk"]["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    let proof = f.proof_custom(h, json!({}), &token);
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn key_comes_only_from_jwk_dpop_10() {
    let f = Fixture::new();
    let token = f.token();
    let mut h = f.client.proof_header();
    h.as_object_mut().unwrap().remove("jwk");
    h["jku"] = json!("https://attacker.example/jwks");
    h["kid"] = json!("as-1");
    let proof = f.proof_custom(h, json!({}), &token);
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn htm_must_match_exactly_dpop_11() {
    let f = Fixture::new();
    let token = f.token();
    let auth = format!("DPoP {token}");
    let proof = f.proof(&token);
    assert_refused(
        &f.send(req("POST", PATH, &[&auth], &[&proof])).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
    assert_refused(
        &f.send(req("HEAD", PATH, &[&auth], &[&f.proof(&token)]))
            .await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
    let lower = f.proof_custom(f.client.proof_header(), json!({"htm": "get"}), &token);
    assert_refused(
        &f.dpop(&token, &lower).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn htu_must_match_the_target_dpop_12_htu() {
    let f = Fixture::new();
    let token = f.token();
    let auth = format!("DPoP {token}");
    // Other path.
    let response = f
        .send(req("GET", "/otherresource", &[&auth], &[&f.proof(&token)]))
        .await;
    assert_refused(&response, 401, Some("DPoP"), INVALID_PROOF);
    // Query ignored (DPOP-12, HTU-06).
    assert_ok(
        &f.send(req(
            "GET",
            "/protectedresource?page=2",
            &[&auth],
            &[&f.proof(&token)],
        ))
        .await,
        "dpop",
    );
    // Normalisation: case, default port, dot segments, escaped unreserved (HTU-01..04).
    for htu in [
        "HTTPS://Resource.Example.ORG/protectedresource",
        "https://resource.example.org:443/protectedresource",
        "https://resource.example.org/x/../protectedresource",
        "https://resource.example.org/%70rotectedresource",
        "https://resource.example.org/protectedresource#frag",
    ] {
        let proof = f.proof_custom(f.client.proof_header(), json!({"htu": htu}), &token);
        assert_ok(&f.dpop(&token, &proof).await, "dpop");
    }
    for htu in [
        "https://resource.example.org/ProtectedResource",
        "https://resource.example.org/protectedresource/",
        "https://resource.example.org:8443/protectedresource",
        "http://resource.example.org/protectedresource", // DPOP-26
        "/protectedresource",
        "https://u@resource.example.org/protectedresource",
        "https://evil.example/protectedresource",
    ] {
        let proof = f.proof_custom(f.client.proof_header(), json!({"htu": htu}), &token);
        assert_refused(
            &f.dpop(&token, &proof).await,
            401,
            Some("DPoP"),
            INVALID_PROOF,
        );
    }
}

#[tokio::test]
async fn forwarded_host_headers_are_never_trusted_htu_07() {
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof_custom(
        f.client.proof_header(),
        json!({"htu": "https://evil.example/protectedresource"}),
        &token,
    );
    let request = http::Request::builder()
        .uri(PATH)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "host=evil.example;proto=https")
        .body(String::new())
        .unwrap();
    assert_refused(&f.send(request).await, 401, Some("DPoP"), INVALID_PROOF);
}

#[tokio::test]
async fn iat_window_dpop_14_fapi_07() {
    let f = Fixture::new();
    let token = f.token();
    let at = |iat: u64| {
        f.client
            .proof_at("GET", URL, Some(&token), None, iat)
            .unwrap()
    };
    assert_ok(&f.dpop(&token, &at(NOW - 60)).await, "dpop");
    assert_ok(&f.dpop(&token, &at(NOW + 9)).await, "dpop");
    assert_ok(&f.dpop(&token, &at(NOW + 10)).await, "dpop");
    // Accepted only for a limited time after creation (RPL-01).
    for iat in [NOW - 61, NOW - 600, NOW + 11, NOW + 61] {
        assert_refused(
            &f.dpop(&token, &at(iat)).await,
            401,
            Some("DPoP"),
            INVALID_PROOF,
        );
    }
}

#[tokio::test]
async fn ath_must_hash_the_presented_token_dpop_15() {
    let f = Fixture::new();
    let token = f.token();
    let other = f.token_patched(json!({"jti": "at-2"}));
    // A proof made for another token.
    assert_refused(
        &f.dpop(&token, &f.proof(&other)).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
    // Padding added to ath.
    let padded = format!("{}=", tower_pop::thumbprint::ath(&token));
    let proof = f.proof_custom(f.client.proof_header(), json!({"ath": padded}), &token);
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn proof_key_must_match_cnf_jkt_dpop_16() {
    let f = Fixture::new();
    let token = f.token();
    let thief = ProofSigner::generate(Algorithm::ES256).unwrap();
    let proof = thief.proof_at("GET", URL, Some(&token), None, NOW).unwrap();
    let response = f.dpop(&token, &proof).await;
    // RFC 9449 Figure 16 answers a binding failure with invalid_token (ambiguity A1).
    assert_refused(&response, 401, Some("DPoP"), "invalid_token");
    assert!(
        challenge_params(&response, "DPoP")
            .contains(r#"error_description="invalid DPoP key binding""#)
    );
}

#[tokio::test]
async fn proof_alone_grants_nothing_dpop_22() {
    let f = Fixture::new();
    let token = f.token();
    let response = f.send(req("GET", PATH, &[], &[&f.proof(&token)])).await;
    assert_refused(&response, 401, None, "");
}

#[tokio::test]
async fn jose_hygiene_crit_b64_duplicates_jose_10_to_12() {
    let f = Fixture::new();
    let token = f.token();
    for extra in [
        json!({"crit": ["foo"], "foo": 1}),
        json!({"crit": []}),
        // Unencoded payload, RFC 7797 (JOSE-12).
        json!({"b64": false, "crit": ["b64"]}),
    ] {
        let mut h = f.client.proof_header();
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        let proof = f.proof_custom(h, json!({}), &token);
        assert_refused(
            &f.dpop(&token, &proof).await,
            401,
            Some("DPoP"),
            INVALID_PROOF,
        );
    }
    // Two "alg" members in the protected header (signed as raw bytes).
    let h = f.client.proof_header();
    let raw_header = format!(
        r#"{{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":{}}}"#,
        h["jwk"]
    );
    let claims = json!({"jti": "dup", "htm": "GET", "htu": URL, "iat": NOW, "ath": tower_pop::thumbprint::ath(&token)});
    let proof = f
        .client
        .sign_compact_raw(raw_header.as_bytes(), claims.to_string().as_bytes())
        .unwrap();
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
    // An access token sent as a proof (JOSE-09).
    assert_refused(
        &f.dpop(&token, &token).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn oversized_jti_is_refused_rpl_03() {
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof_custom(
        f.client.proof_header(),
        json!({"jti": "j".repeat(10_000)}),
        &token,
    );
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        INVALID_PROOF,
    );
}

#[tokio::test]
async fn non_normal_request_paths_never_match_a_proof() {
    // A router may route these literally; a proof for the normalised path must not open them.
    let f = Fixture::new();
    let token = f.token();
    let auth = format!("DPoP {token}");
    for path in [
        "/x/../protectedresource",
        "/./protectedresource",
        "/%70rotectedresource",
        "/x/%2E%2E/protectedresource",
    ] {
        let response = f
            .send(req("GET", path, &[&auth], &[&f.proof(&token)]))
            .await;
        assert_refused(&response, 401, Some("DPoP"), INVALID_PROOF);
    }
}

#[tokio::test]
async fn original_target_is_used_when_a_router_rewrote_the_uri() {
    let f = Fixture::new();
    let token = f.token();
    // A router stripped the "/api" prefix of "/api/x" before the layer ran.
    let proof = f.proof_custom(
        f.client.proof_header(),
        json!({"htu": format!("{ORIGIN}/api/x")}),
        &token,
    );
    let mut request = req("GET", "/x", &[&format!("DPoP {token}")], &[&proof]);
    request
        .extensions_mut()
        .insert(tower_pop::OriginalTarget("/api/x".parse().unwrap()));
    assert_ok(&f.send(request).await, "dpop");
    // A proof for the stripped path is refused.
    let proof = f.proof_custom(
        f.client.proof_header(),
        json!({"htu": format!("{ORIGIN}/x")}),
        &token,
    );
    let mut request = req("GET", "/x", &[&format!("DPoP {token}")], &[&proof]);
    request
        .extensions_mut()
        .insert(tower_pop::OriginalTarget("/api/x".parse().unwrap()));
    assert_refused(&f.send(request).await, 401, Some("DPoP"), INVALID_PROOF);
}

#[tokio::test]
async fn request_debug_never_shows_token_or_proof() {
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof(&token);
    let auth = format!("DPoP {token}");
    let request = tower_pop::PopRequest::new("GET", PATH)
        .authorization(auth.as_bytes())
        .dpop(proof.as_bytes());
    let debug = format!("{request:?}");
    assert!(
        debug.contains("GET") && debug.contains("1 field(s)"),
        "{debug}"
    );
    for secret in [&token, &proof] {
        assert!(!debug.contains(secret.as_str()));
        assert!(!debug.contains(&format!("{:?}", &secret.as_bytes()[..8])));
    }
}
