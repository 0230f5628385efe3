//! An axum resource server protected by tower-pop: `/whoami` answers with the verified claims
//! and the binding proven (DPoP, mTLS or, with `--allow-bearer`, none); `/health` is open.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example axum_resource_server -- \
//!     --issuer https://as.example.com --audience https://api.example.com \
//!     --jwks-file issuer-jwks.json --public-url https://api.example.com
//! ```
//!
//! Flags, routes and answers are a stable interface, identical to `actix_resource_server`.

use std::sync::Arc;

use axum::response::IntoResponse as _;
use axum::routing::{any, get};
use axum::{Json, Router};
use axum_pop::cors::dpop_cors;
use axum_pop::{
    PolicyBuilder as _, PopAuth, RequirePopLayer, SharedClaims, Verifier, metadata_route,
};
use examples_common::{Args, init_logging, serve_axum, serve_metrics, whoami};

#[tokio::main]
async fn main() {
    init_logging();
    let args = Args::from_env();
    let cors = args.cors_origins().unwrap_or_else(|e| fail(&e));
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot listen on {}: {e}", args.listen)),
    };
    let bound = listener.local_addr().unwrap_or(args.listen);
    // Before the verifier, which describes its metrics to the recorder.
    let metrics = args
        .metrics_listen
        .map(|addr| serve_metrics(addr).unwrap_or_else(|e| fail(&e)));
    let tls = args.tls().unwrap_or_else(|e| fail(&e));
    let config = args.config(bound).await.unwrap_or_else(|e| fail(&e));
    let verifier = Arc::new(Verifier::new(config));

    let app = Router::new()
        .route(
            "/whoami",
            any(|auth: PopAuth<SharedClaims>| async move { Json(whoami(&auth)).into_response() }),
        )
        .route_layer(RequirePopLayer::new(Arc::clone(&verifier)).policy(args.whoami_policy()))
        .route("/health", get(|| async { "ok" }))
        .merge(metadata_route(&verifier).unwrap_or_default());
    // Outside the verifier (added last): preflights never reach it, refusals get CORS headers.
    let app = match cors {
        Some(origins) => app.layer(dpop_cors(origins).unwrap_or_else(|e| fail(&e.to_string()))),
        None => app,
    };

    println!("listening on {}://{bound}", args.scheme());
    if let Some(addr) = metrics {
        println!("metrics on http://{addr}/metrics");
    }
    let served = serve_axum(listener, tls, app).await;
    if let Err(e) = served {
        fail(&format!("server error: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
