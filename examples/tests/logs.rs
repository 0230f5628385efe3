//! No secret in any log line, at any level: both example servers run with `RUST_LOG=trace`
//! (every crate, hyper, h2, rustls and reqwest included) through discovery, introspection,
//! nonces, replays and refusals, over HTTP/1.1 and HTTP/2, and what they logged is searched for
//! every token, proof (whole and by part), nonce, the client secret (also as sent in `Basic`)
//! and the nonce secret.

use std::time::Duration;

use serde_json::json;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;

use crate::issuer::{AuthServer, ca_file};
use crate::server::{AUDIENCE, SERVERS, Server, dpop_get, now};
use examples_common::http::{Reply, send};

const CLIENT_SECRET: &str = "rs-secret";
const NONCE_SECRET: &str = "a-nonce-secret-never-to-be-logged-0123456789";

#[tokio::test]
async fn both_servers_log_no_secret_at_trace() {
    for name in SERVERS {
        logs_no_secret(name).await;
    }
}

async fn logs_no_secret(name: &str) {
    let a = AuthServer::start().await;
    let nonce_secret = crate::scratch::file("logs-nonce-secret");
    std::fs::write(&nonce_secret, format!("{NONCE_SECRET}\n")).unwrap();
    let log = crate::scratch::file(&format!("logs-{name}.log"));
    let ca = ca_file();
    let mut flags = vec![
        "--issuer".to_owned(),
        a.issuer.clone(),
        "--issuer-ca".to_owned(),
        ca,
    ];
    flags.extend(a.introspection_flags());
    flags.extend([
        "--require-nonce".to_owned(),
        "--nonce-secret-file".to_owned(),
    ]);
    flags.push(nonce_secret.to_string_lossy().into_owned());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let s = Server::launch_logging(name, &flags, &log).await;
    let key = ProofSigner::generate(Algorithm::ES256).unwrap();
    let jwt = a.token("k1", json!({"cnf": {"jkt": key.thumbprint()}}));
    let opaque = "opaque-token-that-must-never-be-logged";
    a.state.introspections.lock().unwrap().insert(
        opaque.into(),
        json!({"active": true, "iss": a.issuer, "aud": AUDIENCE, "sub": "opaque-user",
            "exp": now() + 300, "cnf": {"jkt": key.thumbprint()}}),
    );
    let url = s.url("/whoami");
    let mut secrets: Vec<String> = vec![
        jwt.clone(),
        opaque.to_owned(),
        CLIENT_SECRET.to_owned(),
        NONCE_SECRET.to_owned(),
    ];
    let mut send_with = |token: &str, nonce: Option<&str>| {
        let proof = key.proof("GET", &url, Some(token), nonce).unwrap();
        secrets.push(proof.clone());
        secrets.extend(proof.split('.').map(str::to_owned));
        let (s, token) = (&s, token.to_owned());
        async move { (dpop_get(s, &token, &proof).await, proof) }
    };
    // A nonce challenge, then a success, a replay, the opaque token, a stolen token.
    let (r, _) = send_with(&jwt, None).await;
    assert_eq!(r.status, 401, "{name}: {r:?}");
    let nonce = r.header("dpop-nonce").expect("a nonce").to_owned();
    let (r, proof) = send_with(&jwt, Some(&nonce)).await;
    assert_eq!(r.status, 200, "{name}: {r:?}");
    let nonce = r.header("dpop-nonce").map_or(nonce, str::to_owned);
    let auth = format!("DPoP {jwt}");
    assert_eq!(dpop_get(&s, &jwt, &proof).await.status, 401, "a replay");
    let (r, _) = send_with(opaque, Some(&nonce)).await;
    assert_eq!(r.status, 200, "{name}: {r:?}");
    let bearer = format!("Bearer {jwt}");
    assert_eq!(
        send(s.addr, "GET", "/whoami", &[("Authorization", &bearer)])
            .await
            .status,
        401
    );
    // HTTP/2 (prior knowledge), where h2 logs frames at trace: the axum server only, as
    // actix-web speaks HTTP/2 over TLS alone.
    if name == "axum_resource_server" {
        h2_request(&url, &auth, &key, &jwt, &nonce, &mut secrets).await;
    }
    secrets.push(nonce);
    if let Some(n) = r.header("dpop-nonce") {
        secrets.push(n.to_owned());
    }
    {
        use base64::Engine as _;
        secrets
            .push(base64::engine::general_purpose::STANDARD.encode(format!("rs:{CLIENT_SECRET}")));
    }
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("TRACE") && logged.contains("tower_pop::verify"),
        "{name}: logging at trace: {} bytes",
        logged.len()
    );
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !logged.contains(secret.as_str()),
            "{name}: a secret was logged ({} bytes, starting {:?})",
            secret.len(),
            &secret[..8]
        );
    }
}

async fn h2_request(
    url: &str,
    auth: &str,
    key: &ProofSigner,
    jwt: &str,
    nonce: &str,
    secrets: &mut Vec<String>,
) {
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let proof = key.proof("GET", url, Some(jwt), Some(nonce)).unwrap();
    secrets.push(proof.clone());
    let r = Reply::read(
        h2.get(url)
            .header("Authorization", auth)
            .header("DPoP", &proof)
            .send()
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    if let Some(n) = r.header("dpop-nonce") {
        secrets.push(n.to_owned());
    }
}
