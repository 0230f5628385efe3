//! An actix-web resource server protected by tower-pop: the same command line, routes, JSON,
//! statuses and headers as `axum_resource_server`. `/whoami` answers with the verified claims and
//! the binding proven; `/health` is open.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example actix_resource_server -- \
//!     --issuer https://as.example.com --audience https://api.example.com \
//!     --jwks-file issuer-jwks.json --public-url https://api.example.com
//! ```

use std::sync::Arc;

use actix_pop::cors::{Cors, dpop_cors};
use actix_pop::tls::listen_tls;
use actix_pop::{PolicyBuilder as _, PopAuth, RequirePop, SharedClaims, Verifier, metadata_route};
use actix_web::middleware::Condition;
use actix_web::{App, HttpResponse, HttpServer, web};
use examples_common::{Args, init_logging, serve_metrics, whoami};

async fn whoami_handler(auth: PopAuth<SharedClaims>) -> HttpResponse {
    HttpResponse::Ok().json(whoami(&auth))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

#[actix_web::main]
async fn main() {
    init_logging();
    let args = Args::from_env();
    let cors = args.cors_origins().unwrap_or_else(|e| fail(&e));
    let listener = std::net::TcpListener::bind(args.listen)
        .unwrap_or_else(|e| fail(&format!("cannot listen on {}: {e}", args.listen)));
    let bound = listener.local_addr().unwrap_or(args.listen);
    // Before the verifier, which describes its metrics to the recorder.
    let metrics = args
        .metrics_listen
        .map(|addr| serve_metrics(addr).unwrap_or_else(|e| fail(&e)));
    let tls = args.tls().unwrap_or_else(|e| fail(&e));
    let config = args.config(bound).await.unwrap_or_else(|e| fail(&e));
    let verifier = Arc::new(Verifier::new(config));

    let policy = args.whoami_policy();
    let server = HttpServer::new(move || {
        // On the App, outside every resource's RequirePop: preflights never reach the verifier,
        // refusals get CORS headers. (Cors is per worker: it is not Send.)
        let cors = match &cors {
            Some(origins) => Condition::new(
                true,
                dpop_cors(origins).unwrap_or_else(|e| fail(&e.to_string())),
            ),
            None => Condition::new(false, Cors::default()),
        };
        let app = App::new().wrap(cors);
        let app = match metadata_route(&verifier) {
            Some(metadata) => app.service(metadata),
            None => app,
        };
        app.service(
            web::resource("/whoami")
                .wrap(RequirePop::new(Arc::clone(&verifier)).policy(policy.clone()))
                .to(whoami_handler),
        )
        .service(
            web::resource("/health")
                .route(web::get().to(health))
                .route(web::head().to(health)),
        )
    })
    // One worker per core, as the axum server's tokio runtime has (actix-web's default counts
    // physical cores only).
    .workers(examples_common::workers());
    let server = match &tls {
        Some(tls) => listen_tls(server, listener, tls),
        None => server.listen(listener),
    }
    .unwrap_or_else(|e| fail(&format!("cannot serve: {e}")));

    println!("listening on {}://{bound}", args.scheme());
    if let Some(addr) = metrics {
        println!("metrics on http://{addr}/metrics");
    }
    if let Err(e) = server.run().await {
        fail(&format!("server error: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
