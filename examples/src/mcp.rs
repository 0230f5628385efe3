//! The MCP example (issue #26, item 5): a small MCP server's tools, the per-tool scope check
//! in front of them, and a DPoP client for the official Rust MCP SDK (`rmcp`).
//!
//! MCP's authorization (specification 2025-11-25, "Authorization") is OAuth 2.1 with RFC 9728
//! metadata: the server is a resource server, so `RequirePopLayer` protects its one endpoint
//! like any route. What MCP adds is that one `POST` may call any tool: a tool's scope is in
//! the JSON-RPC body, not in the route, so [`tool_scopes`] reads the body (bounded) and
//! refuses with the layer's own 403 `insufficient_scope` (RFC 6750 §3.1), which MCP clients
//! read to ask for more scope ("Scope Challenge Handling").

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ClientJsonRpcMessage, ContentBlock, ServerCapabilities, ServerConfig,
};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::{RoutePolicy, Verified};

/// The tools that need a scope beyond a verified token: `(tool, scope)`.
pub const TOOL_SCOPES: [(&str, &str); 1] = [("add", "tools:add")];

/// The largest JSON-RPC body the scope check reads; a larger one is refused (413).
pub const MAX_BODY: usize = 1024 * 1024;

/// The arguments of `add`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct AddRequest {
    /// The left operand.
    pub a: i64,
    /// The right operand.
    pub b: i64,
}

/// The server's tools: `whoami` (any verified token) and `add` (scope `tools:add`).
#[derive(Debug, Clone)]
pub struct PopTools {
    tool_router: ToolRouter<Self>,
}

impl Default for PopTools {
    fn default() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

/// The request's [`Verified`], which the layer put in the HTTP request rmcp hands the tool.
fn verified(parts: &http::request::Parts) -> Result<&Verified, ErrorData> {
    // Only reachable behind the layer; without it, refuse rather than answer.
    parts
        .extensions
        .get::<Verified>()
        .ok_or_else(|| ErrorData::invalid_request("no verified token", None))
}

#[tool_router]
impl PopTools {
    /// The verified token's subject and the binding that was proven.
    #[tool(description = "Who the verified access token says the caller is")]
    fn whoami(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let verified = verified(&parts)?;
        let answer = serde_json::json!({
            "sub": verified.subject(),
            "binding": verified.binding().as_str(),
        });
        Ok(CallToolResult::success(vec![ContentBlock::text(
            answer.to_string(),
        )]))
    }

    /// `a + b`; needs scope `tools:add` (checked before the call by [`tool_scopes`]).
    #[tool(description = "Add two integers (needs scope tools:add)")]
    fn add(
        &self,
        Parameters(AddRequest { a, b }): Parameters<AddRequest>,
    ) -> Result<CallToolResult, ErrorData> {
        let sum = a
            .checked_add(b)
            .ok_or_else(|| ErrorData::invalid_params("the sum overflows", None))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(
            sum.to_string(),
        )]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PopTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Tools behind proof-of-possession: every call needs a DPoP- or mTLS-bound token",
        )
    }
}

/// The tools a JSON-RPC body calls (`tools/call`'s `params.name`), one message or a batch.
fn called_tools(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        // Not JSON: rmcp answers with its parse error; no tool is called.
        return Vec::new();
    };
    let messages = match value {
        serde_json::Value::Array(messages) => messages,
        message => vec![message],
    };
    messages
        .iter()
        .filter(|m| m.get("method").and_then(|v| v.as_str()) == Some("tools/call"))
        .filter_map(|m| m.pointer("/params/name").and_then(|v| v.as_str()))
        .map(str::to_owned)
        .collect()
}

/// axum middleware (inside `RequirePopLayer`): a `POST` that calls a tool of [`TOOL_SCOPES`]
/// with a token lacking its scope gets the layer's 403 `insufficient_scope` naming it. The
/// body is read up to [`MAX_BODY`] (413 beyond) and handed on unchanged.
pub async fn tool_scopes(request: Request, next: Next) -> Response {
    if request.method() != http::Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    };
    let Some(verified) = parts.extensions.get::<Verified>() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
    };
    for tool in called_tools(&bytes) {
        let Some((_, scope)) = TOOL_SCOPES.iter().find(|(name, _)| *name == tool) else {
            continue;
        };
        let Ok(policy) = RoutePolicy::new().require_scope(scope) else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        };
        if let Err(refusal) = policy.authorize(verified) {
            return refusal.to_response::<Body>();
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// An MCP client transport's HTTP client that sends every request with a DPoP-bound token and
/// a fresh proof (RFC 9449 §7.1) for that request's method and URL: wrap the SDK's own
/// `reqwest::Client` and hand it to `StreamableHttpClientTransport::with_client`.
///
/// It does not answer `use_dpop_nonce`: the SDK's transport does not hand the `DPoP-Nonce`
/// field to its client. Use it with servers that do not require nonces.
#[derive(Clone)]
pub struct DpopMcpClient<C = reqwest::Client> {
    http: C,
    signer: Arc<ProofSigner>,
    token: Arc<str>,
}

impl<C> DpopMcpClient<C> {
    /// Send requests through `http` with `token`, bound to `signer`'s key.
    pub fn new(http: C, signer: Arc<ProofSigner>, token: &str) -> Self {
        Self {
            http,
            signer,
            token: token.into(),
        }
    }

    /// `custom_headers` plus `Authorization: DPoP <token>` and a proof for `method uri`.
    fn sign<E: std::error::Error + Send + Sync + 'static>(
        &self,
        method: &str,
        uri: &str,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<HashMap<HeaderName, HeaderValue>, StreamableHttpError<E>> {
        // htu is the URI without query and fragment (RFC 9449 §4.2).
        let htu = uri.split(['?', '#']).next().unwrap_or(uri);
        let proof = self
            .signer
            .proof(method, htu, Some(&self.token), None)
            .map_err(|e| StreamableHttpError::Io(std::io::Error::other(e.to_string())))?;
        let authorization = HeaderValue::try_from(format!("DPoP {}", self.token))
            .map_err(|e| StreamableHttpError::Io(std::io::Error::other(e.to_string())))?;
        let proof = HeaderValue::try_from(proof)
            .map_err(|e| StreamableHttpError::Io(std::io::Error::other(e.to_string())))?;
        custom_headers.insert(http::header::AUTHORIZATION, authorization);
        custom_headers.insert(HeaderName::from_static("dpop"), proof);
        Ok(custom_headers)
    }
}

impl std::fmt::Debug for DpopMcpClient {
    // Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopMcpClient")
            .field("jkt", &self.signer.thumbprint())
            .finish_non_exhaustive()
    }
}

type EventStream = futures_core::stream::BoxStream<'static, Result<sse_stream::Sse, SseError>>;

impl<C> StreamableHttpClient for DpopMcpClient<C>
where
    C: StreamableHttpClient + Send + Sync,
{
    type Error = C::Error;

    // The transport sends through the `_with_` methods, which carry its limits; the plain ones
    // apply the SDK's default limits the same way.
    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let limits = StreamableHttpResponseLimits::default();
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = self.sign("POST", &uri, custom_headers)?;
        self.http
            .post_message_with_response_limits(uri, message, session_id, None, headers, limits)
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let headers = self.sign("DELETE", &uri, custom_headers)?;
        self.http
            .delete_session(uri, session_id, None, headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<EventStream, StreamableHttpError<Self::Error>> {
        let limit = StreamableHttpResponseLimits::default().max_sse_event_size;
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            limit,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<EventStream, StreamableHttpError<Self::Error>> {
        let headers = self.sign("GET", &uri, custom_headers)?;
        self.http
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                None,
                headers,
                max_sse_event_size,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::called_tools;

    #[test]
    fn the_called_tools_are_read_from_one_message_or_a_batch() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}}"#;
        assert_eq!(called_tools(one), ["add"]);
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},
            {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}},
            {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add"}}]"#;
        assert_eq!(called_tools(batch), ["whoami", "add"]);
        assert!(called_tools(b"not json").is_empty());
        assert!(called_tools(br#"{"method":"tools/call","params":{"name":7}}"#).is_empty());
    }
}
