//! The verify path as a multiple of one raw signature verification, for ES256, EdDSA and
//! PS256 proofs, measured in bracketed rounds: each round times a batch of proofs through raw
//! verifies and through `Verifier::verify` (fresh proof, cached token), interleaved ten proofs at
//! a time (raw then path, path then raw, ...), and reports the path's total over the raw one. The machines this runs on drift by tens of
//! percent between rounds, so only ratios within a round mean anything; the median over rounds is
//! the number to quote.
//!
//! The raw verify parses the key from the proof's JWK per call (base64url of the members and
//! the key import), as every verifier must: a proof carries its own key.
//!
//! The replay store starts empty, or holding `--live N` entries of other clients: with a million
//! (`--live 1000000`), as a loaded server's store does, each insert pays the cache and TLB misses
//! of a table larger than the caches.
//!
//! With `--first-proofs`, every proof measured is the first one presented with its token (each
//! its own, cached beforehand by a proof refused for its `htm`): the path then also hashes the
//! key for its thumbprint, imports it, and remembers it for the token. Without it, as in steady
//! state, every proof's key is the one its token already remembers, compared byte for byte and
//! verified with the key as imported for the first proof (the raw verify imports it every time).
//!
//! `cargo bench -p tower-pop --bench verify_ratio` (`-- --rounds N --batch M` to change the size)

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)] // bench binary

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::replay::{MemoryReplayCache, ReplayEntry, ReplayOutcome};
use tower_pop::test_util::TestIssuer;
use tower_pop::{Algorithm, ManualClock, PopRequest, Verifier};

mod common;

const NOW: u64 = 1_700_000_000;
const URL: &str = "https://api.example.com/whoami";

/// One raw verification of `proof`'s signature with the key parsed from its JWK, per call.
fn raw_verify(alg: Algorithm, jwk: &Value, input: &[u8], signature: &[u8]) -> bool {
    let member = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    match alg {
        Algorithm::ES256 => {
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend(member("x"));
            point.extend(member("y"));
            UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                .verify(input, signature)
                .is_ok()
        }
        Algorithm::EdDSA => UnparsedPublicKey::new(&sig::ED25519, member("x"))
            .verify(input, signature)
            .is_ok(),
        Algorithm::PS256 => {
            let (n, e) = (member("n"), member("e"));
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&sig::RSA_PSS_2048_8192_SHA256, input, signature)
                .is_ok()
        }
        _ => unreachable!("only the three FAPI 2.0 algorithms are measured"),
    }
}

struct Setup {
    verifier: Verifier,
    issuer: TestIssuer,
    client: ProofSigner,
    token: String,
    auth: String,
    jwk: Value,
}

/// One proof to time: the raw verify's signing input and signature, and the request's proof
/// and `Authorization` value.
struct Minted {
    input: String,
    signature: Vec<u8>,
    proof: String,
    auth: String,
}

/// The default in-memory replay store, holding `live` proofs of other clients (`--live N`): with
/// a million or so, as a loaded server's store does, the measured inserts pay the cache and TLB
/// misses of a table that does not fit the caches, and none of the growth of a store filling
/// from empty.
fn replay_store(live: u64) -> Arc<MemoryReplayCache> {
    let store = MemoryReplayCache::default();
    for i in 0..live {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&i.to_le_bytes());
        key[8..16].copy_from_slice(
            &(i ^ 0x9e37_79b9_7f4a_7c15)
                .wrapping_mul(0xbf58_476d_1ce4_e5b9)
                .to_le_bytes(),
        );
        let entry = ReplayEntry::new(key, NOW, NOW + 61);
        assert_eq!(
            store.insert_if_absent_sync(entry).unwrap(),
            ReplayOutcome::Fresh
        );
    }
    Arc::new(store)
}

fn setup(alg: Algorithm, live: u64) -> Setup {
    let issuer = TestIssuer::new("https://as.example.com", "https://api.example.com");
    let client = ProofSigner::generate(alg).unwrap();
    let verifier = Verifier::new(
        issuer
            .config("https://api.example.com")
            .clock(Arc::new(ManualClock::new(NOW)))
            .replay_cache(replay_store(live))
            // Room for every round's tokens with `--first-proofs`.
            .token_cache_capacity(100_000)
            .token_cache_bytes(1 << 30)
            .build()
            .unwrap(),
    );
    let token = issuer.dpop_token(NOW, client.thumbprint());
    let auth = format!("DPoP {token}");
    let jwk = serde_json::from_str(&client.public_jwk()).unwrap();
    Setup {
        verifier,
        issuer,
        client,
        token,
        auth,
        jwk,
    }
}

fn time_raw(alg: Algorithm, jwk: &Value, proofs: &[Minted]) -> Duration {
    let start = Instant::now();
    for m in proofs {
        assert!(raw_verify(
            alg,
            black_box(jwk),
            black_box(m.input.as_bytes()),
            black_box(&m.signature)
        ));
    }
    start.elapsed()
}

async fn time_path_async(s: &Setup, proofs: &[Minted]) -> Duration {
    let start = Instant::now();
    for m in proofs {
        let req = PopRequest::new("GET", "/whoami")
            .authorization(m.auth.as_bytes())
            .dpop(m.proof.as_bytes());
        s.verifier.verify(black_box(&req)).await.unwrap();
    }
    start.elapsed()
}

/// `batch` fresh proofs (unique `jti`), minted outside the timed sections: with the setup's
/// token, or with `first_proofs` each with a token of its own, cached by a refused proof first
/// (so the token is verified, but no key is remembered for it).
async fn mint(s: &Setup, batch: usize, first_proofs: bool) -> Vec<Minted> {
    let mut minted = Vec::with_capacity(batch);
    for _ in 0..batch {
        let (token, auth) = if first_proofs {
            // A random `jti` each: a token of its own.
            let token = s.issuer.dpop_token(NOW, s.client.thumbprint());
            let auth = format!("DPoP {token}");
            let refused = s
                .client
                .proof_at("POST", URL, Some(&token), None, NOW)
                .unwrap();
            let req = PopRequest::new("GET", "/whoami")
                .authorization(auth.as_bytes())
                .dpop(refused.as_bytes());
            assert!(s.verifier.verify(&req).await.is_err(), "htm differs");
            (token, auth)
        } else {
            (s.token.clone(), s.auth.clone())
        };
        let proof = s
            .client
            .proof_at("GET", URL, Some(&token), None, NOW)
            .unwrap();
        let (input, signature) = proof.rsplit_once('.').unwrap();
        minted.push(Minted {
            input: input.to_owned(),
            signature: URL_SAFE_NO_PAD.decode(signature).unwrap(),
            auth,
            proof,
        });
    }
    minted
}

fn time_path(runtime: &tokio::runtime::Runtime, s: &Setup, proofs: &[Minted]) -> Duration {
    // One `block_on` for the batch, as a server runs the verifier inside its runtime.
    runtime.block_on(time_path_async(s, proofs))
}

/// Proofs per slice of a round: raw and path alternate slice by slice (raw first, then path
/// first), so both see the same few milliseconds of this machine's drift.
const SLICE: usize = 10;

/// One round: the raw verify and the path over the same proofs, interleaved in slices;
/// (raw, path) totals.
fn time_round(
    runtime: &tokio::runtime::Runtime,
    alg: Algorithm,
    s: &Setup,
    proofs: &[Minted],
) -> (Duration, Duration) {
    runtime.block_on(async {
        let (mut raw, mut path) = (Duration::ZERO, Duration::ZERO);
        for (i, slice) in proofs.chunks(SLICE).enumerate() {
            if i % 2 == 0 {
                raw += time_raw(alg, &s.jwk, slice);
                path += time_path_async(s, slice).await;
            } else {
                path += time_path_async(s, slice).await;
                raw += time_raw(alg, &s.jwk, slice);
            }
        }
        (raw, path)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = common::quick(&args);
    let rounds = common::arg(&args, "--rounds", if quick { 1 } else { 15 });
    let batch = common::arg(&args, "--batch", if quick { 4 } else { 400 });
    let live = common::arg(&args, "--live", 0) as u64;
    let first_proofs = args.iter().any(|a| a == "--first-proofs");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if args.iter().any(|a| a == "--profile") {
        // For `perf record -D`: mint first, then only the path, for a clean profile.
        let alg = args
            .iter()
            .position(|a| a == "--alg")
            .and_then(|i| args.get(i + 1))
            .map_or(Algorithm::ES256, |a| a.parse().unwrap());
        let s = setup(alg, live);
        let proofs = runtime.block_on(mint(&s, batch, first_proofs));
        println!("minted");
        std::thread::sleep(Duration::from_secs(1));
        let path = time_path(&runtime, &s, &proofs);
        println!("path {:.1} µs", path.as_secs_f64() * 1e6 / batch as f64);
        return;
    }
    let proofs_are = if first_proofs {
        "each the first proof with its token"
    } else {
        "with one token, whose key is remembered"
    };
    println!(
        "rounds of {batch} proofs ({proofs_are}), raw and path interleaved {SLICE} at a time; \
         path / raw per round; {live} live entries of other clients in the replay store"
    );
    println!(
        "{:<6} {:>12} {:>12} {:>8} {:>8} {:>8}",
        "alg", "raw µs", "path µs", "median", "min", "max"
    );
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::PS256] {
        let s = setup(alg, live);
        // Warm the token cache, as in steady state.
        let warm = s
            .client
            .proof_at("GET", URL, Some(&s.token), None, NOW)
            .unwrap();
        let req = PopRequest::new("GET", "/whoami")
            .authorization(s.auth.as_bytes())
            .dpop(warm.as_bytes());
        runtime.block_on(s.verifier.verify(&req)).unwrap();
        let mut ratios = Vec::with_capacity(rounds);
        let (mut raw_total, mut path_total) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            let proofs = runtime.block_on(mint(&s, batch, first_proofs));
            let (raw, path) = time_round(&runtime, alg, &s, &proofs);
            ratios.push(path.as_secs_f64() / raw.as_secs_f64());
            raw_total += raw;
            path_total += path;
        }
        ratios.sort_by(f64::total_cmp);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / (rounds * batch) as f64;
        println!(
            "{:<6} {:>12.1} {:>12.1} {:>7.3}x {:>7.3}x {:>7.3}x",
            format!("{alg:?}"),
            per(raw_total),
            per(path_total),
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
}
