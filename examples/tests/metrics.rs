//! `--metrics-listen`: both example servers serve the tower-pop metrics (feature `metrics`) for
//! Prometheus on a separate address, counting what they decided.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tower_pop::Algorithm;
use tower_pop::client::DpopMiddleware;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;

use crate::server::{AUDIENCE, ISSUER, example_binary, now};
use examples_common::http::send;

/// Tests run in parallel: one JWK Set file each.
static FILES: AtomicUsize = AtomicUsize::new(0);

/// A server started with `--metrics-listen 127.0.0.1:0`: its two announced addresses.
struct MetricsServer {
    addr: SocketAddr,
    metrics: SocketAddr,
    issuer: TestIssuer,
    // Kept so the server's later writes to stdout do not fail.
    _stdout: Lines<BufReader<ChildStdout>>,
    _child: Child,
}

async fn line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the server announces itself within 30 s")
        .unwrap()
        .expect("a line")
}

impl MetricsServer {
    async fn start(name: &str, extra: &[&str]) -> Self {
        let issuer = TestIssuer::new(ISSUER, AUDIENCE);
        let jwks = std::env::temp_dir().join(format!(
            "tower-pop-metrics-jwks-{}-{}.json",
            std::process::id(),
            FILES.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&jwks, issuer.jwks_json()).unwrap();
        let mut child = Command::new(example_binary(name))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--issuer", ISSUER, "--audience", AUDIENCE, "--jwks-file"])
            .arg(&jwks)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (built by cargo test?): {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = line(&mut lines).await;
        let addr = first
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        let second = line(&mut lines).await;
        let metrics = second
            .strip_prefix("metrics on http://")
            .and_then(|l| l.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("unexpected second line: {second}"));
        let _ = std::fs::remove_file(jwks);
        Self {
            addr: addr.parse().unwrap(),
            metrics: metrics.parse().unwrap(),
            issuer,
            _stdout: lines,
            _child: child,
        }
    }
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn both_servers_count_accepted_and_refused_requests_for_prometheus() {
    for name in ["axum_resource_server", "actix_resource_server"] {
        let s = MetricsServer::start(name, &[]).await;
        let client = ProofSigner::generate(Algorithm::ES256).unwrap();
        let url = format!("http://{}/whoami", s.addr);

        // Accepted: a DPoP-bound token with its proof.
        let token = s.issuer.token(
            now(),
            serde_json::json!({"cnf": {"jkt": client.thumbprint()}}),
        );
        let auth = format!("DPoP {token}");
        let proof = client.proof("GET", &url, Some(&token), None).unwrap();
        let ok = send(
            s.addr,
            "GET",
            "/whoami",
            &[("Authorization", &auth), ("DPoP", &proof)],
        )
        .await;
        assert_eq!(ok.status, 200, "{name}: {ok:?}");

        // Refused: the same request with a token another issuer's key signed.
        let forged = TestIssuer::new(ISSUER, AUDIENCE).token(
            now(),
            serde_json::json!({"cnf": {"jkt": client.thumbprint()}}),
        );
        let auth = format!("DPoP {forged}");
        let proof = client.proof("GET", &url, Some(&forged), None).unwrap();
        let refused = send(
            s.addr,
            "GET",
            "/whoami",
            &[("Authorization", &auth), ("DPoP", &proof)],
        )
        .await;
        assert_eq!(refused.status, 401, "{name}: {refused:?}");

        let scrape = send(s.metrics, "GET", "/metrics", &[]).await;
        assert_eq!(scrape.status, 200, "{name}: {scrape:?}");
        assert!(
            scrape
                .header("content-type")
                .is_some_and(|c| c.starts_with("text/plain")),
            "{name}: {scrape:?}"
        );
        let text = &scrape.body;
        let accepted = sample(text, r#"tower_pop_requests_accepted_total{binding="dpop"}"#);
        assert!(accepted.is_some_and(|v| v >= 1.0), "{name}: {text}");
        let refused = sample(
            text,
            r#"tower_pop_requests_refused_total{kind="token_invalid"}"#,
        );
        assert!(refused.is_some_and(|v| v >= 1.0), "{name}: {text}");
        let timed = sample(text, "tower_pop_verify_seconds_count");
        assert!(timed.is_some_and(|v| v >= 2.0), "{name}: {text}");
        assert!(
            text.contains(r#"tower_pop_verify_seconds_bucket{le="+Inf"}"#),
            "{name}: {text}"
        );
        // Labels are fixed names: nothing of the request reaches the metrics.
        assert!(!text.contains(&token) && !text.contains(&forged) && !text.contains(&proof));
        // The metrics are on their own address only: the API does not serve them.
        let api = send(s.addr, "GET", "/metrics", &[]).await;
        assert_eq!(api.status, 404, "{name}: {api:?}");
    }
}

/// As a user would: the client middleware against a server with `--require-nonce` gets through
/// after one `use_dpop_nonce` refusal, and the metrics show exactly that refusal and the success.
#[tokio::test]
async fn a_nonce_retry_shows_as_one_refusal_and_one_acceptance() {
    for name in ["axum_resource_server", "actix_resource_server"] {
        let s = MetricsServer::start(name, &["--require-nonce"]).await;
        let signer = std::sync::Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap());
        let token = s.issuer.token(
            now(),
            serde_json::json!({"cnf": {"jkt": signer.thumbprint()}}),
        );
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let client = reqwest_middleware::ClientBuilder::new(http)
            .with(DpopMiddleware::new(signer))
            .build();
        let r = client
            .get(format!("http://{}/whoami", s.addr))
            .header("authorization", format!("DPoP {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}: {:?}", r.headers());

        let text = send(s.metrics, "GET", "/metrics", &[]).await.body;
        let nonce = sample(
            &text,
            r#"tower_pop_requests_refused_total{kind="nonce_required"}"#,
        );
        assert_eq!(nonce, Some(1.0), "{name}: {text}");
        let accepted = sample(
            &text,
            r#"tower_pop_requests_accepted_total{binding="dpop"}"#,
        );
        assert_eq!(accepted, Some(1.0), "{name}: {text}");
        assert_eq!(
            sample(&text, "tower_pop_verify_seconds_count"),
            Some(2.0),
            "{name}: {text}"
        );
    }
}

/// `pop_gateway` takes every example-server flag, so it honours these two as well: metrics on
/// their own address, and the CORS preset outside the verifier (a preflight passes without a
/// token; a refusal carries the CORS fields).
#[tokio::test]
async fn the_gateway_serves_metrics_and_the_cors_preset_too() {
    let origin = "https://app.example";
    // Nothing here reaches the upstream: port 9 (discard) on loopback is never dialled.
    let s = MetricsServer::start(
        "pop_gateway",
        &["--upstream", "http://127.0.0.1:9", "--cors-origin", origin],
    )
    .await;
    let preflight = send(
        s.addr,
        "OPTIONS",
        "/api",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization, dpop"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 200, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(origin)
    );
    let refused = send(s.addr, "GET", "/api", &[("Origin", origin)]).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.header("access-control-allow-origin"), Some(origin));
    let exposed = refused
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("dpop-nonce"),
        "{refused:?}"
    );
    let text = send(s.metrics, "GET", "/metrics", &[]).await.body;
    let missing = sample(
        &text,
        r#"tower_pop_requests_refused_total{kind="missing_credentials"}"#,
    );
    assert_eq!(missing, Some(1.0), "{text}");
}
