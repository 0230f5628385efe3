//! A gRPC (tonic) resource server protected by tower-pop: `pop.example.v1.WhoAmI` answers with
//! the verified token's `sub` and binding (`Get`), or streams it once a second until the token
//! expires (`Watch`, then `UNAUTHENTICATED`); the standard health service and server
//! reflection are open. The same flags as the HTTP example servers; TLS with `--tls-cert`,
//! else h2c (plain HTTP/2) for loopback.
//!
//! ```text
//! cargo run --release --example grpc_resource_server -- \
//!     --issuer https://as.example.com --audience https://api.example.com \
//!     --jwks-file issuer-jwks.json --public-url https://api.example.com
//! ```
//!
//! A call is verified as a `POST` to the public URL plus its path
//! (`https://api.example.com/pop.example.v1.WhoAmI/Get`); refusals are gRPC statuses with the
//! challenge in `www-authenticate` metadata (see `RequirePopLayer::grpc`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum_pop::{PolicyBuilder as _, RequirePopLayer};
use examples_common::pb::who_am_i_server::{WhoAmI, WhoAmIServer};
use examples_common::pb::{FILE_DESCRIPTOR_SET, GetRequest, Identity};
use examples_common::{Startup, fail, serve_axum};
use tokio_stream::Stream;
use tonic::service::LayerExt as _;
use tonic::{Request, Response, Status};
use tower_pop::Verified;

/// The service: reads the [`Verified`] the layer put in the call's extensions.
#[derive(Debug, Default)]
struct Service;

fn identity(verified: &Verified) -> Identity {
    Identity {
        sub: verified.subject().unwrap_or_default().to_owned(),
        binding: verified.binding().as_str().to_owned(),
    }
}

fn verified<T>(request: &Request<T>) -> Result<Verified, Status> {
    // Only reachable behind the layer; without it, refuse rather than answer.
    request
        .extensions()
        .get::<Verified>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no verified token"))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tonic::async_trait]
impl WhoAmI for Service {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Identity>, Status> {
        Ok(Response::new(identity(&verified(&request)?)))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<Identity, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<GetRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let verified = verified(&request)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        // One message a second while the token is valid, then UNAUTHENTICATED: the call was
        // verified once, when it opened, and must not outlive its authorization.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if now_unix() >= verified.expires_at() {
                    let _ = tx
                        .send(Err(Status::unauthenticated("the access token expired")))
                        .await;
                    return;
                }
                if tx.send(Ok(identity(&verified))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

#[tokio::main]
async fn main() {
    let start = Startup::from_env().await;
    // Flags of the HTTP servers that mean nothing to gRPC are refused, not silently ignored: a
    // user asking for request signatures must not get a server without them.
    if start.signatures.is_some() || start.cors.is_some() {
        fail("--require-signature and --cors-origin do not apply to the gRPC server");
    }
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<WhoAmIServer<Service>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
        .unwrap_or_else(|e| fail(&format!("reflection: {e}")));
    // The protected service behind the layer (tonic's `named_layer` keeps its name for
    // routing); health and reflection stay open.
    let protected = RequirePopLayer::new(Arc::clone(&start.verifier))
        .policy(start.policy.clone())
        .grpc()
        .named_layer(WhoAmIServer::new(Service));
    let app = tonic::service::Routes::new(protected)
        .add_service(health)
        .add_service(reflection)
        .into_axum_router();
    let listener = start.tokio_listener();
    start.announce();
    if let Err(e) = serve_axum(listener, start.tls, app).await {
        fail(&format!("server error: {e}"));
    }
}
