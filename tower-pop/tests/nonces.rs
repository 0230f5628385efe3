//! Server-provided nonces through the layer (RFC 9449 §8, §9; NONCE-*).

use http::Response;
use tower_pop::nonce::{NonceSecret, Nonces};

use crate::support::*;

fn secret(fill: u8) -> NonceSecret {
    NonceSecret::new(vec![fill; 32]).unwrap()
}

fn with_nonces(nonces: Nonces) -> Fixture {
    Fixture::with(|b| b.require_nonce(nonces))
}

fn nonce_of(response: &Response<String>) -> String {
    let values: Vec<_> = response.headers().get_all("dpop-nonce").iter().collect();
    assert_eq!(values.len(), 1, "exactly one DPoP-Nonce (NONCE-04)");
    assert_eq!(response.headers()["cache-control"], "no-store");
    values[0].to_str().unwrap().to_owned()
}

/// 401 `use_dpop_nonce` in the DPoP challenge only, with a fresh nonce; returns it.
fn assert_use_dpop_nonce(response: &Response<String>) -> String {
    assert_refused(response, 401, Some("DPoP"), "use_dpop_nonce");
    nonce_of(response)
}

async fn send_with_nonce(f: &Fixture, token: &str, nonce: Option<&str>) -> Response<String> {
    let proof = f
        .client
        .proof_at(
            "GET",
            URL,
            Some(token),
            nonce,
            tower_pop::Clock::now_unix(&f.clock),
        )
        .unwrap();
    f.dpop(token, &proof).await
}

#[tokio::test]
async fn missing_nonce_gets_use_dpop_nonce_then_the_retry_succeeds_nonce_01() {
    let f = with_nonces(Nonces::new(secret(1)));
    let token = f.token();
    let first = send_with_nonce(&f, &token, None).await;
    // Exactly one DPoP-Nonce field on the challenge (nonce_of), none on the 200 (NONCE-04).
    let nonce = assert_use_dpop_nonce(&first);
    assert!(
        nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let retry = send_with_nonce(&f, &token, Some(&nonce)).await;
    assert_eq!(retry.status(), 200, "{}", retry.body());
    // A fresh nonce is not due yet: no header on this 200.
    assert!(retry.headers().get("dpop-nonce").is_none());
}

#[tokio::test]
async fn forged_stale_and_foreign_nonces_are_refused_nonce_05_08_09() {
    let f = with_nonces(Nonces::new(secret(1)));
    let token = f.token();
    let good = assert_use_dpop_nonce(&send_with_nonce(&f, &token, None).await);
    // Only a nonce this server issued, unchanged and current, is accepted (DPOP-13).
    let mut forged = good.clone().into_bytes();
    forged[50] = if forged[50] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_use_dpop_nonce(&send_with_nonce(&f, &token, Some(&forged)).await);
    let foreign = Nonces::new(secret(2)).current(tower_pop::Clock::now_unix(&f.clock));
    assert_use_dpop_nonce(&send_with_nonce(&f, &token, Some(&foreign)).await);
    assert_use_dpop_nonce(&send_with_nonce(&f, &token, Some("not-a-nonce")).await);
    // Stale: past the 5-minute lifetime. The proof's iat moves with the clock, so only the
    // nonce is out of date; the answer carries a new, valid nonce.
    f.clock.advance(301);
    let fresh = assert_use_dpop_nonce(&send_with_nonce(&f, &token, Some(&good)).await);
    assert_ne!(fresh, good);
    assert_eq!(
        send_with_nonce(&f, &token, Some(&fresh)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_valid_nonce_skips_no_other_check() {
    let f = with_nonces(Nonces::new(secret(1)));
    let token = f.token();
    let nonce = assert_use_dpop_nonce(&send_with_nonce(&f, &token, None).await);
    // Wrong htu, with a valid nonce: still invalid_dpop_proof.
    let proof = f
        .client
        .proof_at(
            "GET",
            "https://resource.example.org/other",
            Some(&token),
            Some(&nonce),
            tower_pop::Clock::now_unix(&f.clock),
        )
        .unwrap();
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    // A thief's key with a valid nonce: invalid_token (key binding).
    let thief =
        tower_pop::dpop::signer::ProofSigner::generate(tower_pop::Algorithm::ES256).unwrap();
    let proof = thief
        .proof_at(
            "GET",
            URL,
            Some(&token),
            Some(&nonce),
            tower_pop::Clock::now_unix(&f.clock),
        )
        .unwrap();
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        "invalid_token",
    );
    // The same proof twice: the second is a replay.
    let proof = f
        .client
        .proof_at(
            "GET",
            URL,
            Some(&token),
            Some(&nonce),
            tower_pop::Clock::now_unix(&f.clock),
        )
        .unwrap();
    assert_eq!(f.dpop(&token, &proof).await.status(), 200);
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
}

#[tokio::test]
async fn a_200_carries_a_fresh_nonce_once_half_the_lifetime_passed_nonce_07() {
    let f = with_nonces(Nonces::new(secret(1)));
    let token = f.token();
    let nonce = assert_use_dpop_nonce(&send_with_nonce(&f, &token, None).await);
    f.clock.advance(160);
    let ok = send_with_nonce(&f, &token, Some(&nonce)).await;
    assert_eq!(ok.status(), 200);
    let next = nonce_of(&ok);
    assert_ne!(next, nonce);
    assert_eq!(send_with_nonce(&f, &token, Some(&next)).await.status(), 200);
}

#[tokio::test]
async fn instances_sharing_a_secret_accept_each_others_nonces_and_rotation_works() {
    let a = with_nonces(Nonces::new(secret(7)));
    let token_a = a.token();
    let nonce = assert_use_dpop_nonce(&send_with_nonce(&a, &token_a, None).await);
    // Instance B: same secret, same issuer keys are not shared by Fixture, so use B's own
    // token; the nonce came from A.
    let b = with_nonces(Nonces::new(secret(7)));
    let token_b = b.token();
    assert_eq!(
        send_with_nonce(&b, &token_b, Some(&nonce)).await.status(),
        200
    );
    // Rotation: C has a new current secret and A's as previous: accepts A's nonce and moves
    // the client on with a fresh one.
    let rotated = Nonces::builder(secret(8))
        .add_previous(secret(7))
        .build()
        .unwrap();
    let c = with_nonces(rotated);
    let token_c = c.token();
    let ok = send_with_nonce(&c, &token_c, Some(&nonce)).await;
    assert_eq!(ok.status(), 200);
    let moved = nonce_of(&ok);
    // D dropped the old secret: A's nonce is refused, C's new one accepted.
    let d = with_nonces(Nonces::new(secret(8)));
    let token_d = d.token();
    assert_use_dpop_nonce(&send_with_nonce(&d, &token_d, Some(&nonce)).await);
    assert_eq!(
        send_with_nonce(&d, &token_d, Some(&moved)).await.status(),
        200
    );
}

#[tokio::test]
async fn without_the_policy_nonces_are_neither_required_nor_sent() {
    let f = Fixture::new();
    let token = f.token();
    let ok = send_with_nonce(&f, &token, None).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("dpop-nonce").is_none());
    assert!(ok.headers().get("cache-control").is_none());
}
