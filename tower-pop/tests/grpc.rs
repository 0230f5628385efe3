//! `RequirePopLayer::grpc`: refusals as gRPC trailers-only responses, and scopes per method
//! (issue #25). Over real HTTP/2 with tonic: `examples/tests/grpc.rs`.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_pop::RequirePopLayer;

use crate::support::{Fixture, NOW, ORIGIN};

const GET: &str = "/pop.example.v1.WhoAmI/Get";
const ADMIN: &str = "/pop.example.v1.WhoAmI/Admin";

async fn call(layer: RequirePopLayer, request: Request<String>) -> Response<String> {
    ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::from("message")))
        }))
        .oneshot(request)
        .await
        .unwrap()
}

fn grpc_call(f: &Fixture, path: &str, proof_path: &str) -> Request<String> {
    let token = f.token();
    let proof = f
        .client
        .proof_at(
            "POST",
            &format!("{ORIGIN}{proof_path}"),
            Some(&token),
            None,
            NOW,
        )
        .unwrap();
    Request::post(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn a_refused_call_is_a_trailers_only_grpc_status() {
    let f = Fixture::new();
    let layer = || RequirePopLayer::new(Arc::clone(&f.verifier)).grpc();
    // A proof for another method: UNAUTHENTICATED, the challenge as metadata.
    let response = call(layer(), grpc_call(&f, GET, ADMIN)).await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("application/grpc"));
    assert_eq!(header("grpc-status").as_deref(), Some("16"));
    assert_eq!(
        header("grpc-message").as_deref(),
        Some("DPoP%20proof%20htu%20mismatch")
    );
    assert!(
        header("www-authenticate")
            .unwrap()
            .starts_with(r#"DPoP error="invalid_dpop_proof""#)
    );
    assert!(header("content-length").is_none());
    assert_eq!(response.body(), "", "no message: trailers-only");
    // The same call, right: through to the service.
    let response = call(layer(), grpc_call(&f, GET, GET)).await;
    assert_eq!(response.body(), "message");
    assert!(response.headers().get("grpc-status").is_none());
}

#[tokio::test]
async fn one_method_can_need_a_scope_its_siblings_do_not() {
    let f = Fixture::new();
    let layer = || {
        RequirePopLayer::new(Arc::clone(&f.verifier))
            .grpc()
            .require_scope_for(ADMIN, "admin")
            .unwrap()
    };
    // The token's scope is `read`: Get passes, Admin is PERMISSION_DENIED.
    let response = call(layer(), grpc_call(&f, GET, GET)).await;
    assert_eq!(response.body(), "message");
    let response = call(layer(), grpc_call(&f, ADMIN, ADMIN)).await;
    assert_eq!(response.headers()["grpc-status"], "7");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains(r#"scope="admin""#), "{challenge}");
    assert!(
        RequirePopLayer::new(Arc::clone(&f.verifier))
            .require_scope_for(ADMIN, "two words")
            .is_err()
    );
}

#[tokio::test]
async fn scopes_for_one_path_add_up_and_keep_the_layer_policy() {
    use tower_pop::PolicyBuilder as _;
    let f = Fixture::new();
    // Two scopes for Admin, and a layer-wide scope set afterwards: Admin needs all three.
    let layer = RequirePopLayer::new(Arc::clone(&f.verifier))
        .grpc()
        .require_scope_for(ADMIN, "admin")
        .unwrap()
        .require_scope_for(ADMIN, "mfa")
        .unwrap()
        .require_scope("read")
        .unwrap();
    let response = call(layer.clone(), grpc_call(&f, ADMIN, ADMIN)).await;
    assert_eq!(response.headers()["grpc-status"], "7");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"scope="read admin mfa""#),
        "{challenge}"
    );
    let response = call(layer, grpc_call(&f, GET, GET)).await;
    assert_eq!(response.body(), "message");
    // A path that cannot match a request is refused at configuration.
    let error = RequirePopLayer::new(Arc::clone(&f.verifier))
        .require_scope_for("pop.example.v1.WhoAmI/Admin", "admin")
        .unwrap_err();
    assert!(matches!(error, tower_pop::ConfigError::InvalidPath { .. }));
}
