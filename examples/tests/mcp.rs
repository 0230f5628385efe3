//! Issue #26, item 5: the MCP example server (`mcp_server`, on rmcp) driven by the official
//! Rust MCP SDK's client over Streamable HTTP, each request with a DPoP proof
//! (`examples_common::mcp::DpopMcpClient`); RFC 9728 metadata as MCP's authorization asks;
//! per-tool scopes refused with 403 `insufficient_scope`; stolen tokens and replays refused.

use std::sync::Arc;

use examples_common::http::client;
use examples_common::mcp::DpopMcpClient;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;

use crate::server::{AUDIENCE, ISSUER, Server, now};

async fn mcp_server() -> Server {
    Server::start_with(
        "mcp_server",
        &[],
        Arc::new(tower_pop::test_util::TestIssuer::new(ISSUER, AUDIENCE)),
    )
    .await
}

/// The SDK's client on `server`'s `/mcp`, sending `token` with proofs by `key`.
async fn connect(
    server: &Server,
    key: &Arc<ProofSigner>,
    token: &str,
) -> Result<RunningService<rmcp::RoleClient, ClientConfig>, rmcp::service::ClientInitializeError> {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let client = DpopMcpClient::new(http, Arc::clone(key), token);
    let transport = StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")),
    );
    ClientConfig::default().serve(transport).await
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

fn token_with_scope(server: &Server, key: &ProofSigner, scope: &str) -> String {
    server.issuer.token(
        now(),
        json!({"cnf": {"jkt": key.thumbprint()}, "scope": scope}),
    )
}

/// A raw `POST /mcp` of `body` with `token` and `proof`.
async fn post(
    server: &Server,
    token: &str,
    proof: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    client()
        .post(server.url("/mcp"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .header("accept", "application/json, text/event-stream")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_sdk_client_calls_tools_with_dpop_and_scopes_are_per_tool() {
    let server = mcp_server().await;
    let key = Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap());

    // RFC 9728 metadata for the MCP endpoint, without a token.
    let metadata: serde_json::Value = client()
        .get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], server.url("/mcp"), "{metadata}");
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
    assert_eq!(metadata["dpop_bound_access_tokens_required"], true);
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("tools:add"))),
        "{metadata}"
    );

    // With the scope: both tools.
    let token = token_with_scope(&server, &key, "tools:add");
    let mcp = connect(&server, &key, &token).await.expect("initialized");
    let tools = mcp.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["add", "whoami"]);
    let who = mcp
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    let who: serde_json::Value = serde_json::from_str(&text(&who)).unwrap();
    assert_eq!(who, json!({"sub": "alice", "binding": "dpop"}));
    let args = json!({"a": 2, "b": 40}).as_object().cloned().unwrap();
    let sum = mcp
        .call_tool(CallToolRequestParams::new("add").with_arguments(args.clone()))
        .await
        .unwrap();
    assert_eq!(text(&sum), "42");
    let _ = mcp.cancel().await;

    // Without it: whoami still works, add is refused before the call.
    let token = token_with_scope(&server, &key, "other");
    let mcp = connect(&server, &key, &token).await.expect("initialized");
    assert!(
        mcp.call_tool(CallToolRequestParams::new("whoami"))
            .await
            .is_ok()
    );
    assert!(
        mcp.call_tool(CallToolRequestParams::new("add").with_arguments(args.clone()))
            .await
            .is_err(),
        "add without tools:add"
    );
    let _ = mcp.cancel().await;
    // What the client got: the layer's own 403, naming the scope.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    let proof = key
        .proof("POST", &server.url("/mcp"), Some(&token), None)
        .unwrap();
    let response = post(&server, &token, &proof, &call).await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(r#"scope="tools:add""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn no_token_a_stolen_token_or_a_replay_never_reaches_a_tool() {
    let server = mcp_server().await;
    let key = Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap());
    let token = token_with_scope(&server, &key, "tools:add");
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});

    // No token: 401 with the DPoP challenge pointing at the metadata (MCP authorization).
    let response = client()
        .post(server.url("/mcp"))
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP realm="), "{challenge}");
    assert!(
        challenge.contains(&format!(
            r#"resource_metadata="{}""#,
            server.url("/.well-known/oauth-protected-resource/mcp")
        )),
        "{challenge}"
    );

    // A thief's key with the victim's token: the SDK's client cannot even initialize.
    let thief = Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap());
    assert!(connect(&server, &thief, &token).await.is_err());

    // A proof used once, then replayed: the replay is 401.
    let proof = key
        .proof("POST", &server.url("/mcp"), Some(&token), None)
        .unwrap();
    let first = post(&server, &token, &proof, &initialize).await;
    assert_eq!(first.status(), 200);
    let replay = post(&server, &token, &proof, &initialize).await;
    assert_eq!(replay.status(), 401);
    let challenge = replay.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_dpop_proof""#),
        "{challenge}"
    );

    // A proof for another URL (htu) is refused too.
    let elsewhere = key
        .proof("POST", &server.url("/other"), Some(&token), None)
        .unwrap();
    assert_eq!(
        post(&server, &token, &elsewhere, &initialize)
            .await
            .status(),
        401
    );
}
