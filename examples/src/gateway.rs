//! The command line of `pop_gateway` and its request body, which stops at a size limit and
//! carries no trailers. The rules of what crosses the gateway live in the `tower-pop-gateway`
//! package (`examples/gateway`), apart from any I/O, with unit tests and fuzz targets.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use clap::{CommandFactory, FromArgMatches, Parser};
use http_body::{Frame, SizeHint};
use tower_pop_gateway::forward_auth::ProxyKind;

use crate::Args;

fn parse_proxy(value: &str) -> Result<ProxyKind, String> {
    value.parse()
}

/// The command line of `pop_gateway`: every flag of the example servers ([`Args`]) plus the
/// gateway's own. Every flag can also come from a `TOWER_POP_*` environment variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pop_gateway",
    version,
    about = "A reverse proxy that requires proof-of-possession tokens (DPoP, mTLS) in front of a service written in any language"
)]
pub struct GatewayArgs {
    /// The flags shared with the example servers.
    #[command(flatten)]
    pub common: Args,
    /// Forward accepted requests to this service (`http://host:port` or `https://host:port`,
    /// optionally with a base path that is put before every request path). WebSockets go to
    /// the same place as `ws://` or `wss://`.
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "forward_auth",
        conflicts_with = "forward_auth"
    )]
    pub upstream: Option<String>,
    /// Do not proxy: answer the auth sub-requests of the proxy named, nginx (`auth_request`),
    /// traefik (`ForwardAuth`) or envoy (`ext_authz`): 200 with the identity fields, or the
    /// refusal; from --trusted-proxy peers only. The original method and URI are read only
    /// from that proxy's fields.
    #[arg(long, value_name = "PROXY", value_parser = parse_proxy)]
    pub forward_auth: Option<ProxyKind>,
    /// A path prefix that passes without a token (repeatable; matched on whole path segments:
    /// `/static` covers `/static` and `/static/app.js`, not `/static-admin`).
    #[arg(long = "public-path", value_name = "PREFIX")]
    pub public_path: Vec<String>,
    /// Forward the client's `Authorization` field to the upstream [default: removed].
    #[arg(long)]
    pub forward_authorization: bool,
    /// Also remove this request field before forwarding (repeatable), besides the built-in
    /// list of fields that upstream frameworks read to override the path, the method or the
    /// client address (X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override, X-HTTP-Method,
    /// X-Method-Override, X-Forwarded-Prefix, X-Forwarded-Port, X-Real-IP, True-Client-IP,
    /// X-Client-IP, CF-Connecting-IP).
    #[arg(long = "strip-header", value_name = "NAME")]
    pub strip_header: Vec<String>,
    /// The largest request body forwarded; a larger one is refused with 413.
    #[arg(long, value_name = "N", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: u64,
    /// How long the upstream may take to start answering (connect, send, response head) before
    /// the gateway answers 504.
    #[arg(long, value_name = "S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upstream_timeout_secs: u64,
    /// Speak HTTP/2 to the upstream (prior knowledge, h2c; over TLS, ALPN `h2`) instead of
    /// HTTP/1.1.
    #[arg(long)]
    pub upstream_http2: bool,
    /// Trust this CA (PEM, one or more certificates) for an `https://` upstream, instead of the
    /// system's roots.
    #[arg(long, value_name = "PEM")]
    pub upstream_ca: Option<std::path::PathBuf>,
}

/// The TLS client configuration for an `https://` upstream: the roots of `--upstream-ca` if
/// given, else the system's; TLS 1.2 and 1.3 on aws-lc-rs; no ALPN (each client adds its own).
///
/// # Errors
/// An unreadable or empty CA file, or no usable system root.
pub fn upstream_tls(ca: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| format!("--upstream-ca {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("--upstream-ca {}: no certificate", path.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "an https:// upstream: no system root certificate (give --upstream-ca)"
                        .to_owned(),
                );
            }
        }
    }
    client_tls(roots).map(Arc::new)
}

/// A TLS client configuration trusting `roots`: TLS 1.2 and 1.3 on aws-lc-rs, no ALPN.
///
/// # Errors
/// When the provider cannot offer the default protocol versions.
pub fn client_tls(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl GatewayArgs {
    /// The clap command: the example servers' flags, with `--trusted-proxy` usable on its own
    /// (here it also names the proxies whose `Forwarded` fields and forward-auth sub-requests
    /// are believed) and `--scope` applying to every proxied request.
    #[must_use]
    pub fn command() -> clap::Command {
        <Self as CommandFactory>::command()
            .mut_arg("trusted_proxy", |a| {
                a.requires(clap::builder::Resettable::Reset).help(
                    "A peer network trusted as a proxy (repeatable; CIDR or one address): its \
                     Forwarded/X-Forwarded-* fields are kept, its forward-auth sub-requests are \
                     answered, and with --client-cert-header its certificate header is believed",
                )
            })
            .mut_arg("scope", |a| {
                a.help("Every request that needs a token requires this scope (403 insufficient_scope without it)")
            })
            // CORS answers every OPTIONS itself: in forward-auth mode that would authorise any
            // OPTIONS sub-request (Envoy sends the original method). CORS belongs to the front
            // proxy or the upstream there.
            .mut_arg("cors_origin", |a| a.conflicts_with("forward_auth"))
    }

    /// Parse these arguments (the first is the program name).
    ///
    /// # Errors
    /// clap's error for a bad or missing flag.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = crate::with_env(Self::command()).try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }

    /// Parse the process arguments; `--help`/`--version` exit 0, a bad flag exits 2.
    #[must_use]
    pub fn from_env() -> Self {
        Self::try_parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }
}

/// A request body that ends in an error once more than a limit has been read, and says so
/// through a flag the proxy checks to answer 413 instead of 502. Its trailers are dropped.
#[derive(Debug)]
pub struct LimitedBody {
    inner: Body,
    remaining: u64,
    exceeded: Arc<AtomicBool>,
}

impl LimitedBody {
    /// `inner`, cut off after `limit` bytes; the flag turns true when it was.
    #[must_use]
    pub fn new(inner: Body, limit: u64) -> (Self, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        let body = Self {
            inner,
            remaining: limit,
            exceeded: Arc::clone(&exceeded),
        };
        (body, exceeded)
    }
}

/// The body's error: the client's stream failed, or it went past the limit.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            return match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Some(data) = frame.data_ref() else {
                        // Trailers: fields the client sends after the header section was
                        // checked. Not forwarded.
                        continue;
                    };
                    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    if len > this.remaining {
                        this.exceeded.store(true, Ordering::SeqCst);
                        return Poll::Ready(Some(Err("request body over the limit".into())));
                    }
                    this.remaining -= len;
                    Poll::Ready(Some(Ok(frame)))
                }
                Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
                None => Poll::Ready(None),
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_is_refused_in_forward_auth_mode() {
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "pop_gateway",
                "--issuer",
                "https://as.example",
                "--audience",
                "a",
            ];
            args.extend_from_slice(extra);
            GatewayArgs::try_parse_args(args)
        };
        let both = parse(&[
            "--forward-auth",
            "nginx",
            "--cors-origin",
            "https://app.example",
        ]);
        assert_eq!(
            both.err().map(|e| e.kind()),
            Some(clap::error::ErrorKind::ArgumentConflict)
        );
        assert!(
            parse(&[
                "--upstream",
                "http://127.0.0.1:1",
                "--cors-origin",
                "https://app.example"
            ])
            .is_ok()
        );
    }

    #[test]
    fn gateway_flags_parse_and_keep_the_servers_flags() {
        let base = ["gw", "--issuer", "i", "--audience", "a", "--jwks-file", "k"];
        let parse =
            |extra: &[&str]| GatewayArgs::try_parse_args(base.iter().chain(extra.iter()).copied());
        let a = parse(&["--upstream", "http://127.0.0.1:9", "--public-path", "/p"]).unwrap();
        assert_eq!(a.upstream.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(a.common.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(a.max_body_bytes, 10 * 1024 * 1024);
        let a = parse(&["--forward-auth", "envoy", "--trusted-proxy", "127.0.0.2"]).unwrap();
        assert_eq!(a.forward_auth, Some(ProxyKind::Envoy));
        assert!(a.common.client_cert_header.is_none());
        assert!(parse(&[]).is_err(), "--upstream or --forward-auth required");
        assert!(
            parse(&["--forward-auth"]).is_err(),
            "the proxy must be named"
        );
        assert!(parse(&["--forward-auth", "haproxy"]).is_err());
        assert!(parse(&["--forward-auth", "nginx", "--upstream", "http://x"]).is_err());
        let a = parse(&[
            "--upstream",
            "http://x",
            "--strip-header",
            "X-A",
            "--strip-header",
            "X-B",
        ])
        .unwrap();
        assert_eq!(a.strip_header, ["X-A", "X-B"]);
        assert!(parse(&["--upstream", "http://x", "--upstream-timeout-secs", "0"]).is_err());
    }
}
