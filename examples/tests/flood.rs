//! Introspection under a flood, on both example servers: one client (127.0.0.2) sends 10,000
//! random opaque tokens (64 connections, about 2,000 a second) while 50 honest clients (127.0.0.10-59), each with its own opaque
//! DPoP-bound token, keep getting 200 within a second, uncached and cached. The authorization
//! server takes 600 ms a call, so a flood that could take every call slot would hold honest
//! users for seconds and then refuse them.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;

use crate::issuer::{AuthServer, start};
use crate::server::{AUDIENCE, SERVERS, now};

const FLOOD: usize = 10_000;
const FLOOD_CONNECTIONS: usize = 64;
/// Each flooding connection's pause between requests: about 2,000 a second in all, enough to
/// keep every slot the flooder may hold busy, without taking the CPU the other tests of this
/// binary run on.
const FLOOD_PAUSE: Duration = Duration::from_millis(25);
const HONEST: usize = 50;

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_flood_from_one_client_does_not_starve_the_others() {
    for name in SERVERS {
        flood(name).await;
    }
}

async fn flood(name: &str) {
    let a = AuthServer::start().await;
    *a.state.introspection_delay.lock().unwrap() = Duration::from_millis(600);
    let flags = a.introspection_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Arc::new(start(name, &[&a.issuer], &flags).await);
    let key = Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap());
    for i in 0..HONEST {
        let active = json!({"active": true, "iss": a.issuer, "aud": AUDIENCE, "sub": format!("user-{i}"),
            "exp": now() + 300, "cnf": {"jkt": key.thumbprint()}});
        a.state
            .introspections
            .lock()
            .unwrap()
            .insert(format!("honest-{i}"), active);
    }

    // The flood: random opaque tokens from one address until 10,000 are sent and the honest
    // clients are done (every loop is bounded).
    let sent = Arc::new(AtomicUsize::new(0));
    let honest_done = Arc::new(AtomicBool::new(false));
    let flooder = client_from("127.0.0.2");
    let flood: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|worker| {
            let (sent, done, flooder, server) = (
                Arc::clone(&sent),
                Arc::clone(&honest_done),
                flooder.clone(),
                Arc::clone(&server),
            );
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for n in 0..FLOOD * 10 {
                    if sent.load(Ordering::SeqCst) >= FLOOD && done.load(Ordering::SeqCst) {
                        break;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    let token = format!("random-{worker}-{n}-{}", rand_suffix(worker, n));
                    let status = flooder
                        .get(server.url("/whoami"))
                        .header("authorization", format!("Bearer {token}"))
                        .send()
                        .await
                        .map_or(0, |r| r.status().as_u16());
                    statuses.push(status);
                    tokio::time::sleep(FLOOD_PAUSE).await;
                }
                statuses
            })
        })
        .collect();
    // The flood is on: the authorization server is busy with it.
    for _ in 0..400 {
        if a.state.introspection_calls.load(Ordering::SeqCst) >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        a.state.introspection_calls.load(Ordering::SeqCst) >= 8,
        "{name}: flooding"
    );

    // 50 honest clients arriving over four seconds (about 8 calls in flight: a quarter of the
    // slots, as the flooder's share), each: a first request (its token is not cached: an
    // introspection call of 600 ms) and two more (cached).
    let honest: Vec<_> = (0..HONEST)
        .map(|i| {
            let (server, key) = (Arc::clone(&server), Arc::clone(&key));
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(80 * i as u64)).await;
                let client = client_from(&format!("127.0.0.{}", 10 + i));
                let token = format!("honest-{i}");
                let mut answers = Vec::new();
                for _ in 0..3 {
                    let url = server.url("/whoami");
                    let proof = key.proof("GET", &url, Some(&token), None).unwrap();
                    let started = Instant::now();
                    let status = client
                        .get(&url)
                        .header("authorization", format!("DPoP {token}"))
                        .header("dpop", proof)
                        .send()
                        .await
                        .map_or(0, |r| r.status().as_u16());
                    answers.push((status, started.elapsed()));
                }
                answers
            })
        })
        .collect();
    for (i, client) in honest.into_iter().enumerate() {
        for (n, (status, took)) in client.await.unwrap().into_iter().enumerate() {
            assert_eq!(status, 200, "{name}: honest client {i}, request {n}");
            // A starved call would wait out the 500 ms slot wait and get 503; the first also
            // waits for the 600 ms introspection answer.
            let bound = Duration::from_millis(if n == 0 { 1500 } else { 1000 });
            assert!(
                took < bound,
                "{name}: honest client {i}, request {n} took {took:?}"
            );
        }
    }
    assert!(
        sent.load(Ordering::SeqCst) < FLOOD || !flood.iter().all(|f| f.is_finished()),
        "{name}: the flood was still on while the honest clients were served"
    );
    honest_done.store(true, Ordering::SeqCst);
    let mut statuses = Vec::new();
    for worker in flood {
        statuses.extend(
            tokio::time::timeout(Duration::from_secs(120), worker)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(statuses.len() >= FLOOD, "{name}: {} sent", statuses.len());
    // Every flood request was refused: 401 (inactive) or 503 (over its share), never a 200
    // or a 500.
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{name}: {:?}",
        statuses
            .iter()
            .filter(|s| **s != 401 && **s != 503)
            .take(5)
            .collect::<Vec<_>>()
    );
    let calls = a.state.introspection_calls.load(Ordering::SeqCst);
    assert!(
        calls < FLOOD / 2,
        "{name}: the flood reached the authorization server {calls} times"
    );
}

/// A per-request suffix, so no two flood tokens are alike (nothing is cached for them).
fn rand_suffix(worker: usize, n: usize) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(worker);
    h.write_usize(n);
    h.finish()
}
