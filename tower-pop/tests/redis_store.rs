//! The Redis replay store against a real `redis-server` on 127.0.0.1 (RPL-02, RPL-03, RPL-05,
//! DPOP-19). Needs `redis-server` and `redis-cli` on `PATH` (`apt-get install redis-server`).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tower::{Service, ServiceExt};
use tower_pop::replay::{
    RedisConfigError, RedisReplayCache, ReplayCache, ReplayEntry, ReplayOutcome,
};
use tower_pop::{PopConfig, Verifier};

use crate::support::*;
use tower_pop_test_support::{RedisServer, free_port};

/// A TLS-only server whose certificate (for IP 127.0.0.1) a fresh test CA issued; returns
/// the CA's PEM too.
fn start_tls() -> (RedisServer, String) {
    let server = RedisServer::start_tls(write_test_pki);
    let ca = std::fs::read_to_string(server.dir().join("ca.pem")).unwrap();
    (server, ca)
}

/// A test CA and a server certificate for IP 127.0.0.1 it issued, as PEM files in `dir`.
fn write_test_pki(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tower-pop test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "tower-pop test redis");
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

async fn store(server: &RedisServer) -> RedisReplayCache {
    let store = RedisReplayCache::builder(server.url())
        .connect()
        .await
        .unwrap();
    store.ping().await.unwrap();
    store
}

fn entry(key: u8) -> ReplayEntry {
    ReplayEntry::new([key; 32], NOW, NOW + 70)
}

/// 20 inserts of `entry` at once (released together by a barrier), spread over `stores` in
/// turn: each insert's outcome.
pub(crate) async fn race_twenty_copies(
    stores: &[Arc<RedisReplayCache>],
    entry: ReplayEntry,
) -> Vec<ReplayOutcome> {
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&stores[i % stores.len()]);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.insert_if_absent(entry).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn fresh_then_replayed_rpl_02() {
    let server = RedisServer::start();
    let store = store(&server).await;
    assert_eq!(
        store.insert_if_absent(entry(1)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    assert_eq!(
        store.insert_if_absent(entry(1)).await.unwrap(),
        ReplayOutcome::Replayed
    );
    assert_eq!(
        store.insert_if_absent(entry(2)).await.unwrap(),
        ReplayOutcome::Fresh
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn twenty_concurrent_inserts_on_two_instances_exactly_one_fresh_rpl_05() {
    let server = RedisServer::start();
    let stores = [
        Arc::new(store(&server).await),
        Arc::new(store(&server).await),
    ];
    let outcomes = race_twenty_copies(&stores, entry(9)).await;
    let fresh = outcomes
        .iter()
        .filter(|o| **o == ReplayOutcome::Fresh)
        .count();
    assert_eq!(fresh, 1, "{outcomes:?}");
    assert_eq!(outcomes.len(), 20);
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn ttl_in_redis_is_entry_ttl_plus_skew_margin() {
    let server = RedisServer::start();
    let default = store(&server).await;
    let e = entry(3); // ttl 70 s
    assert_eq!(default.ttl_millis(&e), 100_000);
    default.insert_if_absent(e).await.unwrap();
    let pttl: u64 = server
        .cli(&["PTTL", &default.redis_key(&e)])
        .unwrap()
        .parse()
        .unwrap();
    assert!((95_000..=100_000).contains(&pttl), "{pttl}");

    let custom = RedisReplayCache::builder(server.url())
        .skew_margin(Duration::from_secs(5))
        .key_prefix("other:")
        .connect()
        .await
        .unwrap();
    custom.insert_if_absent(e).await.unwrap();
    let pttl: u64 = server
        .cli(&["PTTL", &custom.redis_key(&e)])
        .unwrap()
        .parse()
        .unwrap();
    assert!((70_000..=75_000).contains(&pttl), "{pttl}");
}

fn verifier_with(f: &Fixture, store: Arc<dyn ReplayCache>) -> Arc<Verifier> {
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

fn jti_of(proof: &str) -> String {
    let payload = proof.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

async fn dpop_via(verifier: &Arc<Verifier>, token: &str, proof: &str) -> http::Response<String> {
    let request = req("GET", PATH, &[&format!("DPoP {token}")], &[proof]);
    service(Arc::clone(verifier))
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn two_verifiers_share_one_redis_and_keys_hold_no_jti_rpl_03_rpl_05() {
    let server = RedisServer::start();
    let f = Fixture::new();
    let a = verifier_with(&f, Arc::new(store(&server).await));
    let b = verifier_with(&f, Arc::new(store(&server).await));

    let token = f.token();
    let proof = f.proof(&token);
    assert_ok(&dpop_via(&a, &token, &proof).await, "dpop");
    // The same proof on the other instance is a replay.
    assert_refused(
        &dpop_via(&b, &token, &proof).await,
        401,
        Some("DPoP"),
        "invalid_dpop_proof",
    );
    // A new proof on the other instance is fine.
    assert_ok(&dpop_via(&b, &token, &f.proof(&token)).await, "dpop");

    let keys = server.cli(&["KEYS", "*"]).unwrap();
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let jti = jti_of(&proof);
    for key in keys {
        let hash = key.strip_prefix("tower-pop:dpop:").expect("default prefix");
        assert_eq!(URL_SAFE_NO_PAD.decode(hash).unwrap().len(), 32, "{key}");
        assert!(!key.contains(&jti), "{key}");
    }
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn redis_down_fails_closed_within_the_timeout_dpop_19() {
    let mut server = RedisServer::start();
    let store = store(&server).await;
    server.kill();
    for i in 0..5 {
        let started = Instant::now();
        let result = store.insert_if_absent(entry(40 + i)).await;
        assert!(result.is_err(), "{result:?}");
        // The 250 ms call timeout, with room for a loaded machine; the connect timeout is 2 s.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    // Through the layer: 503, never 200.
    let mut f = Fixture::new();
    f.verifier = verifier_with(&f, Arc::new(store));
    let token = f.token();
    let response = f.dpop(&token, &f.proof(&token)).await;
    assert_eq!(response.status().as_u16(), 503);
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn recovers_by_itself_after_redis_restarts() {
    let mut server = RedisServer::start();
    let store = store(&server).await;
    assert_eq!(
        store.insert_if_absent(entry(50)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    server.kill();
    assert!(store.insert_if_absent(entry(51)).await.is_err());
    server.restart();
    // The entries went with the old process; the same store object must reconnect.
    let deadline = Instant::now() + Duration::from_secs(15);
    let outcome = loop {
        match store.insert_if_absent(entry(52)).await {
            Ok(outcome) => break outcome,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery within 15 s: {e}"),
        }
    };
    assert_eq!(outcome, ReplayOutcome::Fresh);
    assert_eq!(
        store.insert_if_absent(entry(52)).await.unwrap(),
        ReplayOutcome::Replayed
    );
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn slow_redis_times_out_and_the_refused_proof_stays_burned() {
    let server = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let store = RedisReplayCache::builder(server.url())
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    store.ping().await.unwrap();
    // Block the server for two seconds from another connection, and wait until it is blocked.
    let mut sleeper = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &server.port().to_string()])
        .args(["DEBUG", "SLEEP", "2"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_blocked(server.port()).await;
    let started = Instant::now();
    let result = store.insert_if_absent(entry(60)).await;
    let took = started.elapsed();
    assert!(result.is_err(), "{result:?}");
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(700),
        "{took:?}"
    );
    sleeper.wait().unwrap();
    // Redis ran the queued SET after the sleep: the refused proof cannot be replayed later.
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = loop {
        match store.insert_if_absent(entry(60)).await {
            Ok(outcome) => break outcome,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("store did not recover after the sleep: {e}"),
        }
    };
    assert_eq!(outcome, ReplayOutcome::Replayed);
    assert_eq!(
        store.insert_if_absent(entry(61)).await.unwrap(),
        ReplayOutcome::Fresh
    );
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn password_in_url_authenticates_and_is_never_printed() {
    let server = RedisServer::start_with(&["--requirepass", "hunter2-secret"]);
    let url = format!("redis://:hunter2-secret@127.0.0.1:{}/0", server.port());
    let builder = RedisReplayCache::builder(url.clone());
    assert!(!format!("{builder:?}").contains("hunter2"), "{builder:?}");
    let store = builder.connect().await.unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains(&format!("127.0.0.1:{}", server.port())),
        "{shown}"
    );
    assert_eq!(
        store.insert_if_absent(entry(70)).await.unwrap(),
        ReplayOutcome::Fresh
    );

    let wrong = format!("redis://:wrong@127.0.0.1:{}/0", server.port());
    let refused = RedisReplayCache::builder(wrong).connect().await.unwrap();
    let result = refused.insert_if_absent(entry(71)).await;
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn rediss_url_is_accepted_and_fails_closed_without_a_server() {
    let port = free_port(); // nothing listens there
    let store = RedisReplayCache::builder(format!("rediss://:pw-x@127.0.0.1:{port}/0"))
        .connect()
        .await
        .unwrap();
    assert!(format!("{store:?}").contains("rediss://***@127.0.0.1"));
    assert!(store.insert_if_absent(entry(80)).await.is_err());

    let insecure = RedisReplayCache::builder("rediss://:pw-x@127.0.0.1:6380/#insecure")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(insecure, RedisConfigError::InsecureTls { .. }));
    assert!(!insecure.to_string().contains("pw-x"), "{insecure}");

    let invalid = RedisReplayCache::builder("http://user:pw-x@127.0.0.1/")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(invalid, RedisConfigError::InvalidUrl { .. }));
    assert!(!invalid.to_string().contains("pw-x"), "{invalid}");

    let zero = RedisReplayCache::builder("redis://127.0.0.1/")
        .timeout(Duration::ZERO)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(zero, RedisConfigError::ZeroTimeout));
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn rediss_with_the_servers_ca_works_and_an_untrusted_certificate_fails_closed() {
    let (server, ca) = start_tls();
    let url = format!("rediss://127.0.0.1:{}/0", server.port());
    let store = RedisReplayCache::builder(url.clone())
        .tls_ca_pem(ca.clone())
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert_eq!(
        store.insert_if_absent(entry(90)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    assert_eq!(server.cli(&["DBSIZE"]).as_deref(), Some("1"));

    // The system's roots do not include the test CA: the handshake fails, nothing is accepted.
    let untrusted = RedisReplayCache::builder(url).connect().await.unwrap();
    assert!(untrusted.ping().await.is_err());
    assert!(untrusted.insert_if_absent(entry(91)).await.is_err());
    assert_eq!(server.cli(&["DBSIZE"]).as_deref(), Some("1"));

    // A CA for a plain URL, or one that is not PEM, is a configuration error.
    let plain = RedisReplayCache::builder(format!("redis://127.0.0.1:{}/", server.port()))
        .tls_ca_pem(ca)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(plain, RedisConfigError::CaWithoutTls { .. }));
    let garbage = RedisReplayCache::builder("rediss://127.0.0.1/")
        .tls_ca_pem("not a certificate")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(garbage, RedisConfigError::InvalidTlsCa));
}

async fn quota_store(server: &RedisServer, proofs: u64) -> RedisReplayCache {
    let store = RedisReplayCache::builder(server.url())
        .key_quota(proofs, Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    store.ping().await.unwrap();
    store
}

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn key_quota_is_shared_by_instances_and_counts_only_recorded_entries() {
    let server = RedisServer::start();
    let a = quota_store(&server, 3).await;
    let b = quota_store(&server, 3).await;
    let owned = |key: u8, owner: u8| entry(key).with_owner([owner; 32]);
    assert_eq!(
        a.insert_if_absent(owned(1, 7)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    // A replay, on the other instance: refused as one, not counted.
    assert_eq!(
        b.insert_if_absent(owned(1, 7)).await.unwrap(),
        ReplayOutcome::Replayed
    );
    assert_eq!(
        b.insert_if_absent(owned(2, 7)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    assert_eq!(
        a.insert_if_absent(owned(3, 7)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    // The quota of 3 holds across both instances; nothing is written past it.
    assert_eq!(
        b.insert_if_absent(owned(4, 7)).await.unwrap(),
        ReplayOutcome::OverQuota
    );
    assert_eq!(
        a.insert_if_absent(owned(4, 7)).await.unwrap(),
        ReplayOutcome::OverQuota
    );
    // Another key is unaffected, and an entry without an owner is not counted.
    assert_eq!(
        a.insert_if_absent(owned(4, 8)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    assert_eq!(
        a.insert_if_absent(entry(5)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    let keys = server.cli(&["KEYS", "*"]).unwrap();
    assert_eq!(keys.lines().count(), 5 + 2, "5 entries, 2 counters: {keys}");
    assert!(
        RedisReplayCache::builder(server.url())
            .key_quota(0, Duration::from_secs(60))
            .connect()
            .await
            .is_err()
    );
}

/// Through the verifier: the shared quota refuses one key with 429 while another key, on the
/// other instance, gets 200.
#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn key_quota_through_two_verifiers_refuses_one_key_with_429() {
    let server = RedisServer::start();
    let f = Fixture::new();
    let a = verifier_with(&f, Arc::new(quota_store(&server, 2).await));
    let b = verifier_with(&f, Arc::new(quota_store(&server, 2).await));
    let token = f.token();
    assert_ok(&dpop_via(&a, &token, &f.proof(&token)).await, "dpop");
    assert_ok(&dpop_via(&b, &token, &f.proof(&token)).await, "dpop");
    let response = dpop_via(&a, &token, &f.proof(&token)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert!(response.headers().get("www-authenticate").is_none());
    let other =
        tower_pop::dpop::signer::ProofSigner::generate(tower_pop::Algorithm::ES256).unwrap();
    let other_token = f.token_patched(serde_json::json!({"cnf": {"jkt": other.thumbprint()}}));
    let proof = other
        .proof_at("GET", URL, Some(&other_token), None, NOW)
        .unwrap();
    assert_ok(&dpop_via(&b, &other_token, &proof).await, "dpop");
}

/// Two APIs sharing one Redis count separate key quotas: with a store quota of one proof per
/// key, one client key gets one proof through each API, not one through both.
#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn apis_sharing_a_redis_count_separate_quotas() {
    let server = RedisServer::start();
    let store: Arc<dyn tower_pop::replay::ReplayCache> = Arc::new(quota_store(&server, 1).await);
    let f = Fixture::new();
    let token = f.token();
    for origin in ["https://a.example", "https://b.example"] {
        let verifier = Arc::new(Verifier::new(
            PopConfig::builder()
                .public_origin(origin)
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .jwks_json(jwks_for(&f.issuer_key, "as-1"))
                .clock(Arc::new(f.clock.clone()))
                .replay_cache(Arc::clone(&store))
                .build()
                .unwrap(),
        ));
        let mut svc = service(Arc::clone(&verifier));
        let fresh = || {
            let url = format!("{origin}{PATH}");
            let proof = f
                .client
                .proof_at("GET", &url, Some(&token), None, NOW)
                .unwrap();
            req("GET", PATH, &[&format!("DPoP {token}")], &[&proof])
        };
        let response = svc.ready().await.unwrap().call(fresh()).await.unwrap();
        assert_ok(&response, "dpop");
        // The second proof of the key on the same API is over the store's quota.
        let response = svc.ready().await.unwrap().call(fresh()).await.unwrap();
        assert_eq!(response.status(), 429, "{origin}");
    }
}

/// Wait (at most 5 s) until the Redis on `port` stops answering `PING` within 50 ms.
async fn wait_until_blocked(port: u16) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    for _ in 0..100 {
        let mut probe = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        probe.write_all(b"PING\r\n").await.unwrap();
        let mut reply = [0; 16];
        match tokio::time::timeout(Duration::from_millis(50), probe.read(&mut reply)).await {
            Err(_) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    panic!("DEBUG SLEEP did not block the server within 5 s");
}
