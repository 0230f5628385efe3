//! Serve a [`Router`] over TLS and hand every request its connection's client certificate
//! (RFC 8705 §3). Feature `rustls`.
//!
//! [`serve_tls`] accepts TCP connections, does the rustls handshake (within the
//! [`ServerLimits`](crate::serve::ServerLimits) of [`crate::serve`]: at most
//! [`HANDSHAKE_TIMEOUT`] by default; a failed or slow handshake only drops that connection,
//! logged at `debug` under target `axum_pop::serve`), reads the client's end-entity certificate **once per
//! connection**, and serves HTTP/1.1 (keep-alive) and HTTP/2 (ALPN `h2`, `http/1.1`). Each
//! request on the connection gets in its extensions:
//!
//! - [`PeerCertificate`](tower_pop::PeerCertificate): the DER of the client certificate, when the client sent one. The
//!   layer ([`crate::RequirePopLayer`]) checks certificate-bound tokens against it (RFC 8705 §3).
//!   Without it, a bound token is refused (RFC 8705 §3).
//! - [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo): the TCP peer, as with
//!   `into_make_service_with_connect_info`.
//!
//! What is asked of the client is decided by [`TlsConfig`]: with a client CA, certificates are
//! optional by default so DPoP clients keep connecting; see [`tower_pop::tls`]. One connection
//! has one certificate: rustls supports neither renegotiation nor post-handshake client
//! authentication (RFC 9440 §1.2). No certificate or key is ever logged.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use axum_pop::tls::{TlsConfig, serve_tls};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = TlsConfig::builder()
//!     .cert_chain_pem_file("server.pem")
//!     .private_key_pem_file("server.key")
//!     .client_ca_pem_file("client-ca.pem") // ask for client certificates (optional)
//!     .build()?;
//! let app = Router::new().route("/health", get(|| async { "ok" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! serve_tls(listener, tls, app).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::serve::Server;

pub use tower_pop::tls::{ClientAuth, PemSource, TlsConfig, TlsConfigBuilder, TlsConfigError};

/// The longest a TLS handshake may take before the connection is dropped, by default
/// ([`ServerLimits::tls_handshake_timeout`](crate::serve::ServerLimits)): a client that opens
/// connections and never finishes them holds no resources past this.
pub const HANDSHAKE_TIMEOUT: Duration = tower_pop::defaults::SERVER_TLS_HANDSHAKE_TIMEOUT;

/// Serve `router` over TLS on `listener` until the process ends, within the default
/// [`ServerLimits`](crate::serve::ServerLimits). See the [module](self) docs, and
/// [`Server`] for other limits.
///
/// # Errors
/// None today (accept errors are logged and retried, as `axum::serve` does); the `Result`
/// leaves room for listener failures.
pub async fn serve_tls(listener: TcpListener, tls: TlsConfig, router: Router) -> io::Result<()> {
    Server::new(listener, router).tls(tls).run().await
}

/// [`serve_tls`] until `signal` completes; then stop accepting, ask every open connection to
/// finish its in-flight requests (HTTP/2 `GOAWAY`, HTTP/1.1 `Connection: close`), and return
/// once all have closed. Handshakes still in progress finish or time out first. Wrap the call
/// in `tokio::time::timeout` to bound the wait.
///
/// ```
/// # use axum::{Router, routing::get};
/// # use axum_pop::tls::{PemSource, TlsConfig, serve_tls_with_graceful_shutdown};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let server = &tower_pop_test_support::pki().server;
/// let tls = TlsConfig::builder()
///     .cert_chain(PemSource::Inline(server.cert_pem.clone().into()))
///     .private_key(PemSource::Inline(server.key_pem.clone().into()))
///     .build()
///     .unwrap();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(serve_tls_with_graceful_shutdown(
///     listener,
///     tls,
///     Router::new().route("/", get(|| async { "ok" })),
///     async { stopped.await.ok(); },
/// ));
/// stop.send(()).unwrap();
/// assert!(server.await.unwrap().is_ok());
/// # }
/// ```
///
/// # Errors
/// As [`serve_tls`].
pub async fn serve_tls_with_graceful_shutdown<F>(
    listener: TcpListener,
    tls: TlsConfig,
    router: Router,
    signal: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    Server::new(listener, router)
        .tls(tls)
        .run_until(signal)
        .await
}
