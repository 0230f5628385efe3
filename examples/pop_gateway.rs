//! `pop_gateway`: put proof-of-possession (DPoP, RFC 9449; mTLS-bound tokens, RFC 8705) in front
//! of a service written in any language. Every request is verified by the same
//! `axum_pop::RequirePopLayer` and flags as the example servers, then forwarded to `--upstream`;
//! refusals are the same RFC challenges (`WWW-Authenticate`, `DPoP-Nonce`), and never reach the
//! upstream.
//!
//! ```text
//! cargo run --release --example pop_gateway -- \
//!     --upstream http://127.0.0.1:3000 --listen 0.0.0.0:8443 \
//!     --issuer https://as.example.com --audience https://api.example.com \
//!     --jwks-file issuer-jwks.json --public-url https://api.example.com \
//!     --tls-cert server.pem --tls-key server.key
//! ```
//!
//! # What the upstream receives
//! - The method, path, query and body as the client sent them (the body streamed, at most
//!   `--max-body-bytes`: more is a 413), over a pooled keep-alive HTTP/1.1 client (HTTP/2 with
//!   `--upstream-http2`); `Host` is the upstream's own. An `https://` upstream is verified
//!   against the system's roots or `--upstream-ca PEM` (rustls on aws-lc-rs).
//! - Removed: every field whose name has an `_` (as nginx does by default: upstreams that read
//!   `X_Pop_Sub` as `X-Pop-Sub` would see a forged identity), the hop-by-hop fields (RFC 9110 §7.6.1: `Connection` and every field it names,
//!   `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE` except
//!   `TE: trailers`, `Trailer`, `Transfer-Encoding`, `Upgrade`), `Expect`, the proof (`DPoP`),
//!   the certificate fields (`Client-Cert`, `Client-Cert-Chain`, `X-Forwarded-Client-Cert`,
//!   `ssl-client-cert`), every `X-Pop-*` field the client sent, `Authorization` (kept with
//!   `--forward-authorization`), and every field an upstream framework may read to override the
//!   routed path, the method or the client address (`X-Original-URL`, `X-Rewrite-URL`,
//!   `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, `X-Forwarded-Prefix`,
//!   `X-Forwarded-Port`, `X-Real-IP`, `True-Client-IP`, `X-Client-IP`, `CF-Connecting-IP`, and
//!   each `--strip-header NAME`), on public paths too. Request trailers are dropped.
//! - Added, from the verified token only: `X-Pop-Sub` (`sub`), `X-Pop-Binding` (`dpop`, `mtls`,
//!   `dpop+mtls` or, with `--allow-bearer`, `bearer`), `X-Pop-Jkt` (the DPoP key's RFC 7638
//!   thumbprint), `X-Pop-X5t-S256` (the client certificate's), `X-Pop-Client-Id` (`client_id`),
//!   `X-Pop-Scope` (`scope`). A field is absent when the token has no such claim; a claim that
//!   is not a plain string of visible ASCII is refused (401 `invalid_token`), never mangled.
//! - `Forwarded: for=…;host=…;proto=…` (RFC 7239, IPv6 quoted per §6) and `X-Forwarded-For`
//!   appended, `X-Forwarded-Host`/`-Proto` set. Client-sent forwarding fields are kept (and
//!   appended to) only from a `--trusted-proxy` peer; from anyone else they are replaced.
//!
//! # What the client receives
//! The upstream's status, fields (less hop-by-hop ones) and body, streamed; `DPoP-Nonce` when
//! one is due. Refusals: the RFC challenges. `/health` is the gateway's own (200, no token), as is
//! RFC 9728 metadata with `--resource`. `--public-path PREFIX` (repeatable) passes paths under
//! `PREFIX` (whole segments, no dot-segment tricks) without a token, still without `X-Pop-*`.
//! Upstream unreachable: 502; no answer within `--upstream-timeout-secs`: 504; both with a fixed
//! body. A WebSocket upgrade is verified, then relayed over the gateway's own WebSocket to
//! the upstream (`ws://`, or `wss://` for an `https://` upstream), and closed with 1008 when the token expires; server-sent events
//! stream through and end then too.
//!
//! # Threads
//! One thread per core the process may use, each serving the connections it accepts from the
//! one listener on its own single-threaded runtime, with its own upstream pool, within its share
//! of the connection bounds and of the idle upstream connections. Ctrl-C stops them all; each
//! keeps running the tasks started on it (key set refreshes, Redis reconnections, which any
//! thread's requests may use) until every thread has drained its connections.
//! A request and its upstream connection never change threads: with tokio's shared
//! work-stealing runtime, the wake-ups between the two cost a proxied request a fifth more CPU
//! (see `BENCHMARKS.md`). The price: a connection never moves to an idler thread.
//!
//! # Forward-auth mode
//! With `--forward-auth nginx|traefik|envoy` nothing is proxied: every request from a
//! `--trusted-proxy` peer, whatever its path, is an auth sub-request from the proxy named
//! (nginx `auth_request`, Traefik `ForwardAuth`, Envoy `ext_authz`); anyone else gets `/health`
//! and the metadata, and 403 for everything else. The request to verify is read only from that
//! proxy's fields, never another's (a client can set those): `X-Original-Method` +
//! `X-Original-URI` (nginx; set them with `proxy_set_header`), `X-Forwarded-Method` +
//! `X-Forwarded-Uri` with `X-Forwarded-Host`/`-Proto` naming `--public-url` (Traefik), or the
//! sub-request's own method and path with its `Host` naming `--public-url` (Envoy). `htu` is
//! `--public-url` + that URI; a host that is not `--public-url`'s: 403. The answer: 200 with the `X-Pop-*` fields above, or the refusal
//! with its `WWW-Authenticate` and `DPoP-Nonce` for the proxy to copy to the client; 200 without
//! identity for a `--public-path`. Malformed forwarding fields: 400 (nginx turns any status but
//! 2xx, 401 and 403 into a 500; so it does with a 400 `invalid_request` challenge). See `examples/gateway/nginx-forward-auth.conf`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts as _, OriginalUri, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_pop::cors::dpop_cors;
use axum_pop::serve::ServerLimits;
use axum_pop::{PolicyBuilder as _, RequirePopLayer, Verifier, metadata_route};
use examples_common::gateway::{GatewayArgs, LimitedBody, client_tls, upstream_tls};
use examples_common::{init_logging, serve_axum_within, serve_metrics, websocket, websocket_relay};
use http::{StatusCode, Uri, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer as _, ServiceExt as _, service_fn};
use tower_pop::Verified;
use tower_pop::mtls::proxy::TrustedProxies;
use tower_pop::mtls::tls::TlsConfig;
use tower_pop_gateway::fields::{FieldRules, Hop, remove_hop_by_hop};
use tower_pop_gateway::forward_auth::{
    ForwardAuthError, ProxyKind, PublicOrigin, original_request,
};
use tower_pop_gateway::identity::identity_headers;
use tower_pop_gateway::paths::PublicPaths;

/// Log target of the gateway's own messages.
const LOG: &str = "pop_gateway";
/// A relayed WebSocket on which nothing moves for this long is closed (1001).
const WEBSOCKET_IDLE: Duration = Duration::from_secs(60);

/// Everything a request needs, shared by the connections of one thread.
#[derive(Clone)]
struct Gateway {
    /// `None` in forward-auth mode.
    upstream: Option<Upstream>,
    /// The proxy whose sub-requests are answered, in forward-auth mode.
    forward_auth: Option<ProxyKind>,
    client: Client<HttpsConnector<HttpConnector>, LimitedBody>,
    /// For `wss://` to an `https://` upstream.
    tls: Option<Arc<rustls::ClientConfig>>,
    layer: RequirePopLayer,
    public: PublicPaths,
    proxies: TrustedProxies,
    fields: FieldRules,
    max_body: u64,
    timeout: Duration,
    /// How clients reach the gateway: `http` or `https`.
    proto: &'static str,
    /// --public-url (forward-auth host checks).
    public_origin: PublicOrigin,
}

/// Where accepted requests go: `http(s)://authority` and a base path ("" or "/base").
#[derive(Clone)]
struct Upstream {
    /// `http` or `https`.
    scheme: &'static str,
    authority: String,
    base: String,
}

impl Upstream {
    fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("--upstream {url}: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => "http",
            Some("https") => "https",
            _ => return Err(format!("--upstream {url}: an http:// or https:// URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("--upstream {url}: no host"))?
            .to_string();
        if uri.query().is_some() || authority.contains('@') {
            return Err(format!("--upstream {url}: no query or user info"));
        }
        let base = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            scheme,
            authority,
            base,
        })
    }

    fn target(&self, request: &Uri) -> Option<Uri> {
        let path = request.path_and_query()?.as_str();
        if !path.starts_with('/') {
            return None;
        }
        format!("{}://{}{}{path}", self.scheme, self.authority, self.base)
            .parse()
            .ok()
    }
}

fn main() {
    init_logging();
    let args = GatewayArgs::from_env();
    // Start-up (the verifier's configuration, first Redis connections) and Ctrl-C run on this
    // thread's runtime. Connections are served by one single-threaded runtime per core, each
    // with its own upstream pool: a request, its upstream connection and their wake-ups stay on
    // one thread, which saves about a sixth of the CPU a shared work-stealing runtime spends
    // per proxied request.
    let background = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    let listener = std::net::TcpListener::bind(args.common.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .unwrap_or_else(|e| fail(&format!("cannot listen on {}: {e}", args.common.listen)));
    let bound = listener.local_addr().unwrap_or(args.common.listen);
    let cors = args.common.cors_origins().unwrap_or_else(|e| fail(&e));
    // Before the verifier, which describes its metrics to the recorder.
    let metrics = args
        .common
        .metrics_listen
        .map(|addr| serve_metrics(addr).unwrap_or_else(|e| fail(&e)));
    let tls = args.common.tls().unwrap_or_else(|e| fail(&e));
    let config = background
        .block_on(args.common.config(bound))
        .unwrap_or_else(|e| fail(&e));
    let verifier = Arc::new(Verifier::new(config));
    let threads = examples_common::workers();
    let mut limits = ServerLimits::default();
    // Each thread accepts from the one listener within its share of the bounds.
    limits.max_connections = limits.max_connections.div_ceil(threads);
    limits.max_tls_handshakes = limits.max_tls_handshakes.div_ceil(threads);
    // Ctrl-C, caught once here, stops every thread; each thread's runtime then runs on until
    // every thread has drained, since tasks a request started there (a key set refresh, a
    // Redis reconnection) may serve the other threads' requests too.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let drained = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let gateways = build(&args, Arc::clone(&verifier), threads).unwrap_or_else(|e| fail(&e));
    let mut servers = Vec::with_capacity(threads);
    for (n, gateway) in gateways.into_iter().enumerate() {
        let app = app(Arc::new(gateway), &verifier, cors.as_deref());
        let listener = listener
            .try_clone()
            .unwrap_or_else(|e| fail(&format!("cannot share the listener: {e}")));
        let tls = tls.clone();
        let mut stopped = stopped.clone();
        let drained = Arc::clone(&drained);
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let server = std::thread::Builder::new()
            .name(format!("pop-gateway-{n}"))
            .spawn(move || {
                // One thread failing ends the gateway, as it did on one shared runtime, rather
                // than leaving it to serve on fewer threads unnoticed.
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let server = Server {
                        listener,
                        tls,
                        app,
                        limits,
                    };
                    server.serve_on_this_thread(shutdown, &drained, threads)
                }));
                match served {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => fail(&format!("server error: {e}")),
                    Err(_) => fail("a server thread panicked"),
                }
            })
            .unwrap_or_else(|e| fail(&format!("cannot start a server thread: {e}")));
        servers.push(server);
    }
    println!("listening on {}://{bound}", args.common.scheme());
    if let Some(addr) = metrics {
        println!("metrics on http://{addr}/metrics");
    }
    let joined = background.block_on(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
        tokio::task::spawn_blocking(move || servers.into_iter().all(|s| s.join().is_ok())).await
    });
    if !matches!(joined, Ok(true)) {
        fail("a server thread failed");
    }
}

/// The gateway's routes around one [`Gateway`] (one upstream pool).
fn app(gateway: Arc<Gateway>, verifier: &Arc<Verifier>, cors: Option<&[String]>) -> Router {
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(metadata_route(verifier).unwrap_or_default())
        .fallback(handle)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&gateway),
            sub_requests_first,
        ))
        .with_state(gateway);
    // Outside everything (added last): preflights never reach the verifier, refusals get CORS
    // headers.
    match cors {
        Some(origins) => app.layer(dpop_cors(origins).unwrap_or_else(|e| fail(&e.to_string()))),
        None => app,
    }
}

/// What one server thread serves.
struct Server {
    listener: std::net::TcpListener,
    tls: Option<TlsConfig>,
    app: Router,
    limits: ServerLimits,
}

impl Server {
    /// Serve on a single-threaded runtime of this thread until `shutdown`; then count this
    /// thread in `drained` and keep the runtime's tasks running until all `threads` are.
    fn serve_on_this_thread(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        drained: &tokio::sync::watch::Sender<usize>,
        threads: usize,
    ) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            serve_axum_within(listener, self.tls, self.app, self.limits, shutdown).await?;
            drained.send_modify(|n| *n += 1);
            let _ = drained.subscribe().wait_for(|n| *n >= threads).await;
            Ok(())
        })
    }
}

/// A gateway for each of `threads`: each with its own upstream pool (together within the
/// bounds), everything else read and checked once and shared.
fn build(
    args: &GatewayArgs,
    verifier: Arc<Verifier>,
    threads: usize,
) -> Result<Vec<Gateway>, String> {
    let upstream = args.upstream.as_deref().map(Upstream::parse).transpose()?;
    let proxies = TrustedProxies::new(&args.common.trusted_proxy)
        .map_err(|e| format!("--trusted-proxy: {e}"))?;
    if args.forward_auth.is_some() && proxies.is_empty() {
        return Err(
            "--forward-auth needs --trusted-proxy: the proxies whose sub-requests are answered"
                .to_owned(),
        );
    }
    let public = PublicPaths::new(&args.public_path)?;
    let public_origin = PublicOrigin::new(verifier.config().public_origin())
        .map_err(|e| format!("--public-url: {e}"))?;
    let fields = FieldRules::new(args.forward_authorization).strip(&args.strip_header)?;
    let timeout = Duration::from_secs(args.upstream_timeout_secs);
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(timeout));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    connector.enforce_http(false);
    let tls = match &upstream {
        Some(u) if u.scheme == "https" => Some(upstream_tls(args.upstream_ca.as_deref())?),
        _ if args.upstream_ca.is_some() => {
            return Err("--upstream-ca needs an https:// --upstream".to_owned());
        }
        _ => None,
    };
    // Without an https:// upstream, no root: this configuration is never used (the scheme
    // is http) and could verify no server if it were.
    let client_tls = match &tls {
        Some(tls) => (**tls).clone(),
        None => client_tls(rustls::RootCertStore::empty())?,
    };
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_tls)
        .https_or_http();
    let connector = if args.upstream_http2 {
        builder.enable_http2().wrap_connector(connector)
    } else {
        builder.enable_http1().wrap_connector(connector)
    };
    let pool = || {
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            // Bounded: idle connections kept per upstream, 256 over all threads.
            .pool_max_idle_per_host(256usize.div_ceil(threads))
            .http2_only(args.upstream_http2)
            .build(connector.clone())
    };
    let layer = RequirePopLayer::new(verifier).policy(args.common.whoami_policy()?);
    let first = Gateway {
        client: pool(),
        upstream,
        forward_auth: args.forward_auth,
        tls,
        layer,
        public,
        proxies,
        fields,
        max_body: args.max_body_bytes,
        timeout,
        proto: args.common.scheme(),
        public_origin,
    };
    // A pool of its own per thread (its connections' tasks run on that thread's runtime).
    let mut gateways: Vec<Gateway> = (1..threads)
        .map(|_| Gateway {
            client: pool(),
            ..first.clone()
        })
        .collect();
    gateways.push(first);
    Ok(gateways)
}

/// In forward-auth mode, every request from a trusted proxy is a sub-request, whatever its
/// path: Envoy sends the original path as its own, and a sub-request for `/health` must be
/// verified like any other, not answered by the gateway's own route.
async fn sub_requests_first(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let trusted = peer(&request).is_some_and(|p| gateway.proxies.contains(p.ip()));
    if gateway.upstream.is_none() && trusted {
        return forward_auth(gateway, request).await;
    }
    next.run(request).await
}

/// Every request but `/health` and the metadata: a forward-auth sub-request (from a peer that
/// is not trusted: refused), a public path, or a request to verify and proxy.
async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    if gateway.upstream.is_none() {
        return forward_auth(gateway, request).await;
    }
    if gateway.public.covers(request.uri().path()) {
        return proxy(&gateway, request, None).await;
    }
    let inner = {
        let gateway = Arc::clone(&gateway);
        service_fn(move |request: Request| {
            let gateway = Arc::clone(&gateway);
            async move {
                let verified = request.extensions().get::<Verified>().cloned();
                Ok::<_, Infallible>(match verified {
                    Some(verified) => proxy(&gateway, request, Some(&verified)).await,
                    // The layer never lets an anonymous request through here; fail closed.
                    None => fixed(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
                })
            }
        })
    };
    match gateway.layer.layer(inner).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A small fixed answer that tells nothing about the upstream or the gateway's internals.
fn fixed(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn peer(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Forward `request` to the upstream with the identity of `verified` (none on a public path).
async fn proxy(gateway: &Gateway, request: Request, verified: Option<&Verified>) -> Response {
    let Some(upstream) = &gateway.upstream else {
        return fixed(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
    };
    let Some(peer) = peer(&request) else {
        return fixed(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gateway.max_body) {
        return fixed(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    let Some(target) = upstream.target(request.uri()) else {
        return fixed(StatusCode::BAD_REQUEST, "bad request target\n");
    };
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let hop = Hop {
        peer: peer.ip(),
        peer_trusted: gateway.proxies.contains(peer.ip()),
        proto: gateway.proto,
        host,
    };
    let mut headers = gateway
        .fields
        .upstream_request_headers(&parts.headers, &hop);
    if let Some(verified) = verified {
        match identity_headers(verified) {
            Ok(fields) => {
                for (name, value) in fields {
                    headers.insert(name, value);
                }
            }
            Err(e) => {
                tracing::debug!(target: LOG, error = %e, "token refused");
                return verified.claims_rejection().to_response::<Body>();
            }
        }
    }
    // A WebSocket: the gateway's own handshake with the upstream, then a relay that ends when
    // the token does (issue #26).
    if let Some(verified) = verified
        && websocket_relay::is_upgrade(&parts.method, &parts.headers)
    {
        let mut parts = parts;
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => websocket::bounded_upgrade(upgrade),
            Err(rejection) => return rejection.into_response(),
        };
        let url = format!("ws{}", target.to_string().trim_start_matches("http"));
        let tls = gateway.tls.as_ref();
        return match websocket_relay::connect(&url, &headers, gateway.timeout, tls).await {
            Ok(upstream) => {
                let authorization = verified.lifetime();
                upgrade.on_upgrade(move |client| {
                    websocket_relay::relay(client, upstream, authorization, WEBSOCKET_IDLE)
                })
            }
            Err(status) => {
                tracing::warn!(target: LOG, status, "upstream refused the WebSocket");
                fixed(StatusCode::BAD_GATEWAY, "bad gateway\n")
            }
        };
    }
    let (body, exceeded) = LimitedBody::new(body, gateway.max_body);
    let mut outgoing = http::Request::new(body);
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = target;
    *outgoing.headers_mut() = headers;
    let answer = tokio::time::timeout(gateway.timeout, gateway.client.request(outgoing)).await;
    match answer {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers);
            // The client's connection has its own version; the server writes it.
            parts.version = http::Version::default();
            let event_stream = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            match verified {
                // Server-sent events end when the token does (issue #26), not buffered.
                Some(verified) if event_stream => {
                    let events = http_body_util::BodyExt::into_data_stream(body);
                    let events = tower_pop::lifetime::until_ended(events, verified.lifetime());
                    Response::from_parts(parts, Body::from_stream(events))
                }
                _ => Response::from_parts(parts, Body::new(body)),
            }
        }
        Ok(Err(_)) if exceeded.load(Ordering::SeqCst) => {
            fixed(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
        }
        Ok(Err(e)) => {
            tracing::warn!(target: LOG, connect = e.is_connect(), error = %e, "upstream request failed");
            fixed(StatusCode::BAD_GATEWAY, "bad gateway\n")
        }
        Err(_) => {
            tracing::warn!(target: LOG, timeout_secs = gateway.timeout.as_secs(), "upstream timed out");
            fixed(StatusCode::GATEWAY_TIMEOUT, "gateway timeout\n")
        }
    }
}

/// Answer an auth sub-request: verify the original request it names, 200 with the identity
/// fields or the refusal.
async fn forward_auth(gateway: Arc<Gateway>, request: Request) -> Response {
    let trusted = peer(&request).is_some_and(|p| gateway.proxies.contains(p.ip()));
    if !trusted {
        tracing::debug!(target: LOG, peer = ?peer(&request), "sub-request from an untrusted peer refused");
        return fixed(
            StatusCode::FORBIDDEN,
            "forward-auth sub-requests are answered for trusted proxies only\n",
        );
    }
    let Some(kind) = gateway.forward_auth else {
        return fixed(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
    };
    let (mut parts, _body) = request.into_parts();
    match original_request(
        kind,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &gateway.public_origin,
    ) {
        Ok((method, uri)) => {
            parts.method = method;
            parts.uri = uri;
        }
        Err(ForwardAuthError::BadOriginal) => {
            return fixed(StatusCode::BAD_REQUEST, "bad forward-auth fields\n");
        }
        Err(ForwardAuthError::ForeignOrigin) => {
            return fixed(
                StatusCode::FORBIDDEN,
                "the forwarded host or scheme is not this gateway's public URL\n",
            );
        }
    }
    if gateway.public.covers(parts.uri.path()) {
        return StatusCode::OK.into_response();
    }
    // The layer checks `htu` against this URI (axum-pop turns `OriginalUri` into tower-pop's
    // `OriginalTarget`), and `htm` against the method set above.
    parts.extensions.insert(OriginalUri(parts.uri.clone()));
    let request = Request::from_parts(parts, Body::empty());
    let inner = service_fn(|request: Request| async move {
        let response = match request.extensions().get::<Verified>() {
            Some(verified) => match identity_headers(verified) {
                Ok(fields) => {
                    let mut response = StatusCode::OK.into_response();
                    response.headers_mut().extend(fields);
                    response
                }
                Err(e) => {
                    tracing::debug!(target: LOG, error = %e, "token refused");
                    verified.claims_rejection().to_response::<Body>()
                }
            },
            None => fixed(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
        };
        Ok::<_, Infallible>(response)
    });
    match gateway.layer.layer(inner).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
