//! What the axum adapter costs per request above the verification itself, in process (no
//! sockets, so none of their noise): the same fresh proofs through
//!
//! - **direct**: an axum `Router` whose handler calls `Verifier::decide` itself and answers the
//!   JSON of the claims, and
//! - **layer**: the same `Router` with `RequirePopLayer` and a `PopAuth<SharedClaims>` handler
//!   answering the same JSON (what `axum_resource_server` serves),
//!
//! interleaved in rounds; prints the medians per request and the layer's share above direct.
//!
//! `cargo bench -p axum-pop --bench layer` (`-- --rounds N`)

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)] // bench binary

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::any;
use axum_pop::{PopAuth, RequirePopLayer, SharedClaims};
use tower::ServiceExt;
use tower_pop::clock::ManualClock;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;
use tower_pop::{Algorithm, Outcome, PopConfig, PopRequest, RoutePolicy, Verifier};

const NOW: u64 = 1_700_000_000;
const URL: &str = "https://api.example.com/whoami";
const BATCH: usize = 400;

fn verifier(issuer: &TestIssuer) -> Arc<Verifier> {
    Arc::new(Verifier::new(
        PopConfig::builder()
            .public_origin("https://api.example.com")
            .issuer(issuer.issuer())
            .audience(issuer.audience())
            .jwks_json(issuer.jwks_json())
            .clock(Arc::new(ManualClock::new(NOW)))
            .build()
            .unwrap(),
    ))
}

fn requests(client: &ProofSigner, auth: &str, token: &str) -> Vec<Request> {
    (0..BATCH)
        .map(|_| {
            let proof = client.proof_at("GET", URL, Some(token), None, NOW).unwrap();
            Request::get("/whoami")
                .header("host", "api.example.com")
                .header("authorization", auth)
                .header("dpop", proof)
                .body(Body::empty())
                .unwrap()
        })
        .collect()
}

async fn run(app: &Router, batch: Vec<Request>) -> f64 {
    let start = Instant::now();
    for request in batch {
        let response = app.clone().oneshot(black_box(request)).await.unwrap();
        assert_eq!(response.status(), 200);
        black_box(response);
    }
    start.elapsed().as_nanos() as f64 / BATCH as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .map_or(15, |n| n.parse().unwrap());
    let issuer = TestIssuer::new("https://as.example.com", "https://api.example.com");
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = issuer.dpop_token(NOW, client.thumbprint());
    let auth = format!("DPoP {token}");

    let direct_verifier = verifier(&issuer);
    let direct = Router::new().route(
        "/whoami",
        any(move |request: Request| {
            let verifier = Arc::clone(&direct_verifier);
            async move {
                let (parts, _) = request.into_parts();
                let policy = RoutePolicy::new();
                match verifier.decide(&PopRequest::from(&parts), &policy).await {
                    Outcome::Verified(verified) => Json(verified.claims()).into_response(),
                    _ => Response::new(Body::empty()),
                }
            }
        }),
    );
    let layered = Router::new()
        .route(
            "/whoami",
            any(|auth: PopAuth<SharedClaims>| async move { Json(auth.0.claims).into_response() }),
        )
        .route_layer(RequirePopLayer::new(verifier(&issuer)));

    let (mut direct_ns, mut layer_ns) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = (
            requests(&client, &auth, &token),
            requests(&client, &auth, &token),
        );
        // Alternate which goes first: the machine drifts.
        if round % 2 == 0 {
            direct_ns.push(run(&direct, a).await);
            layer_ns.push(run(&layered, b).await);
        } else {
            layer_ns.push(run(&layered, b).await);
            direct_ns.push(run(&direct, a).await);
        }
    }
    let (direct, layer) = (median(direct_ns), median(layer_ns));
    println!("per request, median of {rounds} rounds of {BATCH}:");
    println!(
        "  direct (handler calls the verifier)   {:8.2} us",
        direct / 1e3
    );
    println!(
        "  layer  (RequirePopLayer + PopAuth)    {:8.2} us",
        layer / 1e3
    );
    println!(
        "  layer - direct                        {:8.2} us ({:+.1} %)",
        (layer - direct) / 1e3,
        100.0 * (layer - direct) / direct
    );
}
