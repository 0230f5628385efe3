//! Serve a [`Router`] with every connection bounded, so that slow or many clients cannot exhaust
//! the server. Feature `serve` (on with `rustls`).
//!
//! [`Server`] accepts TCP connections (HTTP/1.1 and HTTP/2, over TLS with
//! [`Server::tls`] under the `rustls` feature) within the [`ServerLimits`]:
//!
//! - **header read timeout**: a request's whole header must arrive within it, the first and
//!   every next one on a keep-alive HTTP/1.1 connection (a slowloris client sending a byte every
//!   few seconds is closed when it runs out);
//! - **idle timeout**: a connection that carries no byte either way for this long is closed (an
//!   idle HTTP/2 connection, a stalled body);
//! - **connections**: at most this many at once; further clients wait in the listen backlog
//!   until one closes;
//! - **TLS handshakes**: at most this many at once, each (its wait for a slot included) within
//!   the handshake timeout; a failed or slow handshake only drops its connection.
//!
//! Each request gets [`ConnectInfo<SocketAddr>`](ConnectInfo) in its extensions (the TCP peer,
//! which trusted-proxy decisions need) and, over TLS, the connection's client certificate as a
//! [`PeerCertificate`](tower_pop::PeerCertificate) (RFC 8705 §3; see [`crate::tls`]). Events go
//! to target `axum_pop::serve` at `debug` (a connection refused or timed out) and `warn` (the
//! listener failing); no request, token or certificate is logged.
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use axum_pop::serve::{Server, ServerLimits};
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route("/health", get(|| async { "ok" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let mut limits = ServerLimits::default();
//! limits.header_read_timeout = Duration::from_secs(5);
//! Server::new(listener, app).limits(limits).run().await
//! # }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
#[cfg(feature = "rustls")]
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower_service::Service as _;

pub use tower_pop::server_limits::ServerLimits;

const LOG_TARGET: &str = "axum_pop::serve";

/// A server for one [`Router`] on one listener, within [`ServerLimits`]. See the
/// [module](self) docs.
#[must_use]
pub struct Server {
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    #[cfg(feature = "rustls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener.local_addr().ok())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Serve `router` on `listener`, plain HTTP, with the default [`ServerLimits`].
    pub fn new(listener: TcpListener, router: Router) -> Self {
        Self {
            listener,
            router,
            limits: ServerLimits::default(),
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// Bound connections by `limits` instead of the defaults.
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serve TLS with `tls` (ALPN `h2` and `http/1.1`), each request with its connection's client
    /// certificate (see [`crate::tls`]).
    #[cfg(feature = "rustls")]
    pub fn tls(mut self, tls: tower_pop::tls::TlsConfig) -> Self {
        let mut config = (*tls.server_config()).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        self.tls = Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        self
    }

    /// Serve until the process ends.
    ///
    /// # Errors
    /// None today (accept errors are logged and retried); the `Result` leaves room for listener
    /// failures.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serve until `signal` completes; then stop accepting, ask every open connection to finish
    /// its in-flight requests (HTTP/2 `GOAWAY`, HTTP/1.1 `Connection: close`), and return once
    /// all have closed (each within the limits: a handshake in progress finishes or times out).
    /// Wrap the call in `tokio::time::timeout` to bound the wait.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn run_until<F>(self, signal: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let limits = self.limits;
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let handshakes = Arc::new(Semaphore::new(limits.max_tls_handshakes.max(1)));
        let graceful = GracefulShutdown::new();
        let mut signal = pin!(signal);
        loop {
            // A slot first: at the cap, clients wait in the listen backlog, not in our memory.
            let slot = tokio::select! {
                slot = Arc::clone(&connections).acquire_owned() => slot,
                () = &mut signal => break,
            };
            let Ok(slot) = slot else { break };
            let (tcp, remote) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        accept_failed(err).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            // Taken before any handshake, so a shutdown waits for connections still in one.
            let connection = Connection {
                remote,
                router: self.router.clone(),
                limits,
                watcher: graceful.watcher(),
            };
            #[cfg(feature = "rustls")]
            if let Some(acceptor) = &self.tls {
                let (acceptor, handshakes) = (acceptor.clone(), Arc::clone(&handshakes));
                tokio::spawn(async move {
                    connection.serve_tls(tcp, acceptor, &handshakes).await;
                    drop(slot);
                });
                continue;
            }
            let _ = &handshakes;
            // Best effort: a socket that refuses it still works, only with more latency.
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                connection.serve(tcp, None).await;
                drop(slot);
            });
        }
        drop(self.listener);
        graceful.shutdown().await;
        Ok(())
    }
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

/// One accepted connection.
struct Connection {
    remote: SocketAddr,
    router: Router,
    limits: ServerLimits,
    watcher: Watcher,
}

impl Connection {
    /// The TLS handshake within its limits (a slot among the handshakes at once, and the
    /// timeout for both), then HTTP.
    #[cfg(feature = "rustls")]
    async fn serve_tls(
        self,
        tcp: TcpStream,
        acceptor: tokio_rustls::TlsAcceptor,
        handshakes: &Semaphore,
    ) {
        let remote = self.remote;
        let _ = tcp.set_nodelay(true);
        let handshake = async {
            let _slot = handshakes.acquire().await.ok()?;
            Some(acceptor.accept(tcp).await)
        };
        let timeout = self
            .limits
            .tls_handshake_timeout
            .max(Duration::from_millis(1));
        let stream = match tokio::time::timeout(timeout, handshake).await {
            Ok(Some(Ok(stream))) => stream,
            Ok(Some(Err(err))) => {
                tracing::debug!(target: LOG_TARGET, %remote, error = %err, "tls handshake failed");
                return;
            }
            Ok(None) | Err(_) => {
                tracing::debug!(target: LOG_TARGET, %remote, "tls handshake timed out");
                return;
            }
        };
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(<[_]>::first)
            .map(|der| tower_pop::PeerCertificate::new(der.as_ref()));
        self.serve(stream, certificate).await;
    }

    /// HTTP/1.1 or HTTP/2 on `io`, each request with the peer (and certificate) in its
    /// extensions, within the header and idle timeouts.
    async fn serve<I>(self, io: I, certificate: Option<tower_pop::PeerCertificate>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            remote,
            router,
            limits,
            watcher,
        } = self;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let extensions = request.extensions_mut();
            if let Some(certificate) = &certificate {
                extensions.insert(certificate.clone());
            }
            extensions.insert(ConnectInfo(remote));
            router.clone().call(request)
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout.max(Duration::from_millis(1)));
        builder.http2().timer(TokioTimer::new());
        let io = IdleTimeout::new(io, limits.idle_timeout.max(Duration::from_millis(1)));
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        if let Err(err) = watcher.watch(connection.into_owned()).await {
            tracing::debug!(target: LOG_TARGET, %remote, error = %err, "connection ended with an error");
        }
    }
}

/// A connection closed (an `io::ErrorKind::TimedOut` error) once no byte has moved either way
/// for `timeout`. Activity is a timestamp per read or write; the timer is re-armed only when it
/// fires early, not on every byte.
struct IdleTimeout<T> {
    inner: T,
    sleep: Pin<Box<Sleep>>,
    timeout: Duration,
    last: Instant,
}

impl<T> IdleTimeout<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            sleep: Box::pin(tokio::time::sleep_until(now + timeout)),
            timeout,
            last: now,
        }
    }

    /// `Pending` while the connection has been idle for less than `timeout`, else the error
    /// that closes it.
    fn idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.last + self.timeout;
            if Instant::now() >= deadline {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                ));
            }
            self.sleep.as_mut().reset(deadline);
        }
    }

    /// After `moved` bytes went through: the connection is active now.
    fn moved(&mut self, moved: bool) {
        if moved {
            self.last = Instant::now();
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                self.moved(buf.filled().len() > before);
                Poll::Ready(result)
            }
            Poll::Pending => self.idle(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(result) => {
                self.moved(matches!(result, Ok(written) if written > 0));
                Poll::Ready(result)
            }
            Poll::Pending => self.idle(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.moved(matches!(result, Ok(written) if written > 0));
                Poll::Ready(result)
            }
            Poll::Pending => self.idle(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
