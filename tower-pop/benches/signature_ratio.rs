//! The cost of RFC 9421 request signatures (issue #27): the same POST with a 28-byte JSON body
//! through `RequirePopLayer` alone and through `RequirePopLayer` + `RequireSignatureLayer`
//! (a fresh DPoP proof and a fresh signature per request, one cached token), next to one raw
//! ES256 verification, in bracketed rounds (path, signed path, raw, interleaved in batches of
//! ten); the median over rounds of each ratio is the number to quote.
//!
//! A signature costs a second signature check per request; the goal is that everything else it
//! adds (fields, base, digest, proof key read, replay entry) stays under 5 % of the path:
//! `extra = (signed - path - raw) / path`.
//!
//! `cargo bench -p tower-pop --bench signature_ratio` (`-- --rounds N --batch M`).

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)] // bench binary

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::httpsig::sign::{REQUEST_COMPONENTS, SignatureOptions, sign_request};
use tower_pop::httpsig::{RequireSignatureLayer, SignaturePolicy};
use tower_pop::test_util::TestIssuer;
use tower_pop::{Algorithm, ManualClock, RequirePopLayer, Verifier};

mod common;

const NOW: u64 = 1_700_000_000;
const URL: &str = "https://api.example.com/pay";
const BODY: &str = r#"{"amount": 100, "to": "bob"}"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = common::quick(&args);
    let rounds = common::arg(&args, "--rounds", if quick { 1 } else { 15 });
    let batch = common::arg(&args, "--batch", if quick { 10 } else { 400 });
    let issuer = TestIssuer::new("https://as.example.com", "https://api.example.com");
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let clock = ManualClock::new(NOW);
    let verifier = Arc::new(Verifier::new(
        issuer
            .config("https://api.example.com")
            .clock(Arc::new(clock))
            .build()
            .unwrap(),
    ));
    let token = issuer.dpop_token(NOW, client.thumbprint());
    let handler = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let plain = ServiceBuilder::new()
        .layer(RequirePopLayer::new(Arc::clone(&verifier)))
        .service(handler);
    let signed = ServiceBuilder::new()
        .layer(RequirePopLayer::new(Arc::clone(&verifier)))
        .layer(RequireSignatureLayer::new(
            Arc::clone(&verifier),
            SignaturePolicy::new(),
        ))
        .service(handler);
    let request = |sign: bool| {
        let proof = client
            .proof_at("POST", URL, Some(&token), None, NOW)
            .unwrap();
        let (mut parts, ()) = Request::post(URL)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        if sign {
            let options = SignatureOptions::new(&REQUEST_COMPONENTS).created(NOW);
            sign_request(&client, &options, &mut parts, BODY.as_bytes()).unwrap();
        }
        parts.uri = "/pay".parse().unwrap();
        Request::from_parts(parts, Full::from(BODY))
    };
    // The raw verify: one ES256 check of a signature over a base of the same size, key parsed
    // from its point per call, as the path's proof check does for a new key.
    let raw_key = ProofSigner::generate(Algorithm::ES256).unwrap();
    let jwk: serde_json::Value = serde_json::from_str(&raw_key.public_jwk()).unwrap();
    let member = |name: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().unwrap())
            .unwrap()
    };
    let mut point = vec![4];
    point.extend(member("x"));
    point.extend(member("y"));
    let message = vec![b'a'; 300];
    let compact = raw_key.sign_compact_raw(&message, b"{}").unwrap();
    let (input, signature) = compact.rsplit_once('.').unwrap();
    let signature = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .unwrap()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let plains: Vec<_> = (0..batch).map(|_| request(false)).collect();
        let signeds: Vec<_> = (0..batch).map(|_| request(true)).collect();
        let (mut t_plain, mut t_signed, mut t_raw) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut plains = plains.into_iter();
        let mut signeds = signeds.into_iter();
        for _ in 0..batch / 10 {
            let start = Instant::now();
            for r in plains.by_ref().take(10) {
                let response = runtime.block_on(plain.clone().oneshot(r)).unwrap();
                assert_eq!(response.status(), 200);
            }
            t_plain += start.elapsed();
            let start = Instant::now();
            for r in signeds.by_ref().take(10) {
                let response = runtime.block_on(signed.clone().oneshot(r)).unwrap();
                assert_eq!(response.status(), 200, "{:?}", response.headers());
            }
            t_signed += start.elapsed();
            let start = Instant::now();
            for _ in 0..10 {
                let key = UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, black_box(&point));
                assert!(key.verify(input.as_bytes(), &signature).is_ok());
            }
            t_raw += start.elapsed();
        }
        let (p, s, r) = (
            t_plain.as_secs_f64(),
            t_signed.as_secs_f64(),
            t_raw.as_secs_f64(),
        );
        let n = batch as f64;
        println!(
            "round {round:2}: path {:.1} us, signed {:.1} us, raw {:.1} us; signed/path {:.3}x, extra {:+.1}%",
            p / n * 1e6,
            s / n * 1e6,
            r / n * 1e6,
            s / p,
            (s - p - r) / p * 100.0
        );
        ratios.push((s / p, (s - p - r) / p * 100.0, p / r));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median over {rounds} rounds: signed/path {:.3}x, extra beyond one raw verify {:+.1}% of the path, path/raw {:.3}x",
        median(ratios.iter().map(|r| r.0).collect()),
        median(ratios.iter().map(|r| r.1).collect()),
        median(ratios.iter().map(|r| r.2).collect()),
    );
}
