//! A browser app using DPoP against an API on another origin, with the CORS preset.
//!
//! ```text
//! (cd examples/interop && npm ci)      # once: the page uses panva's `dpop` package
//! cargo run --example browser_demo     # then open the page URL it prints
//! ```
//!
//! One process, loopback only, two origins:
//! - the **page origin** (`--page-listen`, default `127.0.0.1:8400`) serves a static page, its
//!   script, panva's `dpop` ESM build (read from `examples/interop/node_modules` at run time, no
//!   CDN), and the demo authorization server's token endpoint (`POST /token`);
//! - the **API origin** (`--api-listen`, default `127.0.0.1:8401`): axum with tower-pop's
//!   `RequirePopLayer` in front of `/whoami`, requiring server nonces (RFC 9449 §9), and
//!   `axum_pop::cors::dpop_cors` for the page origin outside it.
//!
//! The page generates a non-extractable ES256 key with WebCrypto, gets a DPoP-bound token, calls
//! the API cross-origin (the browser sends a preflight, because of the `Authorization` and `DPoP`
//! headers), answers `use_dpop_nonce` by reading `DPoP-Nonce` and retrying, then shows that the
//! same token with another key is refused, reading the `WWW-Authenticate` challenge. It writes
//! the outcome as JSON into `#outcome` (what `examples/interop/browser.mjs` checks in headless
//! Chromium), with what the API saw (`/api-log` on the page origin).
//!
//! `--no-cors` serves the API without the preset: the preflight reaches the verifier, is
//! refused, and the browser never sends the call (the page reports a network error).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{any, get};
use axum_pop::cors::dpop_cors;
use axum_pop::{PopAuth, RequirePopLayer, SharedClaims};
use clap::Parser;
use examples_common::authorization_server::{
    AUDIENCE, AuthorizationServer, CLIENT_ID, CLIENT_SECRET,
};
use examples_common::{init_logging, whoami};
use serde_json::{Value, json};
use tower_pop::nonce::Nonces;
use tower_pop::{PopConfig, Verifier};

const INDEX_HTML: &str = include_str!("browser/index.html");
const APP_JS: &str = include_str!("browser/app.js");
/// panva's `dpop`, installed by `npm ci` in examples/interop.
const DPOP_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/interop/node_modules/dpop/build/index.js"
);
/// The API requests kept for `/api-log` (the demo's own bound).
const LOG_CAPACITY: usize = 64;

/// The command line.
#[derive(Debug, Parser)]
#[command(about = "A browser app using DPoP against an API on another origin")]
struct Args {
    /// Address of the page origin (page, script, token endpoint).
    #[arg(long, default_value = "127.0.0.1:8400", value_name = "ADDR")]
    page_listen: SocketAddr,
    /// Address of the API origin.
    #[arg(long, default_value = "127.0.0.1:8401", value_name = "ADDR")]
    api_listen: SocketAddr,
    /// Serve the API without the CORS preset, to see the browser refuse.
    #[arg(long)]
    no_cors: bool,
}

/// What the API saw of one request: enough to tell a preflight from a call.
type ApiLog = Arc<Mutex<VecDeque<Value>>>;

/// Record every request reaching the API (outermost, so preflights are seen too).
async fn record(State(log): State<ApiLog>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut entry = json!({
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "origin": header("origin"),
        "access_control_request_headers": header("access-control-request-headers"),
    });
    let response = next.run(request).await;
    entry["status"] = json!(response.status().as_u16());
    entry["access_control_allow_origin"] = json!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok())
    );
    if let Ok(mut log) = log.lock() {
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }
    response
}

fn asset(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn run(args: Args) -> Result<(), String> {
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let page_listener = bind(args.page_listen).await?;
    let api_listener = bind(args.api_listen).await?;
    let page_addr = page_listener.local_addr().map_err(|e| e.to_string())?;
    let api_addr = api_listener.local_addr().map_err(|e| e.to_string())?;
    let (page_origin, api_origin) = (format!("http://{page_addr}"), format!("http://{api_addr}"));
    let dpop_js = std::fs::read_to_string(DPOP_JS)
        .map_err(|e| format!("{DPOP_JS}: {e}; run `npm ci` in examples/interop"))?;

    // The authorization server lives on the page origin: the token request is same-origin.
    let auth = AuthorizationServer::new(&page_origin).map_err(|e| e.to_string())?;

    // The API, requiring nonces it issued. Plain http is for this loopback demo only: DPoP
    // needs TLS.
    let config = PopConfig::builder()
        .public_origin(&api_origin)
        .insecure_allow_http()
        .issuer(auth.issuer())
        .audience(AUDIENCE)
        .jwks_json(auth.jwks_json())
        .require_nonce(Nonces::random().map_err(|e| e.to_string())?)
        .build()
        .map_err(|e| e.to_string())?;
    let api = Router::new()
        .route(
            "/whoami",
            any(|auth: PopAuth<SharedClaims>| async move { Json(whoami(&auth)).into_response() }),
        )
        .route_layer(RequirePopLayer::new(Verifier::new(config)));
    // The one line that lets the page call the API: outside the verifier.
    let api = if args.no_cors {
        api
    } else {
        api.layer(dpop_cors([&page_origin]).map_err(|e| e.to_string())?)
    };
    let log = ApiLog::default();
    let api = api.layer(middleware::from_fn_with_state(Arc::clone(&log), record));

    let config = json!({
        "api": api_origin,
        "token_endpoint": auth.token_url(),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "cors": !args.no_cors,
    });
    let page = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML.to_owned()) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS.to_owned()) }),
        )
        .route(
            "/vendor/dpop.js",
            get(move || async move { asset("text/javascript; charset=utf-8", dpop_js) }),
        )
        .route("/config.json", get(move || async move { Json(config) }))
        .route(
            "/api-log",
            get(move || async move {
                let entries: Vec<Value> = log
                    .lock()
                    .map(|l| l.iter().cloned().collect())
                    .unwrap_or_default();
                let mut headers = HeaderMap::new();
                headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
                (headers, Json(entries))
            }),
        )
        .merge(auth.router());

    println!("page {page_origin}/");
    println!("api {api_origin}");
    println!(
        "Open the page in a browser; the API {} the CORS preset. Ctrl-C stops.",
        if args.no_cors { "runs WITHOUT" } else { "has" }
    );
    let page = axum::serve(page_listener, page);
    let api = axum::serve(api_listener, api);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::select! {
        served = page.into_future() => served.map_err(|e| e.to_string()),
        served = api.into_future() => served.map_err(|e| e.to_string()),
        () = shutdown => Ok(()),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logging();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
