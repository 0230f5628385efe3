//! The full verify path (fresh proof, cached token) next to one raw ES256 signature
//! verification, in the same run, so their ratio is meaningful on a noisy machine; and the
//! path of an mTLS-bound request (cached token, the connection's certificate hashed and
//! compared), whose cost is what RFC 8705 adds per request.
//!
//! `cargo bench -p tower-pop --bench verify`

#![allow(missing_docs, clippy::unwrap_used)] // bench binary: criterion macros, setup unwraps

use std::hint::black_box;
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::json;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::{Algorithm, ManualClock, PopConfig, PopRequest, Verifier};

const NOW: u64 = 1_700_000_000;
const URL: &str = "https://api.example.com/whoami";

fn bench(c: &mut Criterion) {
    let issuer = ProofSigner::generate(Algorithm::ES256).unwrap();
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let mut jwk: serde_json::Value = serde_json::from_str(&issuer.public_jwk()).unwrap();
    jwk["kid"] = json!("k");
    let verifier = Verifier::new(
        PopConfig::builder()
            .public_origin("https://api.example.com")
            .issuer("https://as.example.com")
            .audience("https://api.example.com")
            .jwks_json(json!({"keys": [jwk]}).to_string())
            .clock(Arc::new(ManualClock::new(NOW)))
            .build()
            .unwrap(),
    );
    let token = issuer.sign_compact(
        &json!({"typ": "at+jwt", "alg": "ES256", "kid": "k"}),
        &json!({"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "alice",
                "client_id": "c", "jti": "t", "exp": NOW + 3600, "iat": NOW, "cnf": {"jkt": client.thumbprint()}}),
    ).unwrap();
    let auth = format!("DPoP {token}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // One raw ES256 verification of a proof-sized message: the floor of any DPoP verifier.
    let proof = client
        .proof_at("GET", URL, Some(&token), None, NOW)
        .unwrap();
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let jwk: serde_json::Value = serde_json::from_str(&client.public_jwk()).unwrap();
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);

    // Warm the token cache, as in steady state.
    let warm = client
        .proof_at("GET", URL, Some(&token), None, NOW)
        .unwrap();
    let req = PopRequest::new("GET", "/whoami")
        .authorization(auth.as_bytes())
        .dpop(warm.as_bytes());
    runtime.block_on(verifier.verify(&req)).unwrap();

    let mut group = c.benchmark_group("verify");
    group.bench_function("raw_es256_signature_verify", |b| {
        b.iter(|| {
            key.verify(black_box(input.as_bytes()), black_box(&sig))
                .unwrap()
        });
    });
    group.bench_function("full_path_fresh_proof_cached_token", |b| {
        b.iter_batched(
            || {
                client
                    .proof_at("GET", URL, Some(&token), None, NOW)
                    .unwrap()
            },
            |proof| {
                let req = PopRequest::new("GET", "/whoami")
                    .authorization(auth.as_bytes())
                    .dpop(proof.as_bytes());
                runtime.block_on(verifier.verify(black_box(&req))).unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    // mTLS: a certificate-bound token over a connection with the bound certificate.
    let cert = tower_pop_test_support::pki().client_a.der();
    let mtls_token = issuer.sign_compact(
        &json!({"typ": "at+jwt", "alg": "ES256", "kid": "k"}),
        &json!({"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "alice",
                "client_id": "c", "jti": "t", "exp": NOW + 3600, "iat": NOW,
                "cnf": {"x5t#S256": tower_pop::thumbprint::x5t_s256(&cert)}}),
    ).unwrap();
    let mtls_auth = format!("Bearer {mtls_token}");
    let mtls_req = PopRequest::new("GET", "/whoami")
        .authorization(mtls_auth.as_bytes())
        .peer_certificate(&cert);
    runtime.block_on(verifier.verify(&mtls_req)).unwrap();
    group.bench_function("mtls_path_cached_token", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify(black_box(&mtls_req)))
                .unwrap()
        });
    });
    // Key lookup on the request path: a token verified every time (no token cache), with the
    // issuer's keys from a static JWK Set vs discovered from its metadata (lock-free read of the
    // cached set).
    let static_verifier = Verifier::new(
        PopConfig::builder()
            .public_origin("https://api.example.com")
            .issuer("https://as.example.com")
            .audience("https://api.example.com")
            .jwks_json(json!({"keys": [jwk_with_kid(&issuer)]}).to_string())
            .token_cache_capacity(0)
            .clock(Arc::new(ManualClock::new(NOW)))
            .build()
            .unwrap(),
    );
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let as_url = server_runtime.block_on(serve_metadata(jwk_with_kid(&issuer)));
    let discovered_verifier = Verifier::new(
        PopConfig::builder()
            .public_origin("https://api.example.com")
            .issuer(&as_url)
            .audience("https://api.example.com")
            .discovery(
                tower_pop::discovery::DiscoveryOptions::default().insecure_allow_http_on_loopback(),
            )
            .token_cache_capacity(0)
            .clock(Arc::new(ManualClock::new(NOW)))
            .build()
            .unwrap(),
    );
    let lookup_token = |iss: &str| {
        issuer.sign_compact(
            &json!({"typ": "at+jwt", "alg": "ES256", "kid": "k"}),
            &json!({"iss": iss, "aud": "https://api.example.com", "sub": "alice", "client_id": "c",
                    "jti": "t", "exp": NOW + 3600, "iat": NOW, "cnf": {"jkt": client.thumbprint()}}),
        ).unwrap()
    };
    for (name, verifier, token) in [
        (
            "token_uncached_static_keys",
            &static_verifier,
            lookup_token("https://as.example.com"),
        ),
        (
            "token_uncached_discovered_keys",
            &discovered_verifier,
            lookup_token(&as_url),
        ),
    ] {
        let auth = format!("DPoP {token}");
        let warm = client
            .proof_at("GET", URL, Some(&token), None, NOW)
            .unwrap();
        let req = PopRequest::new("GET", "/whoami")
            .authorization(auth.as_bytes())
            .dpop(warm.as_bytes());
        runtime.block_on(verifier.verify(&req)).unwrap();
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    client
                        .proof_at("GET", URL, Some(&token), None, NOW)
                        .unwrap()
                },
                |proof| {
                    let req = PopRequest::new("GET", "/whoami")
                        .authorization(auth.as_bytes())
                        .dpop(proof.as_bytes());
                    runtime.block_on(verifier.verify(black_box(&req))).unwrap()
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
    drop(server_runtime);
}

fn jwk_with_kid(key: &ProofSigner) -> serde_json::Value {
    let mut jwk: serde_json::Value = serde_json::from_str(&key.public_jwk()).unwrap();
    jwk["kid"] = json!("k");
    jwk
}

/// A loopback HTTP authorization server answering its RFC 8414 metadata and JWK Set.
async fn serve_metadata(jwk: serde_json::Value) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}).to_string();
    let jwks = json!({"keys": [jwk]}).to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (metadata, jwks) = (metadata.clone(), jwks.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let body = if head.starts_with("GET /jwks") {
                    jwks
                } else {
                    metadata
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

criterion_group!(benches, bench);
criterion_main!(benches);
