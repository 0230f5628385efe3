//! The binding policy: downgrade protection, unbound tokens, `cnf` shapes, certificate binding
//! (SPEC-CHECKLIST DPOP-20, DPOP-21, CNF-*, MTLS-*).

use serde_json::json;
use tower_pop::{PeerCertificate, PolicyBuilder as _};

use crate::support::*;

fn with_cert(mut request: http::Request<String>, der: &[u8]) -> http::Request<String> {
    request
        .extensions_mut()
        .insert(PeerCertificate::new(der.to_vec()));
    request
}

#[tokio::test]
async fn dpop_bound_token_as_bearer_is_refused_dpop_20() {
    let f = Fixture::with(|b| b.allow_bearer());
    let token = f.token();
    let bearer = format!("Bearer {token}");
    assert_refused(
        &f.send(req("GET", PATH, &[&bearer], &[])).await,
        401,
        Some("Bearer"),
        "invalid_token",
    );
    assert_refused(
        &f.send(req("GET", PATH, &[&bearer], &[&f.proof(&token)]))
            .await,
        401,
        Some("Bearer"),
        "invalid_token",
    );
}

#[tokio::test]
async fn dpop_scheme_with_unbound_token_is_refused_dpop_21() {
    let f = Fixture::with(|b| b.allow_bearer());
    let token = f.unbound_token();
    assert_refused(
        &f.dpop(&token, &f.proof(&token)).await,
        401,
        Some("DPoP"),
        "invalid_token",
    );
}

#[tokio::test]
async fn unbound_bearer_needs_allow_bearer_prm_05_fapi_05() {
    let strict = Fixture::new();
    let token = strict.unbound_token();
    let response = strict
        .send(req("GET", PATH, &[&format!("Bearer {token}")], &[]))
        .await;
    assert_refused(&response, 401, Some("Bearer"), "invalid_token");

    let relaxed = Fixture::with(|b| b.allow_bearer());
    let token = relaxed.unbound_token();
    let response = relaxed
        .send(req("GET", PATH, &[&format!("bearer {token}")], &[]))
        .await;
    // A valid unbound token in the Authorization header, Bearer scheme: 200 (AUTH-05).
    assert_ok(&response, "bearer");
    // A DPoP header next to a token that is not DPoP-bound is refused, also where bearer
    // tokens are allowed (RFC 9449 §7.2).
    let response = relaxed
        .send(req(
            "GET",
            PATH,
            &[&format!("Bearer {token}")],
            &["garbage"],
        ))
        .await;
    assert_refused(&response, 401, Some("Bearer"), "invalid_token");
}

#[tokio::test]
async fn unsupported_or_malformed_cnf_never_becomes_bearer_cnf_01_to_03() {
    let f = Fixture::with(|b| b.allow_bearer());
    for cnf in [
        json!("abc"),
        json!(["a"]),
        // Only a method we cannot verify: refused, never bearer (CNF-03).
        json!({"kid": "x"}),
        // Two keys named (CNF-02).
        json!({"jwk": {}, "jku": "https://x"}),
        json!({"jkt": "short"}),
    ] {
        let token = f.token_patched(json!({"cnf": cnf}));
        let response = f
            .send(req("GET", PATH, &[&format!("Bearer {token}")], &[]))
            .await;
        assert_refused(&response, 401, Some("Bearer"), "invalid_token");
    }
}

#[tokio::test]
async fn unknown_members_beside_jkt_are_ignored_cnf_06() {
    let f = Fixture::new();
    let token = f.token_patched(json!({"cnf": {"jkt": f.client.thumbprint(), "foo": 1}}));
    assert_ok(&f.dpop(&token, &f.proof(&token)).await, "dpop");
}

#[tokio::test]
async fn certificate_bound_token_mtls_01_to_03_07() {
    let f = Fixture::new();
    let cert_a = b"certificate A, DER bytes as the TLS layer saw them".to_vec();
    let cert_b = b"certificate B".to_vec();
    let x5t = tower_pop::thumbprint::x5t_s256(&cert_a);
    let token = f.token_patched(json!({"cnf": {"x5t#S256": x5t}}));
    let bearer = format!("Bearer {token}");
    // The bound certificate with the Bearer scheme: 200, not a downgrade (MTLS-07).
    assert_ok(
        &f.send(with_cert(req("GET", PATH, &[&bearer], &[]), &cert_a))
            .await,
        "mtls",
    );
    // Another certificate: 401 invalid_token in the Bearer challenge (MTLS-02).
    assert_refused(
        &f.send(with_cert(req("GET", PATH, &[&bearer], &[]), &cert_b))
            .await,
        401,
        Some("Bearer"),
        "invalid_token",
    );
    // No certificate in the request (no TLS context): refused, never accepted (MTLS-03, MTLS-08).
    assert_refused(
        &f.send(req("GET", PATH, &[&bearer], &[])).await,
        401,
        Some("Bearer"),
        "invalid_token",
    );
    // Padding added to the thumbprint (MTLS-04).
    let padded = f.token_patched(json!({"cnf": {"x5t#S256": format!("{x5t}=")}}));
    let response = f
        .send(with_cert(
            req("GET", PATH, &[&format!("Bearer {padded}")], &[]),
            &cert_a,
        ))
        .await;
    assert_refused(&response, 401, Some("Bearer"), "invalid_token");
}

#[tokio::test]
async fn token_bound_to_key_and_certificate_needs_both_cnf_04() {
    let f = Fixture::new();
    let cert = b"client certificate".to_vec();
    let token = f.token_patched(json!({"cnf": {"jkt": f.client.thumbprint(), "x5t#S256": tower_pop::thumbprint::x5t_s256(&cert)}}));
    let auth = format!("DPoP {token}");
    let response = f
        .send(req("GET", PATH, &[&auth], &[&f.proof(&token)]))
        .await;
    assert_refused(&response, 401, Some("DPoP"), "invalid_token");
    let response = f
        .send(with_cert(
            req("GET", PATH, &[&auth], &[&f.proof(&token)]),
            &cert,
        ))
        .await;
    assert_ok(&response, "dpop+mtls");
}

#[tokio::test]
async fn missing_scope_is_403_in_the_scheme_used_prm_06() {
    use std::convert::Infallible;
    use tower::{ServiceBuilder, ServiceExt, service_fn};
    use tower_pop::RequirePopLayer;
    let f = Fixture::with(|b| b.allow_bearer());
    let service = ServiceBuilder::new()
        .layer(
            RequirePopLayer::new(std::sync::Arc::clone(&f.verifier))
                .require_scope("admin")
                .unwrap(),
        )
        .service(service_fn(|_req: http::Request<String>| async {
            Ok::<_, Infallible>(http::Response::new(String::from("ok")))
        }));
    // Token scope read, route needs admin: 403 insufficient_scope, scope="admin" (BRR-07, FAPI-04).
    // Bearer: the error and the scope go into the Bearer challenge.
    let bearer = f.unbound_token();
    let response = service
        .clone()
        .oneshot(req("GET", PATH, &[&format!("Bearer {bearer}")], &[]))
        .await
        .unwrap();
    assert_refused(&response, 403, Some("Bearer"), "insufficient_scope");
    let challenge = challenge_params(&response, "Bearer");
    assert!(challenge.contains(r#"scope="admin""#), "{challenge}");
    // DPoP: into the DPoP challenge.
    let token = f.token();
    let response = service
        .clone()
        .oneshot(req(
            "GET",
            PATH,
            &[&format!("DPoP {token}")],
            &[&f.proof(&token)],
        ))
        .await
        .unwrap();
    assert_refused(&response, 403, Some("DPoP"), "insufficient_scope");
    let challenge = challenge_params(&response, "DPoP");
    assert!(challenge.contains(r#"scope="admin""#), "{challenge}");
    // Authentication first: a bad token is still a 401.
    let response = service
        .oneshot(req("GET", PATH, &["Bearer not-a-token"], &[]))
        .await
        .unwrap();
    assert_refused(&response, 401, Some("Bearer"), "invalid_token");
}
