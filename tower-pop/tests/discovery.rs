//! Issuer discovery (RFC 8414 §3.1, OIDC Discovery §4) and the key cache, against a real
//! authorization server on loopback HTTPS. Fetches are counted at the server; time is a
//! manual clock, so the rate limit and refresh schedule are exact.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tower_pop::discovery::{DiscoveryError, DiscoveryOptions, IssuerKeys, RemoteConfigError};
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::jwks_for;
use tower_pop::{Algorithm, ManualClock};

use crate::auth_server::{AuthServer, Reply, STEP, pki};

const NOW: u64 = 1_700_000_000;
const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
const OIDC: &str = "/.well-known/openid-configuration";
const ES256: Algorithm = Algorithm::ES256;

/// A JWK Set with one fresh ES256 key per `kid`.
fn jwks(kids: &[&str]) -> String {
    let keys: Vec<Value> = kids
        .iter()
        .map(|kid| {
            let set: Value =
                serde_json::from_str(&jwks_for(&ProofSigner::generate(ES256).unwrap(), kid))
                    .unwrap();
            set["keys"][0].clone()
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

fn metadata(issuer: &str, jwks_uri: &str) -> Reply {
    Reply::json(&json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "token_endpoint": format!("{issuer}/token"),
        "dpop_signing_alg_values_supported": ["ES256"],
    }))
}

fn options(clock: &ManualClock) -> DiscoveryOptions {
    DiscoveryOptions::default()
        .root_ca_pem(pki().ca_pem.clone())
        .timeout(Duration::from_secs(3))
        .clock(Arc::new(clock.clone()))
}

/// A server publishing RFC 8414 metadata for its origin and a JWK Set with `kids` at `/jwks`.
async fn issuer_with(kids: &[&str]) -> (AuthServer, ManualClock, IssuerKeys) {
    let server = AuthServer::https().await;
    server.set(WELL_KNOWN, metadata(&server.origin(), &server.url("/jwks")));
    server.set(
        "/jwks",
        Reply::json(&serde_json::from_str(&jwks(kids)).unwrap()),
    );
    let clock = ManualClock::new(NOW);
    let keys = IssuerKeys::discover(&server.origin(), options(&clock)).unwrap();
    (server, clock, keys)
}

async fn ready(keys: &IssuerKeys) -> Result<(), DiscoveryError> {
    tokio::time::timeout(STEP, keys.ready()).await.unwrap()
}

#[tokio::test]
async fn discovers_keys_from_rfc8414_metadata_without_path() {
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    assert!(keys.current().is_empty(), "no I/O before first use");
    assert_eq!(server.hits(WELL_KNOWN), 0);
    ready(&keys).await.unwrap();
    assert_eq!(keys.current().key_ids(), ["k1"]);
    assert_eq!(
        (
            server.hits(WELL_KNOWN),
            server.hits(OIDC),
            server.hits("/jwks")
        ),
        (1, 0, 1)
    );
    // A known kid is answered from the cache.
    let snapshot = keys.keys_for(Some("k1"), ES256).await.unwrap();
    assert!(snapshot.contains(Some("k1"), ES256));
    assert!(!snapshot.contains(Some("k1"), Algorithm::RS256));
    assert_eq!(server.hits("/jwks"), 1);
    assert_eq!(server.seen("/jwks")[0].method, "GET");
}

#[tokio::test]
async fn inserts_well_known_before_the_issuer_path_rfc8414_3_1() {
    let server = AuthServer::https().await;
    let issuer = server.url("/tenant/a");
    server.set(
        &format!("{WELL_KNOWN}/tenant/a"),
        metadata(&issuer, &server.url("/tenant/a/jwks")),
    );
    server.set(
        "/tenant/a/jwks",
        Reply::json(&serde_json::from_str(&jwks(&["t1"])).unwrap()),
    );
    let keys = IssuerKeys::discover(&issuer, options(&ManualClock::new(NOW))).unwrap();
    assert_eq!(
        keys.metadata_urls()[0],
        format!("{}{WELL_KNOWN}/tenant/a", server.origin())
    );
    ready(&keys).await.unwrap();
    assert_eq!(keys.current().key_ids(), ["t1"]);
    assert_eq!(server.hits("/tenant/a/.well-known/openid-configuration"), 0);
}

#[tokio::test]
async fn falls_back_to_openid_configuration() {
    let server = AuthServer::https().await;
    let issuer = server.url("/tenant");
    // Nothing at the RFC 8414 location (404); OIDC Discovery §4 appends to the issuer.
    server.set(
        "/tenant/.well-known/openid-configuration",
        metadata(&issuer, &server.url("/certs")),
    );
    server.set(
        "/certs",
        Reply::json(&serde_json::from_str(&jwks(&["o1"])).unwrap()),
    );
    let keys = IssuerKeys::discover(&issuer, options(&ManualClock::new(NOW))).unwrap();
    ready(&keys).await.unwrap();
    assert_eq!(keys.current().key_ids(), ["o1"]);
    assert_eq!(server.hits(&format!("{WELL_KNOWN}/tenant")), 1);
    assert_eq!(server.hits("/tenant/.well-known/openid-configuration"), 1);
}

#[tokio::test]
async fn server_error_at_rfc8414_location_does_not_fall_back() {
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    server.set(WELL_KNOWN, Reply::status(503));
    server.set(OIDC, metadata(&server.origin(), &server.url("/jwks")));
    let err = ready(&keys).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::HttpStatus { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!((server.hits(OIDC), server.hits("/jwks")), (0, 0));
}

#[tokio::test]
async fn refuses_metadata_naming_another_issuer() {
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    // Byte for byte: a trailing slash is another issuer (RFC 8414 §3.3, JWTAT-02).
    server.set(
        WELL_KNOWN,
        metadata(&format!("{}/", server.origin()), &server.url("/jwks")),
    );
    server.set(OIDC, metadata(&server.origin(), &server.url("/jwks")));
    let err = ready(&keys).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::IssuerMismatch { .. }),
        "{err:?}"
    );
    // A document that is served but wrong is not bypassed through the fallback.
    assert_eq!((server.hits(OIDC), server.hits("/jwks")), (0, 0));
    assert!(keys.current().is_empty());
}

#[tokio::test]
async fn refuses_plain_http_jwks_uri() {
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    let http_uri = format!(
        "http://{}/jwks",
        server.origin().trim_start_matches("https://")
    );
    server.set(WELL_KNOWN, metadata(&server.origin(), &http_uri));
    let err = ready(&keys).await.unwrap_err();
    assert!(
        matches!(
            err,
            DiscoveryError::InvalidJwksUri {
                reason: "not https",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.hits("/jwks"), 0);
}

#[tokio::test]
async fn refuses_relative_jwks_uri_and_malformed_metadata() {
    for (body, expected) in [
        (r#"{"issuer":"ISSUER","jwks_uri":"/jwks"}"#, "jwks_uri"),
        (
            r#"{"issuer":"ISSUER","jwks_uri":"ISSUER/jwks#frag"}"#,
            "jwks_uri",
        ),
        (r#"{"issuer":"ISSUER"}"#, "metadata"),
        (r#"{"issuer":7,"jwks_uri":"ISSUER/jwks"}"#, "metadata"),
        (r#"["ISSUER","ISSUER/jwks"]"#, "metadata"),
        // Two `issuer` members: which one counts is ambiguous, so neither does.
        (
            r#"{"issuer":"https://evil.example","issuer":"ISSUER","jwks_uri":"ISSUER/jwks"}"#,
            "metadata",
        ),
        ("not json", "metadata"),
    ] {
        let (server, _clock, keys) = issuer_with(&["k1"]).await;
        let body = body.replace("ISSUER", &server.origin());
        server.set(WELL_KNOWN, Reply::status(200).body(body.clone()));
        let err = ready(&keys).await.unwrap_err();
        let ok = match expected {
            "jwks_uri" => matches!(err, DiscoveryError::InvalidJwksUri { .. }),
            _ => matches!(err, DiscoveryError::InvalidMetadata { .. }),
        };
        assert!(ok, "{body}: {err:?}");
        assert_eq!(server.hits("/jwks"), 0);
    }
}

#[tokio::test]
async fn refuses_redirect_to_another_origin() {
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    // Same server, same port, but `localhost` instead of `127.0.0.1`: another origin.
    server.set(
        WELL_KNOWN,
        Reply::status(302).header("location", &format!("{}/moved", server.other_origin())),
    );
    server.set("/moved", metadata(&server.origin(), &server.url("/jwks")));
    let err = ready(&keys).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::RedirectRefused { .. }),
        "{err:?}"
    );
    assert_eq!((server.hits("/moved"), server.hits("/jwks")), (0, 0));
}

#[tokio::test]
async fn follows_a_few_same_origin_redirects_only() {
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    server.set(WELL_KNOWN, Reply::status(307).header("location", "/moved"));
    server.set("/moved", metadata(&server.origin(), &server.url("/jwks")));
    ready(&keys).await.unwrap();
    assert_eq!(keys.current().key_ids(), ["k1"]);

    // A loop: refused after three hops, not followed for ever.
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    server.set(WELL_KNOWN, Reply::status(307).header("location", "/loop"));
    server.set("/loop", Reply::status(307).header("location", "/loop"));
    let err = ready(&keys).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::RedirectRefused { .. }),
        "{err:?}"
    );
    assert_eq!(server.hits("/loop"), 3);
}

#[tokio::test]
async fn refuses_oversize_bodies_with_or_without_content_length() {
    let padding = |n: usize| {
        let mut set: Value = serde_json::from_str(&jwks(&["k1"])).unwrap();
        set["padding"] = json!("x".repeat(n));
        set.to_string()
    };
    let at_limit = padding(256 * 1024 - 1024);
    let over = padding(256 * 1024 + 1);
    for chunked in [false, true] {
        let (server, _clock, keys) = issuer_with(&["k1"]).await;
        let reply = |body: &str| {
            let r = Reply::status(200).body(body.as_bytes().to_vec());
            if chunked { r.chunked() } else { r }
        };
        server.set("/jwks", reply(&over));
        let err = ready(&keys).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::TooLarge { limit: 262_144, .. }),
            "chunked {chunked}: {err:?}"
        );
        // Just under the limit is fine (a fresh cache: no rate limit from the failure).
        server.set("/jwks", reply(&at_limit));
        let keys = IssuerKeys::discover(&server.origin(), options(&ManualClock::new(NOW))).unwrap();
        ready(&keys).await.unwrap();
        assert_eq!(keys.current().key_ids(), ["k1"]);
    }
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    let mut big = json!({"issuer": server.origin(), "jwks_uri": server.url("/jwks")});
    big["padding"] = json!("x".repeat(64 * 1024));
    server.set(WELL_KNOWN, Reply::json(&big));
    let err = ready(&keys).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::TooLarge { limit: 65_536, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn refuses_a_set_with_too_many_keys() {
    let kids: Vec<String> = (0..65).map(|i| format!("k{i}")).collect();
    let kids: Vec<&str> = kids.iter().map(String::as_str).collect();
    let (_server, _clock, keys) = issuer_with(&kids).await;
    let err = ready(&keys).await.unwrap_err();
    assert!(
        matches!(
            err,
            DiscoveryError::InvalidJwks {
                reason: "too many keys",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn untrusted_server_certificate_is_unreachable() {
    let (server, _clock, _keys) = issuer_with(&["k1"]).await;
    let keys = IssuerKeys::discover(
        &server.origin(),
        DiscoveryOptions::default().timeout(Duration::from_secs(3)),
    )
    .unwrap();
    let err = ready(&keys).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err:?}");
    // The TLS handshake failed: no request reached the server.
    assert_eq!(server.hits(WELL_KNOWN), 0);
}

#[tokio::test]
async fn slow_server_times_out() {
    let (server, clock, _keys) = issuer_with(&["k1"]).await;
    server.set(
        "/jwks",
        Reply::status(200)
            .body(jwks(&["k1"]))
            .delay(Duration::from_secs(5)),
    );
    let keys = IssuerKeys::discover(
        &server.origin(),
        options(&clock).timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = ready(&keys).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn rotated_key_is_usable_after_one_miss_refetch() {
    let (server, clock, keys) = issuer_with(&["k1"]).await;
    ready(&keys).await.unwrap();
    assert_eq!(server.hits("/jwks"), 1);
    // The AS rotates: k2 replaces k1. The first unknown kid after the first load refetches
    // at once.
    server.set("/jwks", Reply::status(200).body(jwks(&["k2"])));
    clock.advance(5);
    let snapshot = keys.keys_for(Some("k2"), ES256).await.unwrap();
    assert!(snapshot.contains(Some("k2"), ES256));
    assert_eq!(server.hits("/jwks"), 2);
    assert_eq!(
        server.hits(WELL_KNOWN),
        2,
        "metadata is read again on each fetch"
    );
    // It rotates again: within the miss interval of that fetch, the rate limit holds the
    // refetch back ...
    server.set("/jwks", Reply::status(200).body(jwks(&["k3"])));
    clock.advance(5);
    let snapshot = keys.keys_for(Some("k3"), ES256).await.unwrap();
    assert!(!snapshot.contains(Some("k3"), ES256));
    assert_eq!(server.hits("/jwks"), 2);
    // ... and once it has passed, one miss fetches the new set.
    clock.advance(5);
    let snapshot = keys.keys_for(Some("k3"), ES256).await.unwrap();
    assert!(snapshot.contains(Some("k3"), ES256));
    assert_eq!(server.hits("/jwks"), 3);
    // The old key is gone; asking for it again is a miss inside the interval: no fetch.
    assert_eq!(keys.current().key_ids(), ["k3"]);
    let snapshot = keys.keys_for(Some("k1"), ES256).await.unwrap();
    assert!(!snapshot.contains(Some("k1"), ES256));
    assert_eq!(server.hits("/jwks"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_make_one_fetch() {
    let (server, clock, keys) = issuer_with(&["k1"]).await;
    ready(&keys).await.unwrap();
    clock.advance(10);
    // The new key is published; the JWK Set answers slowly, so all lookups overlap.
    server.set(
        "/jwks",
        Reply::status(200)
            .body(jwks(&["k1", "k2"]))
            .delay(Duration::from_millis(300)),
    );
    let lookups: Vec<_> = (0..100)
        .map(|_| {
            let keys = keys.clone();
            tokio::spawn(async move { keys.keys_for(Some("k2"), ES256).await })
        })
        .collect();
    for lookup in lookups {
        let snapshot = tokio::time::timeout(STEP, lookup)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // Every lookup waited for the one fetch and sees the new key.
        assert!(snapshot.contains(Some("k2"), ES256));
    }
    assert_eq!(
        server.hits("/jwks"),
        2,
        "one initial fetch, one for 100 misses"
    );
}

#[tokio::test]
async fn random_kid_flood_is_rate_limited() {
    let (server, clock, keys) = issuer_with(&["k1"]).await;
    ready(&keys).await.unwrap();
    for round in 1..=3 {
        clock.advance(10);
        for i in 0..50 {
            let kid = format!("random-{round}-{i}");
            let snapshot = keys.keys_for(Some(&kid), ES256).await.unwrap();
            assert!(!snapshot.contains(Some(&kid), ES256));
        }
        // One fetch per 10 s interval, however many unknown kids.
        assert_eq!(server.hits("/jwks"), 1 + round);
        clock.advance(5);
        keys.keys_for(Some("another"), ES256).await.unwrap();
        assert_eq!(server.hits("/jwks"), 1 + round);
    }
    // The known key never waited and never fetched.
    assert!(
        keys.keys_for(Some("k1"), ES256)
            .await
            .unwrap()
            .contains(Some("k1"), ES256)
    );
    assert_eq!(server.hits("/jwks"), 4);
}

#[tokio::test]
async fn as_down_cached_keys_work_unknown_kid_is_an_error() {
    let (server, clock, keys) = issuer_with(&["k1"]).await;
    ready(&keys).await.unwrap();
    server.stop().await;
    clock.advance(10);
    let err = tokio::time::timeout(STEP, keys.keys_for(Some("k2"), ES256))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err:?}");
    // The cached key keeps working, also long after the refresh was due.
    assert!(
        keys.keys_for(Some("k1"), ES256)
            .await
            .unwrap()
            .contains(Some("k1"), ES256)
    );
    clock.advance(3600);
    assert!(
        keys.keys_for(Some("k1"), ES256)
            .await
            .unwrap()
            .contains(Some("k1"), ES256)
    );
    // Unknown kids stay errors: after a new failed attempt, and inside the rate limit that
    // follows it (no attempt, the last failure answers).
    for kid in ["k3", "k4"] {
        let err = tokio::time::timeout(STEP, keys.keys_for(Some(kid), ES256))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn as_returning_5xx_for_the_jwks_is_an_error_for_unknown_kids() {
    let (server, clock, keys) = issuer_with(&["k1"]).await;
    ready(&keys).await.unwrap();
    server.set("/jwks", Reply::status(500));
    clock.advance(10);
    let err = keys.keys_for(Some("k2"), ES256).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::HttpStatus { status: 500, .. }),
        "{err:?}"
    );
    assert!(keys.keys_for(Some("k1"), ES256).await.is_ok());
    // The AS recovers: the next miss after the interval succeeds and clears the error.
    server.set("/jwks", Reply::status(200).body(jwks(&["k1", "k2"])));
    clock.advance(10);
    assert!(
        keys.keys_for(Some("k2"), ES256)
            .await
            .unwrap()
            .contains(Some("k2"), ES256)
    );
}

async fn wait_for_hits(server: &AuthServer, path: &str, hits: usize) -> bool {
    for _ in 0..200 {
        if server.hits(path) >= hits {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn periodic_refresh_honours_max_age_within_bounds() {
    let (server, clock, keys) = issuer_with(&["k1"]).await;
    server.set(
        "/jwks",
        Reply::status(200)
            .header("cache-control", "public, max-age=120")
            .body(jwks(&["k1"])),
    );
    ready(&keys).await.unwrap();
    clock.advance(119);
    keys.keys_for(Some("k1"), ES256).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.hits("/jwks"), 1, "not due yet");
    clock.advance(1);
    // Due: the lookup answers at once and the refresh runs in the background.
    server.set(
        "/jwks",
        Reply::status(200)
            .header("cache-control", "max-age=5")
            .body(jwks(&["k9"])),
    );
    keys.keys_for(Some("k1"), ES256).await.unwrap();
    assert!(wait_for_hits(&server, "/jwks", 2).await);
    for _ in 0..200 {
        if keys.current().key_ids() == ["k9"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(keys.current().key_ids(), ["k9"]);
    // max-age=5 is below the one-minute floor: no refresh 30 s later.
    clock.advance(30);
    keys.keys_for(Some("k9"), ES256).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.hits("/jwks"), 2);
    clock.advance(30);
    keys.keys_for(Some("k9"), ES256).await.unwrap();
    assert!(wait_for_hits(&server, "/jwks", 3).await);
}

#[tokio::test]
async fn changed_jwks_uri_reconfigures_the_cache() {
    let (server, clock, keys) = issuer_with(&["k1"]).await;
    ready(&keys).await.unwrap();
    server.set(
        WELL_KNOWN,
        metadata(&server.origin(), &server.url("/jwks-2")),
    );
    server.set("/jwks-2", Reply::status(200).body(jwks(&["n1"])));
    clock.advance(10);
    let snapshot = keys.keys_for(Some("n1"), ES256).await.unwrap();
    assert!(snapshot.contains(Some("n1"), ES256));
    assert_eq!((server.hits("/jwks"), server.hits("/jwks-2")), (1, 1));
}

#[tokio::test]
async fn first_use_fetches_without_ready() {
    let (server, _clock, keys) = issuer_with(&["k1"]).await;
    let snapshot = tokio::time::timeout(STEP, keys.keys_for(Some("k1"), ES256))
        .await
        .unwrap()
        .unwrap();
    assert!(snapshot.contains(Some("k1"), ES256));
    assert_eq!(server.hits("/jwks"), 1);
}

#[tokio::test]
async fn plain_http_only_on_loopback_and_only_by_name() {
    let server = AuthServer::http().await;
    server.set(WELL_KNOWN, metadata(&server.origin(), &server.url("/jwks")));
    server.set("/jwks", Reply::status(200).body(jwks(&["h1"])));
    let err = IssuerKeys::discover(&server.origin(), DiscoveryOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            RemoteConfigError::InvalidUrl {
                reason: "not https",
                ..
            }
        ),
        "{err:?}"
    );
    let keys = IssuerKeys::discover(
        &server.origin(),
        DiscoveryOptions::default().insecure_allow_http_on_loopback(),
    )
    .unwrap();
    ready(&keys).await.unwrap();
    assert_eq!(keys.current().key_ids(), ["h1"]);
    // Even so, a jwks_uri on another host is refused.
    server.set(
        WELL_KNOWN,
        metadata(&server.origin(), "http://as.example/jwks"),
    );
    let keys = IssuerKeys::discover(
        &server.origin(),
        DiscoveryOptions::default().insecure_allow_http_on_loopback(),
    )
    .unwrap();
    let err = ready(&keys).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::InvalidJwksUri { .. }),
        "{err:?}"
    );
}

/// While the last key-set fetch failed, a flood of tokens naming unknown `kid`s costs no log
/// line each: one for the failed fetch (one per 10 s at most), one for the burst of refusals.
#[tokio::test]
async fn unknown_kids_while_fetches_fail_are_not_logged_per_token() {
    let (_guard, logs) = tower_pop_test_support::logs::capture();
    let server = AuthServer::https().await;
    server.set(WELL_KNOWN, metadata(&server.origin(), &server.url("/jwks")));
    let issuer_key = ProofSigner::generate(ES256).unwrap();
    server.set(
        "/jwks",
        Reply::json(&serde_json::from_str(&jwks_for(&issuer_key, "k1")).unwrap()),
    );
    let clock = ManualClock::new(NOW);
    let verifier = tower_pop::Verifier::new(
        tower_pop::PopConfig::builder()
            .public_origin("https://api.example")
            .issuer(server.origin())
            .audience("https://api.example")
            .allow_bearer()
            .discovery(options(&clock))
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap(),
    );
    let token = |kid: &str| {
        let claims = json!({"iss": server.origin(), "aud": "https://api.example", "sub": "s",
            "client_id": "c", "iat": NOW, "exp": NOW + 600, "jti": kid});
        issuer_key
            .sign_compact(
                &json!({"typ": "at+jwt", "alg": "ES256", "kid": kid}),
                &claims,
            )
            .unwrap()
    };
    let decide = |token: String| {
        let verifier = &verifier;
        async move {
            let value = format!("Bearer {token}");
            let request =
                tower_pop::request::PopRequest::new("GET", "/r").authorization(value.as_bytes());
            match verifier
                .decide(&request, &tower_pop::policy::RoutePolicy::new())
                .await
            {
                tower_pop::Outcome::Verified(_) => 200,
                tower_pop::Outcome::Refused(r) => r.challenge().status(),
                _ => 0,
            }
        }
    };
    assert_eq!(decide(token("k1")).await, 200);
    server.set("/jwks", Reply::status(500));
    clock.advance(10);
    for n in 0..50 {
        assert_eq!(decide(token(&format!("random-{n}"))).await, 503);
    }
    assert_eq!(server.hits("/jwks"), 2, "one refetch in the interval");
    let warnings = logs.at("WARN");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert_eq!(logs.lines_with("issuer key set fetch failed").len(), 1);
    assert_eq!(logs.lines_with("server-side failure").len(), 1);
    // The known key goes on working meanwhile, and that ends the burst.
    assert_eq!(decide(token("k1")).await, 200);
    assert_eq!(logs.lines_with("verified again").len(), 1);
}

/// A key published right after our start-up is fetched on first sight: the first load does
/// not start the miss interval. Then the interval holds against random `kid`s.
#[tokio::test]
async fn a_key_rotated_in_right_after_start_up_is_fetched_at_once() {
    let (server, clock, keys) = issuer_with(&["k1"]).await;
    ready(&keys).await.unwrap();
    assert_eq!(server.hits("/jwks"), 1);
    // The authorization server rotates within the same second.
    server.set(
        "/jwks",
        Reply::json(&serde_json::from_str(&jwks(&["k1", "k2"])).unwrap()),
    );
    let snapshot = keys.keys_for(Some("k2"), ES256).await.unwrap();
    assert!(
        snapshot.contains(Some("k2"), ES256),
        "fetched on first sight"
    );
    assert_eq!(server.hits("/jwks"), 2);
    // Random kids within the interval: no more fetches.
    for i in 0..20 {
        let kid = format!("random-{i}");
        assert!(
            !keys
                .keys_for(Some(&kid), ES256)
                .await
                .unwrap()
                .contains(Some(&kid), ES256)
        );
    }
    assert_eq!(server.hits("/jwks"), 2);
    clock.advance(10);
    let _ = keys.keys_for(Some("random-late"), ES256).await.unwrap();
    assert_eq!(server.hits("/jwks"), 3, "the interval, then one more");
}
