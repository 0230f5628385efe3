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
use actix_pop::lifetime;
use actix_pop::serve::{ServerExt as _, ServerLimits};
use actix_pop::signature::RequireSignature;
use actix_pop::tls::listen_tls;
use actix_pop::{PolicyBuilder as _, PopAuth, RequirePop, SharedClaims, metadata_route};
use actix_web::middleware::Condition;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_ws::AggregatedMessage;
use examples_common::{Startup, fail, websocket, whoami};
use tokio_stream::StreamExt as _;

async fn whoami_handler(auth: PopAuth<SharedClaims>) -> HttpResponse {
    HttpResponse::Ok().json(whoami(&auth))
}

/// `GET /ws`: a WebSocket echo, closed with 1008 when the token expires (or is revoked).
async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    auth: PopAuth<SharedClaims>,
) -> actix_web::Result<HttpResponse> {
    let authorization = auth.lifetime.clone();
    let (response, mut session, messages) = actix_ws::handle(&req, body)?;
    let mut messages = websocket::bounded_messages(messages);
    actix_web::rt::spawn(async move {
        let ended = authorization.ended();
        tokio::pin!(ended);
        loop {
            tokio::select! {
                end = &mut ended => {
                    let _ = session.close(Some(lifetime::close_reason_for(end))).await;
                    return;
                }
                message = messages.recv() => match message {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        if session.text(text).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(error)) => {
                        let _ = session.close(websocket::close_reason_after(&error)).await;
                        return;
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | None => {
                        let _ = session.close(None).await;
                        return;
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    });
    Ok(response)
}

/// `GET /events`: one event a second, `{"sub": ..., "n": N}`, until the token expires.
async fn events(auth: PopAuth<SharedClaims>) -> HttpResponse {
    let stream = examples_common::events(auth.0)
        .map(|data| Ok::<_, actix_web::Error>(web::Bytes::from(format!("data: {data}\n\n"))));
    // The same headers as axum's `Sse`.
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(stream)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

#[actix_web::main]
async fn main() {
    let start = Startup::from_env().await;
    let (verifier, cors) = (Arc::clone(&start.verifier), start.cors.clone());
    let policy = start.policy.clone();
    let signatures = start.signatures.clone();
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
        // `--require-signature`: inside the token middleware (the last `wrap` runs first).
        let signature = signatures
            .clone()
            .map(|policy| RequireSignature::new(Arc::clone(&verifier), policy));
        app.service(
            web::resource("/whoami")
                .wrap(Condition::new(
                    signature.is_some(),
                    signature.unwrap_or_else(|| {
                        RequireSignature::new(Arc::clone(&verifier), Default::default())
                    }),
                ))
                .wrap(RequirePop::new(Arc::clone(&verifier)).policy(policy.clone()))
                .to(whoami_handler),
        )
        .service(
            web::resource("/ws")
                .wrap(RequirePop::new(Arc::clone(&verifier)).policy(policy.clone()))
                .route(web::get().to(websocket)),
        )
        .service(
            web::resource("/events")
                .wrap(RequirePop::new(Arc::clone(&verifier)).policy(policy.clone()))
                .route(web::get().to(events)),
        )
        .service(
            web::resource("/health")
                .route(web::get().to(health))
                .route(web::head().to(health)),
        )
    })
    // One worker per core, as the axum server's tokio runtime has (actix-web's default counts
    // physical cores only), every connection within the default limits.
    .limits(&ServerLimits::default(), examples_common::workers());
    let server = match &start.tls {
        Some(tls) => listen_tls(server, start.listener(), tls),
        None => server.listen(start.listener()),
    }
    .unwrap_or_else(|e| fail(&format!("cannot serve: {e}")));
    start.announce();
    if let Err(e) = server.run().await {
        fail(&format!("server error: {e}"));
    }
}
