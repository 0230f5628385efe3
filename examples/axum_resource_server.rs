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

use std::convert::Infallible;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use axum_pop::cors::dpop_cors;
use axum_pop::lifetime;
use axum_pop::{
    PolicyBuilder as _, PopAuth, RequirePopLayer, RequireSignatureLayer, SharedClaims,
    metadata_route,
};
use examples_common::{Startup, fail, serve_axum, whoami};
use tokio_stream::StreamExt as _;

/// `GET /ws`: a WebSocket echo, closed with 1008 when the token expires (or is revoked).
async fn websocket(auth: PopAuth<SharedClaims>, upgrade: WebSocketUpgrade) -> Response {
    let authorization = auth.lifetime.clone();
    let upgrade = examples_common::websocket::bounded_upgrade(upgrade);
    upgrade.on_upgrade(move |mut socket: WebSocket| async move {
        let ended = authorization.ended();
        tokio::pin!(ended);
        loop {
            tokio::select! {
                end = &mut ended => {
                    let _ = socket.send(lifetime::close_message_for(end)).await;
                    break;
                }
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if socket.send(Message::Text(text)).await.is_err() {
                            break;
                        }
                    }
                    Some(Err(error)) => {
                        if let Some(close) = examples_common::websocket::close_message_after(error) {
                            let _ = socket.send(close).await;
                        }
                        break;
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    })
}

/// `GET /events`: one event a second, `{"sub": ..., "n": N}`, until the token expires.
async fn events(auth: PopAuth<SharedClaims>) -> Response {
    let stream = examples_common::events(auth.0)
        .map(|data| Ok::<_, Infallible>(Event::default().data(data)));
    Sse::new(stream).into_response()
}

#[tokio::main]
async fn main() {
    let start = Startup::from_env().await;
    let verifier = &start.verifier;
    let whoami_route = Router::new().route(
        "/whoami",
        any(|auth: PopAuth<SharedClaims>| async move { Json(whoami(&auth)).into_response() }),
    );
    // `--require-signature`: inside the token layer (route layers added first run last).
    let whoami_route = match &start.signatures {
        Some(policy) => whoami_route.route_layer(RequireSignatureLayer::new(
            Arc::clone(verifier),
            policy.clone(),
        )),
        None => whoami_route,
    };
    // Streams verified once, when they open, and ended when the token expires.
    let streams = Router::new()
        .route("/ws", get(websocket))
        .route("/events", get(events));
    let app = whoami_route
        .merge(streams)
        .route_layer(RequirePopLayer::new(Arc::clone(verifier)).policy(start.policy.clone()))
        .route("/health", get(|| async { "ok" }))
        .merge(metadata_route(verifier).unwrap_or_default());
    // Outside the verifier (added last): preflights never reach it, refusals get CORS headers.
    let app = match &start.cors {
        Some(origins) => app.layer(dpop_cors(origins).unwrap_or_else(|e| fail(&e.to_string()))),
        None => app,
    };
    let listener = start.tokio_listener();
    start.announce();
    if let Err(e) = serve_axum(listener, start.tls, app).await {
        fail(&format!("server error: {e}"));
    }
}
