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
                "exp": NOW + 3600, "iat": NOW, "cnf": {"jkt": client.thumbprint()}}),
    );
    let auth = format!("DPoP {token}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    // One raw ES256 verification of a proof-sized message: the floor of any DPoP verifier.
    let proof = client.proof_at("GET", URL, Some(&token), None, NOW);
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let jwk: serde_json::Value = serde_json::from_str(&client.public_jwk()).unwrap();
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);

    // Warm the token cache, as in steady state.
    let warm = client.proof_at("GET", URL, Some(&token), None, NOW);
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
            || client.proof_at("GET", URL, Some(&token), None, NOW),
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
    let cert = tower_pop::test_util::pki().client_a.der();
    let mtls_token = issuer.sign_compact(
        &json!({"typ": "at+jwt", "alg": "ES256", "kid": "k"}),
        &json!({"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "alice",
                "exp": NOW + 3600, "iat": NOW,
                "cnf": {"x5t#S256": tower_pop::thumbprint::x5t_s256(&cert)}}),
    );
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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
