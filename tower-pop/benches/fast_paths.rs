//! What each fast path of the verify path saves, against the full reader it stands for and as a
//! share of one raw signature verification (the verify path costs about one: `verify_ratio`).
//! A fast path stays only where it saves at least 1 % of the path (`STYLE.md` §1.7).
//!
//! - **json**: a proof's header and claims read by the serde-free reader (`jose::json`), against
//!   serde alone.
//! - **htu**: a proof naming the origin and path exactly, compared without normalising.
//! - **remembered key**: a later proof with the token's remembered key and kept header (not
//!   read, hashed or imported again), against reading, hashing and importing it as a first proof.
//!
//! Every pair runs interleaved in rounds (the machines drift); the medians of the per-round
//! savings are printed, with each as a share of that round's raw ES256, EdDSA and PS256 verify.
//!
//! `cargo bench -p tower-pop --bench fast_paths` (`-- --rounds N`)

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)] // bench binary

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tower_pop::__fuzzing::fast_paths::{self as fp, Remembered};
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;

const ORIGIN: &str = "https://api.example.com";
const PATH: &str = "/whoami";
const ITERATIONS: u32 = 2_000;

/// Nanoseconds per call of `f`, over [`ITERATIONS`] calls.
fn time(mut f: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        assert!(black_box(f()));
    }
    start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One raw verification of a proof's signature with the key parsed from its JWK.
fn raw_verify(alg: Algorithm, proof: &str) -> bool {
    let (input, signature) = proof.rsplit_once('.').unwrap();
    let header = input.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    let member = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(header["jwk"][name].as_str().unwrap())
            .unwrap()
    };
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    match alg {
        Algorithm::ES256 => {
            let point = [&[4u8][..], &member("x"), &member("y")].concat();
            UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                .verify(input.as_bytes(), &signature)
                .is_ok()
        }
        Algorithm::EdDSA => UnparsedPublicKey::new(&sig::ED25519, member("x"))
            .verify(input.as_bytes(), &signature)
            .is_ok(),
        _ => {
            let (n, e) = (member("n"), member("e"));
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&sig::RSA_PSS_2048_8192_SHA256, input.as_bytes(), &signature)
                .is_ok()
        }
    }
}

struct Client {
    alg: Algorithm,
    proof: String,
    jkt: String,
}

fn client(alg: Algorithm, token: &str) -> Client {
    let signer = ProofSigner::generate(alg).unwrap();
    let proof = signer
        .proof_at("GET", &format!("{ORIGIN}{PATH}"), Some(token), None, 1)
        .unwrap();
    Client {
        alg,
        proof,
        jkt: signer.thumbprint().to_owned(),
    }
}

fn main() {
    let rounds = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .map_or(15, |n| n.parse().unwrap());
    // A token of a typical RFC 9068 size (about 1,000 bytes).
    let token = format!("eyJhbGciOiJFUzI1NiJ9.{}.sig", "A".repeat(960));
    let clients: Vec<Client> = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::PS256]
        .into_iter()
        .map(|alg| client(alg, &token))
        .collect();
    let es256 = &clients[0];
    let (header, claims) = {
        let mut parts = es256.proof.split('.');
        let mut part = || URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        (part(), part())
    };
    let htu = format!("{ORIGIN}{PATH}");
    let remembered: Vec<Remembered> = clients
        .iter()
        .map(|c| {
            let known = Remembered::default();
            assert!(fp::proof_remembered(&known, &c.proof, &c.jkt));
            known
        })
        .collect();

    let mut savings: Vec<(String, Vec<f64>)> = Vec::new();
    let mut raw: Vec<Vec<f64>> = vec![Vec::new(); clients.len()];
    let mut record = |name: String, saved: f64| match savings.iter_mut().find(|(n, _)| *n == name) {
        Some((_, values)) => values.push(saved),
        None => savings.push((name, vec![saved])),
    };
    for _ in 0..rounds {
        for (i, c) in clients.iter().enumerate() {
            raw[i].push(time(|| raw_verify(c.alg, &c.proof)));
        }
        let json_full = time(|| fp::json_full(&header) && fp::json_full(&claims));
        let json_fast = time(|| fp::json_fast(&header) && fp::json_fast(&claims));
        record("json (header and claims)".into(), json_full - json_fast);
        let htu_full = time(|| fp::htu_full(&htu, ORIGIN, PATH));
        let htu_fast = time(|| fp::htu_fast(&htu, ORIGIN, PATH));
        record("htu".into(), htu_full - htu_fast);
        for (c, known) in clients.iter().zip(&remembered) {
            let full = time(|| fp::proof_full(&c.proof, &c.jkt));
            let fast = time(|| fp::proof_remembered(known, &c.proof, &c.jkt));
            record(format!("remembered key ({})", c.alg), full - fast);
        }
    }
    let raw: Vec<f64> = raw.into_iter().map(median).collect();
    println!(
        "raw verify (median of {rounds} rounds): ES256 {:.1} us, EdDSA {:.1} us, PS256 {:.1} us",
        raw[0] / 1e3,
        raw[1] / 1e3,
        raw[2] / 1e3
    );
    println!(
        "{:<34} {:>10} {:>8} {:>8} {:>8}",
        "fast path", "saves (ns)", "ES256", "EdDSA", "PS256"
    );
    for (name, values) in savings {
        let saved = median(values);
        let share = |i: usize| format!("{:.1} %", 100.0 * saved / raw[i]);
        println!(
            "{name:<34} {saved:>10.0} {:>8} {:>8} {:>8}",
            share(0),
            share(1),
            share(2)
        );
    }
}
