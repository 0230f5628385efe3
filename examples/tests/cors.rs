//! `--cors-origin` on both example servers (EXAMPLE-SERVERS.md; SPEC-CHECKLIST BRR-09): the
//! preflight passes without a token, every answer to an allowed origin, refusals and nonce
//! challenges included, carries `Access-Control-Allow-Origin` and exposes `DPoP-Nonce` and
//! `WWW-Authenticate`; other origins get no CORS headers; both servers answer alike.

use std::process::Stdio;
use std::sync::Arc;

use tokio::process::Command;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;

use crate::server::{AUDIENCE, ISSUER, SERVERS, Server, example_binary};
use examples_common::http::{Reply, send};

const APP: &str = "http://app.example.test:3000";
const OTHER_APP: &str = "https://other.example.test";
const EVIL: &str = "https://evil.example.test";

/// The comma-separated list in header `name`, lowercased and sorted (actix-cors does not keep
/// the configured order).
fn list(reply: &Reply, name: &str) -> Vec<String> {
    let mut items: Vec<String> = reply
        .header(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    items.sort();
    items
}

fn preflight<'a>(origin: &'a str, method: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
        ("Access-Control-Request-Headers", "authorization,dpop"),
    ]
}

/// What a browser can see of an answer, for comparing the two servers.
type Seen = (u16, Option<String>, Vec<String>, Option<String>);

fn seen(r: &Reply) -> Seen {
    (
        r.status,
        r.header("access-control-allow-origin").map(str::to_owned),
        list(r, "access-control-expose-headers"),
        r.header("www-authenticate").map(crate::server::any_realm),
    )
}

async fn cors_flow(name: &str, issuer: Arc<TestIssuer>) -> Vec<Seen> {
    let flags = [
        "--cors-origin",
        APP,
        "--cors-origin",
        OTHER_APP,
        "--require-nonce",
    ];
    let s = Server::start_with(name, &flags, issuer).await;
    let mut answers = Vec::new();

    // The preflight, for each allowed origin: answered without a token.
    for origin in [APP, OTHER_APP] {
        let r = send(s.addr, "OPTIONS", "/whoami", &preflight(origin, "POST")).await;
        assert_eq!(r.status, 200, "{name}: {r:?}");
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert!(r.header("www-authenticate").is_none(), "{name}: {r:?}");
        let allowed = list(&r, "access-control-allow-headers");
        for h in ["authorization", "content-type", "dpop"] {
            assert!(allowed.contains(&h.to_owned()), "{name}: {allowed:?}");
        }
        let methods = list(&r, "access-control-allow-methods");
        for m in ["delete", "get", "post", "put"] {
            assert!(methods.contains(&m.to_owned()), "{name}: {methods:?}");
        }
        assert_eq!(r.header("access-control-max-age"), Some("600"));
        // No credentials: DPoP tokens travel in a header, not a cookie.
        assert!(r.header("access-control-allow-credentials").is_none());
        answers.push(seen(&r));
    }

    let exposed = ["dpop-nonce", "retry-after", "www-authenticate"].map(str::to_owned);
    // No credentials: 401, and the page can read the challenge.
    let r = send(s.addr, "GET", "/whoami", &[("Origin", APP)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(list(&r, "access-control-expose-headers"), exposed);
    answers.push(seen(&r));

    // The nonce challenge: DPoP-Nonce is readable, and the retry with it succeeds.
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = s.token(Some(client.thumbprint()));
    let auth = format!("DPoP {token}");
    let url = s.url("/whoami");
    let proof = client.proof("GET", &url, Some(&token), None).unwrap();
    let headers = [("Origin", APP), ("Authorization", &auth), ("DPoP", &proof)];
    let r = send(s.addr, "GET", "/whoami", &headers).await;
    assert_eq!(r.status, 401, "{name}: {r:?}");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("use_dpop_nonce")
    );
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(list(&r, "access-control-expose-headers"), exposed);
    let nonce = r.header("dpop-nonce").expect("a nonce").to_owned();
    answers.push(seen(&r));
    let proof = client
        .proof("GET", &url, Some(&token), Some(&nonce))
        .unwrap();
    let headers = [("Origin", APP), ("Authorization", &auth), ("DPoP", &proof)];
    let r = send(s.addr, "GET", "/whoami", &headers).await;
    assert_eq!(r.status, 200, "{name}: {r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    answers.push(seen(&r));

    // Another origin: no Access-Control-Allow-Origin, so the browser keeps the answer from
    // the page (the request itself is still verified as any other).
    let r = send(s.addr, "GET", "/whoami", &[("Origin", EVIL)]).await;
    assert_eq!(r.status, 401);
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");
    answers.push(seen(&r));
    let r = send(s.addr, "OPTIONS", "/whoami", &preflight(EVIL, "GET")).await;
    // tower-http answers 200, actix-cors 400; neither allows the origin.
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");
    // A same-origin request (no Origin) is served as before; /health is open.
    assert_eq!(send(s.addr, "GET", "/health", &[]).await.status, 200);
    answers
}

#[tokio::test]
async fn cors_origin_flag_lets_that_origin_use_dpop_on_both_servers_alike() {
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let axum = cors_flow(SERVERS[0], Arc::clone(&issuer)).await;
    let actix = cors_flow(SERVERS[1], issuer).await;
    assert_eq!(axum, actix);
}

#[tokio::test]
async fn without_cors_origin_there_are_no_cors_headers_and_preflights_reach_the_verifier() {
    for name in SERVERS {
        let s = Server::start(name, &[]).await;
        let r = send(s.addr, "OPTIONS", "/whoami", &preflight(APP, "GET")).await;
        assert_eq!(r.status, 401, "{name}: {r:?}");
        assert!(r.header("access-control-allow-origin").is_none());
        let r = send(s.addr, "GET", "/whoami", &[("Origin", APP)]).await;
        assert_eq!(r.status, 401);
        assert!(r.header("access-control-allow-origin").is_none());
        assert!(r.header("access-control-expose-headers").is_none());
    }
}

#[tokio::test]
async fn a_cors_origin_that_is_not_an_origin_stops_the_server() {
    for name in SERVERS {
        for bad in [
            "*",
            "https://app.example.test/",
            "https://app.example.test:443",
        ] {
            let output = Command::new(example_binary(name))
                .args(["--listen", "127.0.0.1:0", "--issuer", ISSUER])
                .args(["--audience", AUDIENCE, "--jwks-file", "/dev/null"])
                .args(["--cors-origin", bad])
                .stdin(Stdio::null())
                .output()
                .await
                .unwrap();
            assert_eq!(output.status.code(), Some(1), "{name} {bad}");
            assert!(output.stdout.is_empty(), "{name} served with {bad}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("--cors-origin"), "{name}: {stderr}");
        }
    }
}
