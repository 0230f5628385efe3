//! Two example-server instances behind one API (an axum one and an actix one), and a
//! `pop_gateway`: a replay store shared through a real redis-server, and a shared nonce secret
//! (RFC 9449 §9, §11.1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;
use tower_pop_test_support::RedisServer;

use crate::gateway::Upstream;
use crate::server::{AUDIENCE, ISSUER, Server, assert_exactly_one_200};
use examples_common::http::Reply;

/// The URL clients use for both instances (as behind a load balancer).
const PUBLIC: &str = "https://api.shared.test";

fn nonce_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 401, "{reply:?}");
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(
        crate::server::error_in(challenge, "DPoP", "use_dpop_nonce"),
        "{challenge}"
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.header("dpop-nonce").expect("a DPoP-Nonce").to_owned()
}

use crate::server::dpop_get as call;

#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn two_instances_share_one_redis_and_one_nonce_secret() {
    let mut redis = RedisServer::start();
    let secret = std::env::temp_dir().join(format!("tower-pop-nonce-{}.key", std::process::id()));
    std::fs::write(&secret, "an example secret of at least thirty-two bytes\n").unwrap();
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let redis_url = redis.url();
    let secret_path = secret.to_string_lossy().into_owned();
    let extra = [
        "--public-url",
        PUBLIC,
        "--redis",
        &redis_url,
        "--require-nonce",
        "--nonce-secret-file",
        &secret_path,
    ];
    let a = Server::start_with("axum_resource_server", &extra, Arc::clone(&issuer)).await;
    let b = Server::start_with("actix_resource_server", &extra, Arc::clone(&issuer)).await;
    // The gateway makes its Redis connection at start-up, on another runtime than the threads
    // serving requests use it from.
    let upstream = Upstream::start().await;
    let upstream_url = upstream.url();
    let gateway_extra = [&extra[..], &["--upstream", &upstream_url]].concat();
    let g = Server::start_with("pop_gateway", &gateway_extra, Arc::clone(&issuer)).await;
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = a.token(Some(client.thumbprint()));
    let url = format!("{PUBLIC}/whoami");

    // A asks for a nonce; B accepts A's nonce.
    let nonce = nonce_of(
        &call(
            &a,
            &token,
            &client.proof("GET", &url, Some(&token), None).unwrap(),
        )
        .await,
    );
    let proof = client
        .proof("GET", &url, Some(&token), Some(&nonce))
        .unwrap();
    let ok = call(&b, &token, &proof).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    // The proof B accepted is a replay at A and at the gateway, which never forwards it.
    for s in [&a, &g] {
        let replay = call(s, &token, &proof).await;
        assert_eq!(replay.status, 401);
        assert!(
            replay
                .header("www-authenticate")
                .unwrap()
                .contains("invalid_dpop_proof")
        );
    }
    assert_eq!(upstream.count(), 0);

    // 20 copies of one proof spread over all three instances at once: exactly one 200.
    let proof = client
        .proof("GET", &url, Some(&token), Some(&nonce))
        .unwrap();
    assert_exactly_one_200(&[a.addr, b.addr, g.addr], &format!("DPoP {token}"), &proof).await;

    // Redis gone: fresh proofs get 503 everywhere, never 200.
    redis.kill();
    for s in [&a, &b, &g] {
        let r = call(
            s,
            &token,
            &client
                .proof("GET", &url, Some(&token), Some(&nonce))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 503, "{r:?}");
        assert!(
            r.header("www-authenticate")
                .is_none_or(|c| !c.contains("error="))
        );
    }
    // Redis back on the same port: both heal without a restart (bounded wait).
    redis.restart();
    for s in [&a, &b, &g] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = call(
                s,
                &token,
                &client
                    .proof("GET", &url, Some(&token), Some(&nonce))
                    .unwrap(),
            )
            .await;
            if r.status == 200 {
                break;
            }
            assert_eq!(r.status, 503, "{r:?}");
            assert!(Instant::now() < deadline, "no recovery within 15 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let _ = std::fs::remove_file(secret);
}

#[tokio::test]
async fn without_a_shared_secret_each_instance_accepts_only_its_own_nonces() {
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let extra = ["--public-url", PUBLIC, "--require-nonce"];
    let a = Server::start_with("axum_resource_server", &extra, Arc::clone(&issuer)).await;
    let b = Server::start_with("actix_resource_server", &extra, Arc::clone(&issuer)).await;
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = a.token(Some(client.thumbprint()));
    let url = format!("{PUBLIC}/whoami");
    let nonce_a = nonce_of(
        &call(
            &a,
            &token,
            &client.proof("GET", &url, Some(&token), None).unwrap(),
        )
        .await,
    );
    let from_b = call(
        &b,
        &token,
        &client
            .proof("GET", &url, Some(&token), Some(&nonce_a))
            .unwrap(),
    )
    .await;
    let nonce_b = nonce_of(&from_b);
    assert_ne!(nonce_a, nonce_b);
    let ok = call(
        &b,
        &token,
        &client
            .proof("GET", &url, Some(&token), Some(&nonce_b))
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
}

/// Two APIs sharing one Redis: by default each keeps its keys under a prefix of its own,
/// derived from its public URL (or --resource); --redis-prefix names one.
#[tokio::test]
#[ignore = "needs redis-server: run bash tests/run.sh"]
async fn two_apis_sharing_one_redis_keep_apart() {
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let mut prefixes = Vec::new();
    for (public, extra) in [
        ("https://one.shared.test", None),
        ("https://two.shared.test", None),
        ("https://three.shared.test", Some("custom:")),
    ] {
        let mut args = vec!["--public-url", public, "--redis", &redis_url];
        if let Some(prefix) = extra {
            args.extend(["--redis-prefix", prefix]);
        }
        let s = Server::start_with("axum_resource_server", &args, Arc::clone(&issuer)).await;
        let token = s.token(Some(client.thumbprint()));
        let url = format!("{public}/whoami");
        let proof = client.proof("GET", &url, Some(&token), None).unwrap();
        assert_eq!(call(&s, &token, &proof).await.status, 200, "{public}");
        let keys = redis.cli(&["KEYS", "*"]).unwrap_or_default();
        let new: Vec<&str> = keys
            .lines()
            .filter(|k| !prefixes.iter().any(|p: &String| k.starts_with(p.as_str())))
            .collect();
        assert_eq!(new.len(), 1, "{public}: {keys}");
        let prefix = match extra {
            Some(prefix) => prefix.to_owned(),
            None => {
                let (head, _) = new[0].rsplit_once(':').unwrap();
                format!("{head}:")
            }
        };
        assert!(new[0].starts_with(&prefix), "{public}: {}", new[0]);
        prefixes.push(prefix);
    }
    assert_ne!(prefixes[0], prefixes[1], "two APIs, two prefixes");
    assert!(prefixes[0].starts_with("tower-pop:"));
}
