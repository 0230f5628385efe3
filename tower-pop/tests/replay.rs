//! Single use of proofs (SPEC-CHECKLIST §5) and failing replay stores (DPOP-19).

use std::sync::Arc;

use serde_json::json;
use tower::{Service, ServiceExt};
use tower_pop::replay::{BoxFuture, ReplayCache, ReplayEntry, ReplayError, ReplayOutcome};
use tower_pop::{MemoryReplayCache, PolicyBuilder as _, PopConfig, Verifier};

use crate::support::*;

#[tokio::test]
async fn rejects_replayed_jti_rpl_02() {
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof(&token);
    assert_ok(&f.dpop(&token, &proof).await, "dpop");
    // The same request retried with the same proof is a replay (RPL-07).
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    // A fresh proof for the same token is fine.
    assert_ok(&f.dpop(&token, &f.proof(&token)).await, "dpop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_proof_sent_20_times_at_once_succeeds_exactly_once() {
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof(&token);
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut svc = service(Arc::clone(&f.verifier));
        let request = req("GET", PATH, &[&format!("DPoP {token}")], &[&proof]);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            svc.ready()
                .await
                .unwrap()
                .call(request)
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        19,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn jti_is_scoped_to_the_proof_key_rpl_06() {
    let f = Fixture::new();
    let token = f.token();
    let header = f.client.proof_header();
    let p1 = f.proof_custom(header.clone(), json!({"jti": "same"}), &token);
    assert_ok(&f.dpop(&token, &p1).await, "dpop");
    // Same key, same jti, different URL: still a replay (the scope is the key, not the URI).
    let p2 = f.proof_custom(
        header,
        json!({"jti": "same", "htu": format!("{ORIGIN}/other")}),
        &token,
    );
    let response = f
        .send(req("GET", "/other", &[&format!("DPoP {token}")], &[&p2]))
        .await;
    assert_refused(&response, 401, Some("DPoP"), "invalid_dpop_proof");
    // Another client's key may use the same jti.
    let mut g = Fixture::new();
    g.client = tower_pop::dpop::signer::ProofSigner::generate(tower_pop::Algorithm::EdDSA).unwrap();
    let other_token = g.token();
    let p3 = g.proof_custom(
        g.client.proof_header(),
        json!({"jti": "same"}),
        &other_token,
    );
    assert_ok(&g.dpop(&other_token, &p3).await, "dpop");
}

fn verifier_with_store(f: &Fixture, store: Arc<dyn ReplayCache>) -> Arc<Verifier> {
    Arc::new(Verifier::new(
        PopConfig::builder()
            .public_origin(ORIGIN)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks_json(jwks_for(&f.issuer_key, "as-1"))
            .clock(Arc::new(f.clock.clone()))
            .replay_cache(store)
            .build()
            .unwrap(),
    ))
}

#[tokio::test]
async fn entries_expire_with_the_iat_window_rpl_04() {
    let mut f = Fixture::new();
    let store = Arc::new(MemoryReplayCache::new(100));
    f.verifier = verifier_with_store(&f, store.clone());
    let token = f.token_patched(json!({"exp": NOW + 3600}));
    let proof = f.proof(&token);
    assert_ok(&f.dpop(&token, &proof).await, "dpop");
    assert_eq!(store.len(), 1);
    // Kept for the window (61 s), the 5 s retention margin and at most one 10 s time slice.
    f.clock.advance(61 + 5 + 10);
    store.sweep(NOW + 61 + 5 + 10);
    assert!(store.is_empty());
    // The replay now fails on the iat check instead.
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_request_a_little_behind_another_still_finds_the_entry_rpl_04() {
    let mut f = Fixture::new();
    let store = Arc::new(ForgetfulStore::default());
    f.verifier = verifier_with_store(&f, store.clone());
    let token = f.token_patched(json!({"exp": NOW + 3600}));
    let proof = f.proof(&token);
    assert_ok(&f.dpop(&token, &proof).await, "dpop");
    // Another instance, whose clock runs 4 s ahead, has let go every entry expired by its
    // clock: past the proof's window (iat + 60 s, + 1 s) but within the retention margin.
    store.time_passes(NOW + 61 + 4);
    // Here the proof is in the last second of its window: its replay finds the entry.
    f.clock.set(NOW + 60);
    assert_refused(
        &f.dpop(&token, &proof).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
}

#[tokio::test]
async fn full_store_refuses_with_503_and_never_accepts_a_replay() {
    let mut f = Fixture::new();
    let store = Arc::new(MemoryReplayCache::new(2));
    f.verifier = verifier_with_store(&f, store.clone());
    let token = f.token();
    let first = f.proof(&token);
    assert_ok(&f.dpop(&token, &first).await, "dpop");
    assert_ok(&f.dpop(&token, &f.proof(&token)).await, "dpop");
    let response = f.dpop(&token, &f.proof(&token)).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("www-authenticate").is_none());
    assert_refused(
        &f.dpop(&token, &first).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    assert_eq!(store.len(), 2);
    // Once the window (and the 5 s retention margin) has passed, room is made again.
    f.clock.advance(66);
    let later = f
        .client
        .proof_at("GET", URL, Some(&token), None, NOW + 66)
        .unwrap();
    assert_ok(&f.dpop(&token, &later).await, "dpop");
    assert_eq!(store.len(), 1);
}

/// A store whose backend is down: the request must fail closed.
#[derive(Debug)]
struct DownStore;

impl ReplayCache for DownStore {
    fn insert_if_absent(
        &self,
        _: ReplayEntry,
    ) -> BoxFuture<'_, Result<ReplayOutcome, ReplayError>> {
        Box::pin(async { Err(ReplayError::unavailable("connection refused")) })
    }
}

#[tokio::test]
async fn unavailable_store_fails_closed_dpop_19() {
    let mut f = Fixture::new();
    f.verifier = verifier_with_store(&f, Arc::new(DownStore));
    let token = f.token();
    let response = f.dpop(&token, &f.proof(&token)).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("www-authenticate").is_none());
    assert_eq!(
        response
            .extensions()
            .get::<tower_pop::PopError>()
            .unwrap()
            .kind(),
        tower_pop::PopErrorKind::ReplayStoreUnavailable
    );
}

#[tokio::test]
async fn instances_sharing_a_store_refuse_each_others_replays_rpl_05() {
    let f = Fixture::new();
    let store: Arc<dyn ReplayCache> = Arc::new(MemoryReplayCache::new(100));
    let a = verifier_with_store(&f, Arc::clone(&store));
    let b = verifier_with_store(&f, store);
    let token = f.token();
    let proof = f.proof(&token);
    let request = || req("GET", PATH, &[&format!("DPoP {token}")], &[&proof]);
    let response = service(a).oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 200);
    let response = service(b).oneshot(request()).await.unwrap();
    assert_refused(&response, 401, Some("DPoP"), "invalid_dpop_proof");
}

#[tokio::test]
async fn the_same_verifier_wrapped_twice_records_the_jti_once() {
    use std::convert::Infallible;
    use tower::{ServiceBuilder, service_fn};
    use tower_pop::RequirePopLayer;
    let f = Fixture::new();
    let service = ServiceBuilder::new()
        .layer(RequirePopLayer::new(Arc::clone(&f.verifier)))
        .layer(
            RequirePopLayer::new(Arc::clone(&f.verifier))
                .require_scope("read")
                .unwrap(),
        )
        .service(service_fn(|_req: http::Request<String>| async {
            Ok::<_, Infallible>(http::Response::new(String::from("ok")))
        }));
    let token = f.token();
    let proof = f.proof(&token);
    let request = req("GET", PATH, &[&format!("DPoP {token}")], &[&proof]);
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    // The inner layer still applies its own policy to the reused result.
    let strict = ServiceBuilder::new()
        .layer(RequirePopLayer::new(Arc::clone(&f.verifier)))
        .layer(
            RequirePopLayer::new(Arc::clone(&f.verifier))
                .require_scope("admin")
                .unwrap(),
        )
        .service(service_fn(|_req: http::Request<String>| async {
            Ok::<_, Infallible>(http::Response::new(String::from("ok")))
        }));
    let proof = f.proof(&token);
    let request = req("GET", PATH, &[&format!("DPoP {token}")], &[&proof]);
    let response = strict.oneshot(request).await.unwrap();
    // The scope claim decides: read passes a route needing read, not admin (JWTAT-11; one scope).
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"DPoP error="insufficient_scope""#)
            && challenge.contains(r#"scope="admin""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_503_carries_retry_after() {
    let f = Fixture::with(|b| b.replay_cache(Arc::new(tower_pop::MemoryReplayCache::new(1))));
    let token = f.token();
    assert_eq!(f.dpop(&token, &f.proof(&token)).await.status(), 200);
    f.clock.advance(1);
    let response = f.dpop(&token, &f.proof(&token)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert!(response.headers().get("www-authenticate").is_none());
}

/// One authenticated client cannot fill the store: past its quota its key is refused with 429
/// and `Retry-After` (nothing recorded), while another key, with a store that still has room,
/// is served; replays and refusals do not count against the quota.
#[tokio::test]
async fn one_key_over_its_quota_gets_429_while_another_key_gets_200() {
    let store = Arc::new(MemoryReplayCache::new(100));
    let store_for_config: Arc<dyn ReplayCache> = store.clone();
    let f = Fixture::with(|b| b.proof_key_quota(3).replay_cache(store_for_config));
    let token = f.token();
    let replayed = f.proof(&token);
    assert_ok(&f.dpop(&token, &replayed).await, "dpop");
    // A replay is refused as one and is not counted.
    assert_refused(
        &f.dpop(&token, &replayed).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    for _ in 0..2 {
        assert_ok(&f.dpop(&token, &f.proof(&token)).await, "dpop");
    }
    for _ in 0..3 {
        let response = f.dpop(&token, &f.proof(&token)).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "2");
        assert!(response.headers().get("www-authenticate").is_none());
        assert_eq!(
            response
                .extensions()
                .get::<tower_pop::PopError>()
                .unwrap()
                .kind(),
            tower_pop::PopErrorKind::ProofKeyOverQuota
        );
    }
    assert_eq!(store.len(), 3, "nothing recorded past the quota");
    // Another client, with its own key and token, on the same verifier.
    let other =
        tower_pop::dpop::signer::ProofSigner::generate(tower_pop::Algorithm::ES256).unwrap();
    let other_token = f.token_patched(json!({"cnf": {"jkt": other.thumbprint()}}));
    for _ in 0..3 {
        let proof = other
            .proof_at("GET", URL, Some(&other_token), None, NOW)
            .unwrap();
        assert_ok(&f.dpop(&other_token, &proof).await, "dpop");
    }
    // Once the proof window has passed, the first key is served again.
    f.clock.advance(120);
    let later = f
        .client
        .proof_at("GET", URL, Some(&token), None, NOW + 120)
        .unwrap();
    assert_ok(&f.dpop(&token, &later).await, "dpop");
}

/// Two APIs sharing one replay store (one Redis for several services): a client that uses the
/// same key and `jti` with both is not refused by the second as a replay of the first, and
/// each API still refuses its own replays. The namespace defaults to the public origin (or the
/// RFC 9728 resource), and can be named.
#[tokio::test]
async fn apis_sharing_a_store_do_not_share_entries_rpl_05() {
    let f = Fixture::new();
    let store = Arc::new(MemoryReplayCache::new(100));
    let api = |origin: &str, namespace: Option<&str>| {
        let mut builder = PopConfig::builder()
            .public_origin(origin)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks_json(jwks_for(&f.issuer_key, "as-1"))
            .clock(Arc::new(f.clock.clone()))
            .replay_cache(store.clone() as Arc<dyn ReplayCache>);
        if let Some(namespace) = namespace {
            builder = builder.replay_namespace(namespace);
        }
        Arc::new(Verifier::new(builder.build().unwrap()))
    };
    let token = f.token();
    let proof_for = |origin: &str| {
        f.proof_custom(
            f.client.proof_header(),
            json!({"jti": "one-jti", "htu": format!("{origin}{PATH}")}),
            &token,
        )
    };
    let send = |verifier: &Arc<Verifier>, proof: String| {
        let mut svc = service(Arc::clone(verifier));
        let request = req("GET", PATH, &[&format!("DPoP {token}")], &[&proof]);
        async move { svc.ready().await.unwrap().call(request).await.unwrap() }
    };
    let (a, b) = ("https://a.example", "https://b.example");
    let (api_a, api_b) = (api(a, None), api(b, None));
    assert_ok(&send(&api_a, proof_for(a)).await, "dpop");
    assert_ok(&send(&api_b, proof_for(b)).await, "dpop");
    assert_eq!(store.len(), 2, "one entry per API");
    // Each API's own replay is still refused.
    assert_refused(
        &send(&api_a, proof_for(a)).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    assert_refused(
        &send(&api_b, proof_for(b)).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    // Two instances of one API (one namespace, named) share entries: a replay across them is
    // refused.
    let (one, two) = (api(a, Some("api-c")), api(a, Some("api-c")));
    let proof = f.proof_custom(
        f.client.proof_header(),
        json!({"jti": "another-jti", "htu": format!("{a}{PATH}")}),
        &token,
    );
    assert_ok(&send(&one, proof.clone()).await, "dpop");
    assert_refused(
        &send(&two, proof).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
}
