//! An MCP server (Streamable HTTP, on the official Rust SDK `rmcp`) protected by DPoP and
//! mTLS-bound tokens: every request to `/mcp` goes through `RequirePopLayer` like any route,
//! the tools read the verified token, and `add` needs scope `tools:add` (403
//! `insufficient_scope` naming it before the call, as MCP's "Scope Challenge Handling" asks).
//! RFC 9728 metadata is served by default, as MCP's authorization specification requires: the
//! resource is `--resource`, else the public URL + `/mcp`, and every 401 challenge points at
//! it with `resource_metadata`. The same flags as the HTTP example servers.
//!
//! ```text
//! cargo run --release --example mcp_server -- \
//!     --issuer https://as.example.com --audience https://api.example.com/mcp \
//!     --jwks-file issuer-jwks.json --public-url https://api.example.com
//! ```
//!
//! A client sends each JSON-RPC `POST` (and the SSE `GET`, the session `DELETE`) with
//! `Authorization: DPoP <token>` and a proof for that method and `https://api.example.com/mcp`;
//! `examples_common::mcp::DpopMcpClient` does it for the SDK's client.

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::get;
use axum_pop::{PolicyBuilder as _, RequirePopLayer, metadata_route};
use examples_common::mcp::{PopTools, TOOL_SCOPES, tool_scopes};
use examples_common::{Args, Startup, fail, serve_axum};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

/// The MCP endpoint's path.
const MCP_PATH: &str = "/mcp";

#[tokio::main]
async fn main() {
    examples_common::init_logging();
    let mut args = Args::from_env();
    args.more_scopes = TOOL_SCOPES.iter().map(|(_, s)| (*s).to_owned()).collect();
    let start = Startup::from_args(args, Some(MCP_PATH)).await;
    // Flags of the HTTP servers that this server does not implement are refused, not
    // silently ignored.
    if start.signatures.is_some() {
        fail("--require-signature does not apply to the MCP server");
    }
    // rmcp checks `Host` against a list (DNS rebinding): the public URL's host and loopback.
    let public = start.verifier.config().public_origin().to_owned();
    let host = public
        .split_once("://")
        .map_or(public.as_str(), |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned();
    let hosts = [
        host.clone(),
        host.rsplit_once(':')
            .map_or(host.clone(), |(h, _)| h.to_owned()),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mcp = StreamableHttpService::new(
        || Ok(PopTools::default()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_allowed_hosts(hosts),
    );
    let protected = Router::new()
        .nest_service(MCP_PATH, mcp)
        .layer(middleware::from_fn(tool_scopes))
        .layer(RequirePopLayer::new(Arc::clone(&start.verifier)).policy(start.policy.clone()));
    let mut app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(protected)
        .merge(metadata_route(&start.verifier).unwrap_or_default());
    if let Some(origins) = start.cors.clone() {
        app =
            app.layer(axum_pop::cors::dpop_cors(origins).unwrap_or_else(|e| fail(&e.to_string())));
    }
    let listener = start.tokio_listener();
    start.announce();
    if let Err(e) = serve_axum(listener, start.tls, app).await {
        fail(&format!("server error: {e}"));
    }
}
