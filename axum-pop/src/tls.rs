//! Serve a [`Router`] over TLS and hand every request its connection's client certificate
//! (RFC 8705 §3). Feature `rustls`.
//!
//! [`serve_tls`] accepts TCP connections, does the rustls handshake (at most
//! [`HANDSHAKE_TIMEOUT`]; a failed or slow handshake only drops that connection, logged at
//! `debug` under target `axum_pop::tls`), reads the client's end-entity certificate **once per
//! connection**, and serves HTTP/1.1 (keep-alive) and HTTP/2 (ALPN `h2`, `http/1.1`). Each
//! request on the connection gets in its extensions:
//!
//! - [`PeerCertificate`]: the DER of the client certificate, when the client sent one. The
//!   layer ([`crate::RequirePopLayer`]) checks certificate-bound tokens against it (RFC 8705 §3).
//!   Without it, a bound token is refused (RFC 8705 §3).
//! - [`ConnectInfo<SocketAddr>`](ConnectInfo): the TCP peer, as with
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
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower_pop::PeerCertificate;
use tower_service::Service as _;

pub use tower_pop::tls::{ClientAuth, PemSource, TlsConfig, TlsConfigBuilder, TlsConfigError};

/// The longest a TLS handshake may take before the connection is dropped: a client that opens
/// connections and never finishes them holds no resources past this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const LOG_TARGET: &str = "axum_pop::tls";

/// Serve `router` over TLS on `listener` until the process ends. See the [module](self) docs.
///
/// # Errors
/// None today (accept errors are logged and retried, as `axum::serve` does); the `Result`
/// leaves room for listener failures.
pub async fn serve_tls(listener: TcpListener, tls: TlsConfig, router: Router) -> io::Result<()> {
    serve_tls_with_graceful_shutdown(listener, tls, router, std::future::pending()).await
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
    let mut config = (*tls.server_config()).clone();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let graceful = GracefulShutdown::new();
    let mut signal = pin!(signal);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        // Taken before the handshake, so a shutdown waits for connections still handshaking.
        let watcher = graceful.watcher();
        tokio::spawn(serve_connection(
            tcp,
            remote,
            acceptor.clone(),
            router.clone(),
            watcher,
        ));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Per-connection failures (the client went away) are ignored; anything else (out of file
/// descriptors) is logged and retried after a pause instead of spinning.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(target: LOG_TARGET, error = %err, "accepting a connection failed; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn serve_connection(
    tcp: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    watcher: Watcher,
) {
    // Best effort: a socket that refuses it still works, only with more latency.
    let _ = tcp.set_nodelay(true);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::debug!(target: LOG_TARGET, %remote, error = %err, "tls handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(target: LOG_TARGET, %remote, "tls handshake timed out");
            return;
        }
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(<[_]>::first)
        .map(|der| PeerCertificate::new(der.as_ref()));
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let extensions = request.extensions_mut();
        if let Some(certificate) = &certificate {
            extensions.insert(certificate.clone());
        }
        extensions.insert(ConnectInfo(remote));
        router.clone().call(request)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(err) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(target: LOG_TARGET, %remote, error = %err, "connection ended with an error");
    }
}
