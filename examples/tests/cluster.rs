//! Issue #24: example-server instances sharing a real Redis Cluster (seven `redis-server`
//! nodes on loopback: three primaries with a replica each and a spare replica), through
//! `--redis-cluster`: a proof accepted by one instance is a replay at the others, and of 20
//! concurrent copies over all instances exactly one is accepted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;
use tower_pop_test_support::RedisCluster;

use crate::server::{AUDIENCE, ISSUER, Server, assert_exactly_one_200, dpop_get};

/// The URL clients use for every instance (as behind a load balancer).
const PUBLIC: &str = "https://api.cluster.test";

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn instances_share_the_cluster_and_a_proof_is_accepted_once() {
    let cluster = RedisCluster::start();
    let seeds = cluster.seeds();
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let mut extra = vec!["--public-url", PUBLIC];
    for seed in &seeds[..3] {
        extra.extend(["--redis-cluster", seed.as_str()]);
    }
    let instances = [
        Server::start_with("axum_resource_server", &extra, Arc::clone(&issuer)).await,
        Server::start_with("axum_resource_server", &extra, Arc::clone(&issuer)).await,
        Server::start_with("actix_resource_server", &extra, Arc::clone(&issuer)).await,
    ];
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = instances[0].token(Some(client.thumbprint()));
    let url = format!("{PUBLIC}/whoami");
    let proof = || client.proof("GET", &url, Some(&token), None).unwrap();

    // The cluster connection comes up in the background: wait (bounded) for a first 200.
    for instance in &instances {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = dpop_get(instance, &token, &proof()).await;
            if r.status == 200 {
                break;
            }
            assert_eq!(r.status, 503, "{r:?}");
            assert!(Instant::now() < deadline, "no cluster within 15 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Proofs accepted by one instance are replays at the others (their keys land on every
    // primary).
    for i in 0..30 {
        let proof = proof();
        let accepted = dpop_get(&instances[i % 3], &token, &proof).await;
        assert_eq!(accepted.status, 200, "{accepted:?}");
        for other in [1, 2] {
            let replay = dpop_get(&instances[(i + other) % 3], &token, &proof).await;
            assert_eq!(replay.status, 401, "{replay:?}");
            assert!(
                replay
                    .header("www-authenticate")
                    .is_some_and(|c| c.contains("invalid_dpop_proof")),
                "{replay:?}"
            );
        }
    }
    let addrs: Vec<_> = instances.iter().map(|s| s.addr).collect();
    assert_exactly_one_200(&addrs, &format!("DPoP {token}"), &proof()).await;
}

/// Item 3 through the example servers: with `--redis-wait-replicas 1`, a proof whose primary's
/// replicas are gone gets 503, never 200, and is burned; without the flag it is accepted.
#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn wait_replicas_refuses_a_proof_no_replica_acknowledged() {
    let mut cluster = RedisCluster::start();
    let seeds = cluster.seeds();
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let mut extra = vec!["--public-url", PUBLIC];
    for seed in &seeds[..3] {
        extra.extend(["--redis-cluster", seed.as_str()]);
    }
    let plain = Server::start_with("axum_resource_server", &extra, Arc::clone(&issuer)).await;
    extra.extend(["--redis-wait-replicas", "1", "--redis-wait-timeout", "200"]);
    let waiting = Server::start_with("actix_resource_server", &extra, Arc::clone(&issuer)).await;
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = plain.token(Some(client.thumbprint()));
    let url = format!("{PUBLIC}/whoami");
    let proof = || client.proof("GET", &url, Some(&token), None).unwrap();
    for instance in [&plain, &waiting] {
        let deadline = Instant::now() + Duration::from_secs(15);
        while dpop_get(instance, &token, &proof()).await.status != 200 {
            assert!(Instant::now() < deadline, "no cluster within 15 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Every replica gone: each proof's primary has none left to acknowledge it.
    for primary in 0..3 {
        for replica in cluster.replicas_of(primary) {
            cluster.node_mut(replica).kill();
        }
    }
    for _ in 0..5 {
        let sent = proof();
        let refused = dpop_get(&waiting, &token, &sent).await;
        assert_eq!(refused.status, 503, "{refused:?}");
        assert!(refused.header("retry-after").is_some(), "{refused:?}");
        // Burned: the primary took it, so it is a replay everywhere.
        assert_eq!(dpop_get(&plain, &token, &sent).await.status, 401);
        // Without the flag, the primaries alone take fresh proofs.
        assert_eq!(dpop_get(&plain, &token, &proof()).await.status, 200);
    }
}
