//! Shared pieces of the example servers: the command line both servers accept and the JSON
//! `/whoami` answers. Kept here so the axum and actix servers cannot drift apart.

pub mod authorization_server;
pub mod bench;

/// Every example binary (the servers, the gateway, the demo and the benchmark's floor alike)
/// allocates with mimalloc: per request, a server allocates for hyper, the checks and the
/// answer, and glibc's malloc spent about 14 us of each request there under load (a profile of
/// `axum_resource_server` behind wrk). A choice for the binaries; the libraries leave it to you.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod gateway;

/// The gRPC example's messages and service (`proto/whoami.proto`), generated at build time.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod pb {
    tonic::include_proto!("pop.example.v1");

    /// The encoded descriptors of `whoami.proto`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("whoami_descriptor");
}
pub mod http;
pub mod mcp;
pub mod websocket;
pub mod websocket_relay;

/// The README's quick starts, compiled as doc-tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The browser guide's snippets, compiled likewise.
#[cfg(doctest)]
#[doc = include_str!("../../docs/browsers.md")]
pub struct BrowsersDoctests;

/// The client guide's snippet, compiled likewise.
#[cfg(doctest)]
#[doc = include_str!("../../docs/client.md")]
pub struct ClientDoctests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use serde_json::Value;
use tower_pop::discovery::DiscoveryOptions;
use tower_pop::introspection::IntrospectionOptions;
use tower_pop::metadata::ResourceMetadata;
use tower_pop::mtls::proxy::{ClientCertHeader, ForwardedCertConfig, TrustedProxies};
use tower_pop::nonce::{NonceSecret, Nonces};
use tower_pop::replay::RedisReplayCache;
use tower_pop::tls::TlsConfig;
use tower_pop::{Auth, PopConfig, RoutePolicy, SharedClaims};

/// The flags that no environment variable sets: repeatable ones, read as a whole only from the
/// command line.
const NO_ENV: [&str; 2] = ["trusted-proxy", "public-path"];

/// `command` with every flag but the repeatable `--trusted-proxy` and `--public-path` also read
/// from the environment variable
/// `TOWER_POP_` + its name in capitals, `-` as `_` (`--tls-cert`: `TOWER_POP_TLS_CERT`); a flag
/// wins over its variable, and `--help` lists the variables.
#[must_use]
pub fn with_env(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| match arg.get_long() {
        Some(long) if !NO_ENV.contains(&long) && long != "help" && long != "version" => {
            let name = format!("TOWER_POP_{}", long.to_uppercase().replace('-', "_"));
            arg.env(name)
        }
        _ => arg,
    })
}

/// A URL flag that may carry a secret (a Redis password, an API key in a query): `Debug` shows
/// it without user information, query or fragment.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Ok(mut url) = reqwest::Url::parse(&self.0) else {
            return f.write_str("\"(not a URL)\"");
        };
        let cut = url.query().is_some() || url.fragment().is_some();
        // Setting these only fails for URLs that cannot have them, which have none.
        let _ = (url.set_username(""), url.set_password(None));
        url.set_query(None);
        url.set_fragment(None);
        write!(f, "\"{url}{}\"", if cut { "?…" } else { "" })
    }
}

/// The command line of the example servers (the contract in EXAMPLE-SERVERS.md). Every flag
/// can also come from a `TOWER_POP_*` environment variable ([`with_env`]).
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "A resource server that requires proof-of-possession tokens (DPoP, mTLS)"
)]
pub struct Args {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// A trusted issuer; a token's `iss` must equal it exactly. Repeatable with discovery (no
    /// --jwks-file): several issuers, each token checked only with its own issuer's keys.
    #[arg(long, value_name = "URL", required = true, value_delimiter = ' ')]
    pub issuer: Vec<String>,
    /// The `aud` a token must contain.
    #[arg(long, value_name = "AUD")]
    pub audience: String,
    /// The issuer's JWK Set [default: discovered from --issuer's metadata (RFC 8414)].
    #[arg(long, value_name = "PATH")]
    pub jwks_file: Option<PathBuf>,
    /// An extra trusted root CA for HTTPS calls to the authorization server (PEM).
    #[arg(long, value_name = "PEM")]
    pub issuer_ca: Option<PathBuf>,
    /// Introspect opaque (non-JWT) tokens at this endpoint (RFC 7662).
    #[arg(long, value_name = "URL", requires_all = ["client_id", "client_secret_file"])]
    pub introspection_url: Option<SecretUrl>,
    /// This server's client id for introspection (client_secret_basic).
    #[arg(long, value_name = "ID", requires = "introspection_url")]
    pub client_id: Option<String>,
    /// The file holding this server's client secret (one trailing newline ignored).
    #[arg(long, value_name = "PATH", requires = "introspection_url")]
    pub client_secret_file: Option<PathBuf>,
    /// Serve RFC 9728 protected resource metadata for this resource identifier.
    #[arg(long, value_name = "URL")]
    pub resource: Option<String>,
    /// Apply a named profile: `fapi2`, the FAPI 2.0 Security Profile's resource-server rules
    /// (sender-constrained tokens only, PS256/ES256/EdDSA, `x-fapi-interaction-id`, BCP 195
    /// TLS 1.2 suites); a flag that breaks them stops the server at start-up.
    #[arg(long, value_name = "PROFILE", value_parser = ["fapi2"])]
    pub profile: Option<String>,
    /// The `realm` of every challenge (RFC 6750 §3, RFC 9449 §7.1) [default: the --resource
    /// identifier, else the public URL].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// /whoami requires this scope (403 insufficient_scope without it).
    #[arg(long, value_name = "S")]
    pub scope: Option<String>,
    /// Scopes a server requires besides `--scope` (the MCP server's per-tool scopes), named in
    /// RFC 9728's `scopes_supported`; not a flag.
    #[arg(skip)]
    pub more_scopes: Vec<String>,
    /// The origin used for the expected `htu` [default: http:// + the listen address, or
    /// https:// with --tls-cert].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// DPoP proof algorithms to accept, comma-separated [default: ES256,PS256,EdDSA,Ed25519]; the
    /// challenge's `algs` and the metadata list exactly these.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub dpop_algs: Vec<String>,
    /// Allow a plain `http://` --public-url for a host that is not loopback (DPoP needs TLS,
    /// RFC 9449 §2: for tests behind a TLS-terminating proxy only).
    #[arg(long)]
    pub insecure_http: bool,
    /// Also accept unbound Bearer tokens (tokens bound by `cnf` stay protected).
    #[arg(long)]
    pub allow_bearer: bool,
    /// Require server-provided DPoP nonces (RFC 9449 §9).
    #[arg(long)]
    pub require_nonce: bool,
    /// The nonce secret (at least 32 bytes; one trailing newline ignored): instances given the
    /// same secret accept each other's nonces [default: a random secret per process].
    #[arg(long, value_name = "PATH", requires = "require_nonce")]
    pub nonce_secret_file: Option<PathBuf>,
    /// /whoami also requires an RFC 9421 request signature by the token's bound key over at
    /// least `@method`, `@target-uri`, `authorization` and, with a body, `content-digest`
    /// (RFC 9530), with `created`; missing or bad: 401 with `Accept-Signature`.
    #[arg(long)]
    pub require_signature: bool,
    /// Replay cache shared by all instances using this Redis (`redis://` or `rediss://`;
    /// credentials in the URL are never printed).
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub redis: Option<SecretUrl>,
    /// Replay store on a Redis Cluster reached through this seed node (repeatable; all
    /// `redis://` or all `rediss://`; exclusive with --redis).
    #[arg(
        long = "redis-cluster",
        value_name = "URL",
        hide_env_values = true,
        value_delimiter = ',',
        conflicts_with = "redis"
    )]
    pub redis_cluster: Vec<SecretUrl>,
    /// Key prefix in Redis [default: `tower-pop:` and a hash of --resource, or else of the
    /// public URL, so two APIs sharing a Redis never share keys].
    #[arg(long, value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// A proof's `jti` counts as recorded only once this many replicas acknowledged it
    /// (Redis `WAIT`); too few within --redis-wait-timeout is a 503 and the `jti` stays burned.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub redis_wait_replicas: u32,
    /// How long a write waits for --redis-wait-replicas acknowledgements.
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_wait_timeout: u64,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Request client certificates and verify them against this CA (RFC 8705 binding); clients
    /// without a certificate still connect (DPoP, unbound routes).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// A peer network allowed to forward a client certificate in a header (repeatable; IPv4 or
    /// IPv6 CIDR, or one address). From any other peer the header is ignored.
    #[arg(long, value_name = "CIDR", requires = "client_cert_header")]
    pub trusted_proxy: Vec<String>,
    /// The header those proxies forward the certificate in: RFC 9440 `Client-Cert`, Envoy
    /// `x-forwarded-client-cert`, or nginx `ssl-client-cert` (`$ssl_client_escaped_cert`).
    #[arg(long, value_name = "FORMAT", value_parser = ["rfc9440", "xfcc", "nginx"], requires = "trusted_proxy")]
    pub client_cert_header: Option<String>,
    /// Allow browser apps on this origin (repeatable; exactly as browsers send `Origin`, e.g.
    /// `https://app.example.com`): preflights for `Authorization` and `DPoP` pass, `DPoP-Nonce`
    /// and `WWW-Authenticate` are exposed, also on refusals.
    #[arg(long, value_name = "ORIGIN", value_delimiter = ' ')]
    pub cors_origin: Vec<String>,
    /// Serve Prometheus metrics at `/metrics` on this address (accepted requests by binding,
    /// refusals by kind, verify time); the bound address is printed as a second line.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Args {
    /// Parse the process arguments; `--help` and `--version` print to stdout and exit 0, a bad
    /// or missing flag prints an error naming it and exits 2.
    #[must_use]
    pub fn from_env() -> Self {
        with_env(<Self as clap::CommandFactory>::command())
            .try_get_matches_from(std::env::args_os())
            .and_then(|matches| <Self as clap::FromArgMatches>::from_arg_matches(&matches))
            .unwrap_or_else(|e| e.exit())
    }

    /// The verifier configuration, for a server bound to `bound` (which fills in the default
    /// public URL). With `--redis` it must run inside a tokio runtime, which keeps the
    /// connection to Redis.
    ///
    /// # Errors
    /// A message when the configuration cannot work.
    pub async fn config(&self, bound: SocketAddr) -> Result<PopConfig, String> {
        let public_url = self.public_url(bound);
        let realm = self
            .realm
            .clone()
            .or_else(|| self.resource.clone())
            .unwrap_or_else(|| public_url.clone());
        let mut builder = PopConfig::builder()
            .public_origin(&public_url)
            .audience(&self.audience)
            .realm(realm);
        for (i, issuer) in self.issuer.iter().enumerate() {
            builder = if i == 0 {
                builder.issuer(issuer)
            } else {
                builder.add_issuer(issuer)
            };
        }
        if let Some(jwks) = &self.jwks_file {
            builder = builder.jwks_file(jwks);
        }
        let issuer_ca = match &self.issuer_ca {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("--issuer-ca {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let mut discovery = DiscoveryOptions::default();
        if let Some(ca) = &issuer_ca {
            discovery = discovery.root_ca_pem(ca.clone());
        }
        builder = builder.discovery(discovery);
        if let (Some(url), Some(id), Some(secret)) = (
            &self.introspection_url,
            &self.client_id,
            &self.client_secret_file,
        ) {
            let secret = read_secret(secret)?;
            let mut options = IntrospectionOptions::new(url.as_str(), id, secret);
            if let Some(ca) = issuer_ca {
                options = options.root_ca_pem(ca);
            }
            builder = builder.introspection(options);
        }
        if let Some(resource) = &self.resource {
            let certificates = self.client_ca.is_some() || !self.trusted_proxy.is_empty();
            let metadata = ResourceMetadata::new(resource)
                .scopes_supported(self.scope.iter().chain(&self.more_scopes).cloned())
                .tls_client_certificate_bound_access_tokens(certificates);
            builder = builder.resource_metadata(metadata);
        }
        if let Some(rest) = public_url.strip_prefix("http://") {
            let host = rest.split('/').next().unwrap_or_default();
            let host = host.rsplit_once(':').map_or(host, |(h, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            });
            let loopback = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback && !self.insecure_http {
                return Err(format!(
                    "--public-url {public_url} is plain http for a host that is not loopback: DPoP needs TLS (RFC 9449 §2); use https, or --insecure-http"
                ));
            }
            tracing::warn!("public URL {public_url} is plain http: for local development only");
            builder = builder.insecure_allow_http();
        }
        if self.fapi2() {
            builder = builder.fapi2();
        }
        if !self.dpop_algs.is_empty() {
            let algs = self
                .dpop_algs
                .iter()
                .map(|a| {
                    a.trim()
                        .parse::<tower_pop::Algorithm>()
                        .map_err(|_| format!("--dpop-algs: unknown algorithm {a:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.dpop_algorithms(algs);
        }
        if self.allow_bearer {
            builder = builder.allow_bearer();
        }
        if self.require_nonce {
            let secret = match &self.nonce_secret_file {
                Some(path) => NonceSecret::read_file(path),
                None => NonceSecret::random(),
            }
            .map_err(|e| e.to_string())?;
            builder = builder.require_nonce(Nonces::new(secret));
        }
        if let Some(header) = &self.client_cert_header {
            let header: ClientCertHeader = header.parse().map_err(|e| format!("{e}"))?;
            let proxies = TrustedProxies::new(&self.trusted_proxy)
                .map_err(|e| format!("--trusted-proxy: {e}"))?;
            builder = builder.forwarded_certificates(ForwardedCertConfig::new(proxies, header));
        }
        let redis_store = self.redis.is_some() || !self.redis_cluster.is_empty();
        if !redis_store && (self.redis_prefix.is_some() || self.redis_wait_replicas > 0) {
            return Err(
                "--redis-prefix and --redis-wait-replicas need --redis or --redis-cluster"
                    .to_owned(),
            );
        }
        if redis_store {
            let prefix = self.redis_prefix.clone().unwrap_or_else(|| {
                let api = self.resource.as_deref().unwrap_or(&public_url);
                let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, api.as_bytes());
                let short: String = hash.as_ref()[..6]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("tower-pop:{short}:")
            });
            let (builder_of_store, flag) = match &self.redis {
                Some(url) => (RedisReplayCache::builder(url.as_str()), "--redis"),
                None => (
                    RedisReplayCache::cluster_builder(
                        self.redis_cluster.iter().map(|u| u.as_str().to_owned()),
                    ),
                    "--redis-cluster",
                ),
            };
            let mut store = builder_of_store.key_prefix(prefix);
            if self.redis_wait_replicas > 0 {
                store = store.wait_replicas(
                    self.redis_wait_replicas,
                    std::time::Duration::from_millis(self.redis_wait_timeout),
                );
            }
            let store = store.connect().await.map_err(|e| format!("{flag}: {e}"))?;
            builder = builder.replay_cache(Arc::new(store));
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// A secret file's bytes as text, one trailing newline dropped.
fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
}

impl Args {
    /// The `--cors-origin` origins, checked (`None` without the flag: no CORS headers at all).
    ///
    /// # Errors
    /// A message naming the first origin that is not one.
    pub fn cors_origins(&self) -> Result<Option<Vec<String>>, String> {
        if self.cors_origin.is_empty() {
            return Ok(None);
        }
        tower_pop::cors::allowed_origins(&self.cors_origin)
            .map(Some)
            .map_err(|e| format!("--cors-origin: {e}"))
    }

    /// The route policy of `/whoami`: `--scope` if given.
    ///
    /// # Errors
    /// A message when `--scope` is not an RFC 6749 scope-token.
    pub fn whoami_policy(&self) -> Result<RoutePolicy, String> {
        let policy = RoutePolicy::new();
        match &self.scope {
            Some(scope) => policy
                .require_scope(scope)
                .map_err(|e| format!("--scope: {e}")),
            None => Ok(policy),
        }
    }

    /// --public-url, or this server's own URL on `bound` (EXAMPLE-SERVERS.md).
    #[must_use]
    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{}://{bound}", self.scheme()))
    }

    /// `https` with --tls-cert, else `http`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The TLS configuration, with --tls-cert (and client certificates with --client-ca).
    ///
    /// # Errors
    /// A message naming the file that cannot be used.
    pub fn tls(&self) -> Result<Option<TlsConfig>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut tls = TlsConfig::builder()
            .cert_chain_pem_file(cert)
            .private_key_pem_file(key);
        if let Some(ca) = &self.client_ca {
            tls = tls.client_ca_pem_file(ca);
        }
        if self.fapi2() {
            tls = tls.fapi2();
        }
        tls.build().map(Some).map_err(|e| e.to_string())
    }

    /// Whether `--profile fapi2` is given.
    #[must_use]
    pub fn fapi2(&self) -> bool {
        self.profile.as_deref() == Some("fapi2")
    }
}

/// The `data` of `/events`' events, one a second from a second after the call, ended at the
/// token's `exp` (EXAMPLE-SERVERS.md) or its revocation; each server frames them its own way.
pub fn events(auth: Auth<SharedClaims>) -> impl tokio_stream::Stream<Item = String> + Send {
    use tokio_stream::StreamExt as _;
    let authorization = auth.lifetime.clone();
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(1),
    ));
    let mut n = 0;
    let data = ticks.map(move |_| {
        n += 1;
        event_data(&auth, n)
    });
    tower_pop::lifetime::until_ended(data, authorization)
}

/// The `data` of `/events`' N-th event (EXAMPLE-SERVERS.md): `{"sub": "...", "n": N}`.
#[must_use]
pub fn event_data(auth: &Auth<SharedClaims>, n: u64) -> String {
    let sub = auth
        .claims
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    serde_json::json!({"sub": sub, "n": n}).to_string()
}

/// The `/whoami` body: the verified claims, their `sub`, and the binding proven. The claims are
/// shared with the verifier's cache (`PopAuth<SharedClaims>`), not copied per request.
#[must_use]
pub fn whoami(auth: &Auth<SharedClaims>) -> WhoAmI<'_> {
    WhoAmI {
        binding: auth.binding.as_str(),
        claims: &auth.claims,
        jkt: auth.jkt.as_deref(),
        sub: auth.claims.get("sub"),
        x5t_s256: auth.certificate_thumbprint.as_deref(),
    }
}

/// The `/whoami` body, serialised from the request's claims without copying them. Its members
/// are in the order a JSON object of them would have (sorted): `binding`, `claims`, `jkt` (DPoP
/// only), `sub` (`null` when absent), `x5t#S256` (certificate-bound only).
#[derive(Debug, serde::Serialize)]
pub struct WhoAmI<'a> {
    binding: &'static str,
    claims: &'a serde_json::Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jkt: Option<&'a str>,
    sub: Option<&'a Value>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<&'a str>,
}

/// Install the Prometheus recorder (tower-pop's `metrics` feature) and serve its text at
/// `GET /metrics` on `addr` (--metrics-listen), on a thread and runtime of its own so that both
/// servers serve it alike. Call it before building the verifier. Returns the bound address.
///
/// # Errors
/// A message when the address cannot be bound or a recorder is already installed.
pub fn serve_metrics(addr: SocketAddr) -> Result<SocketAddr, String> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    // Real histogram buckets (Prometheus `_bucket`), 100 us to 1 s: verification is tens of
    // microseconds, a discovery or introspection round trip milliseconds.
    let buckets = [
        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("tower_pop_verify_seconds".into()), &buckets)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("--metrics-listen: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            // The recorder's upkeep drains histogram samples between scrapes.
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    every.tick().await;
                    upkeep.run_upkeep();
                }
            });
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let text = handle.render();
                    async move {
                        (
                            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                            text,
                        )
                    }
                }),
            );
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!("metrics endpoint failed: {e}");
                    }
                }
                Err(e) => tracing::error!("metrics endpoint failed: {e}"),
            }
        });
    });
    Ok(bound)
}

/// What both example servers do before they serve: read the flags (or exit 2 naming the bad
/// one), bind the listener, start the metrics endpoint (before the verifier, which describes
/// its metrics to the recorder), read the TLS files, and build the verifier. Any failure exits
/// 1 with a message.
#[derive(Debug)]
pub struct Startup {
    /// The flags.
    pub args: Args,
    /// The `--cors-origin` origins, checked.
    pub cors: Option<Vec<String>>,
    /// The bound listener (blocking: each framework takes it its own way, from
    /// [`listener`](Self::listener)).
    listener: std::net::TcpListener,
    /// Its address.
    pub bound: SocketAddr,
    /// The bound metrics address, with `--metrics-listen`.
    pub metrics: Option<SocketAddr>,
    /// The TLS configuration, with `--tls-cert`.
    pub tls: Option<TlsConfig>,
    /// The verifier.
    pub verifier: Arc<tower_pop::Verifier>,
    /// The route policy of `/whoami` (`--scope`).
    pub policy: RoutePolicy,
    /// What `/whoami`'s request signatures must cover, with `--require-signature`.
    pub signatures: Option<tower_pop::httpsig::SignaturePolicy>,
}

impl Startup {
    /// Start from the process's flags and environment.
    pub async fn from_env() -> Self {
        init_logging();
        Self::from_args(Args::from_env(), None).await
    }

    /// Start from `args`. With `resource_path`, a server whose protocol needs RFC 9728
    /// metadata (MCP) serves it by default: without `--resource`, the resource is the public
    /// URL plus that path.
    pub async fn from_args(mut args: Args, resource_path: Option<&str>) -> Self {
        let cors = args.cors_origins().unwrap_or_else(|e| fail(&e));
        let policy = args.whoami_policy().unwrap_or_else(|e| fail(&e));
        let listener = std::net::TcpListener::bind(args.listen)
            .unwrap_or_else(|e| fail(&format!("cannot listen on {}: {e}", args.listen)));
        let bound = listener.local_addr().unwrap_or(args.listen);
        let metrics = args
            .metrics_listen
            .map(|addr| serve_metrics(addr).unwrap_or_else(|e| fail(&e)));
        let tls = args.tls().unwrap_or_else(|e| fail(&e));
        if let (Some(path), None) = (resource_path, &args.resource) {
            let public = args.public_url(bound);
            args.resource = Some(format!("{}{path}", public.trim_end_matches('/')));
        }
        let config = args.config(bound).await.unwrap_or_else(|e| fail(&e));
        Self {
            verifier: Arc::new(tower_pop::Verifier::new(config)),
            signatures: args
                .require_signature
                .then(tower_pop::httpsig::SignaturePolicy::new),
            args,
            policy,
            cors,
            listener,
            bound,
            metrics,
            tls,
        }
    }

    /// The bound listener, to serve on (a handle to the same socket).
    pub fn listener(&self) -> std::net::TcpListener {
        self.listener
            .try_clone()
            .unwrap_or_else(|e| fail(&format!("cannot listen: {e}")))
    }

    /// The bound listener for tokio (axum, tonic).
    pub fn tokio_listener(&self) -> tokio::net::TcpListener {
        let listener = self.listener();
        listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .unwrap_or_else(|e| fail(&format!("cannot listen: {e}")))
    }

    /// The stdout lines of the contract: `listening on ...`, then `metrics on ...`.
    pub fn announce(&self) {
        println!("listening on {}://{}", self.args.scheme(), self.bound);
        if let Some(addr) = self.metrics {
            println!("metrics on http://{addr}/metrics");
        }
    }
}

/// Print `error: <message>` to stderr and exit 1.
pub fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// Worker threads for the actix-web servers: one per core the process may use, as tokio's
/// multi-threaded runtime (the axum servers) has.
#[must_use]
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Log to stderr; `RUST_LOG` overrides the default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Serve `app` on `listener` until Ctrl-C: HTTPS when `tls` is given (each connection's client
/// certificate captured for RFC 8705 binding), plain HTTP otherwise, with the peer address
/// (`ConnectInfo`) that `--trusted-proxy` decisions need, and every connection within the
/// default [`ServerLimits`](axum_pop::serve::ServerLimits) (header read and idle timeouts,
/// connections and TLS handshakes at once).
///
/// # Errors
/// When serving fails.
pub async fn serve_axum(
    listener: tokio::net::TcpListener,
    tls: Option<TlsConfig>,
    app: axum::Router,
) -> std::io::Result<()> {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let limits = axum_pop::serve::ServerLimits::default();
    serve_axum_within(listener, tls, app, limits, ctrl_c).await
}

/// [`serve_axum`] within `limits` instead of the defaults, until `shutdown` completes (then
/// in-flight requests finish).
///
/// # Errors
/// When serving fails.
pub async fn serve_axum_within(
    listener: tokio::net::TcpListener,
    tls: Option<TlsConfig>,
    app: axum::Router,
    limits: axum_pop::serve::ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = axum_pop::serve::Server::new(listener, app).limits(limits);
    let server = match tls {
        Some(tls) => server.tls(tls),
        None => server,
    };
    server.run_until(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
    }

    /// The flags every server needs, then `extra`.
    fn parse_with(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = [
            "--issuer",
            "https://as",
            "--audience",
            "api",
            "--jwks-file",
            "k.json",
        ];
        parse(&[&base[..], extra].concat())
    }

    #[test]
    fn redis_cluster_flags_parse_and_exclude_redis() {
        let a = parse_with(&[
            "--redis-cluster",
            "redis://127.0.0.1:7000",
            "--redis-cluster",
            "redis://127.0.0.1:7001,redis://127.0.0.1:7002",
            "--redis-wait-replicas",
            "1",
            "--redis-wait-timeout",
            "50",
        ])
        .unwrap();
        assert_eq!(a.redis_cluster.len(), 3);
        assert_eq!((a.redis_wait_replicas, a.redis_wait_timeout), (1, 50));
        let defaults = parse_with(&[]).unwrap();
        assert_eq!(
            (defaults.redis_wait_replicas, defaults.redis_wait_timeout),
            (0, 100)
        );
        assert!(
            parse_with(&["--redis", "redis://a", "--redis-cluster", "redis://b"]).is_err(),
            "exclusive"
        );
        assert!(parse_with(&["--redis-wait-replicas", "17"]).is_err());
        assert!(parse_with(&["--redis-wait-timeout", "0"]).is_err());
    }

    #[test]
    fn debug_shows_no_password_or_url_query() {
        let a = parse_with(&[
            "--redis",
            "redis://:hunter2@127.0.0.1:6379/0",
            "--introspection-url",
            "https://as/introspect?api_key=abc123",
            "--client-id",
            "rs",
            "--client-secret-file",
            "secret.txt",
        ])
        .unwrap();
        let printed = format!("{a:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("abc123"),
            "{printed}"
        );
        assert!(printed.contains("redis://127.0.0.1:6379/0"), "{printed}");
        assert!(printed.contains("https://as/introspect?…"), "{printed}");
        assert_eq!(
            a.redis.unwrap().as_str(),
            "redis://:hunter2@127.0.0.1:6379/0"
        );
    }

    #[test]
    fn parses_flags_and_defaults() {
        let a = parse_with(&[]).unwrap();
        assert_eq!(a.listen.to_string(), "127.0.0.1:8080");
        assert!(!a.allow_bearer && a.public_url.is_none());
        let a = parse(&[
            "--issuer",
            "i",
            "--audience",
            "a",
            "--jwks-file",
            "k",
            "--allow-bearer",
            "--listen",
            "[::1]:0",
            "--public-url",
            "https://x",
        ])
        .unwrap();
        assert!(a.allow_bearer);
        assert_eq!(a.listen.to_string(), "[::1]:0");
        assert_eq!(a.public_url.as_deref(), Some("https://x"));
    }

    #[test]
    fn refuses_unknown_and_missing_flags_naming_them() {
        let missing = parse(&["--issuer", "i"]).unwrap_err();
        assert_eq!(missing.exit_code(), 2);
        assert!(missing.to_string().contains("--audience") || missing.exit_code() == 2);
        let unknown = parse(&["--bogus"]).unwrap_err();
        assert!(unknown.to_string().contains("--bogus"), "{unknown}");
    }
}
