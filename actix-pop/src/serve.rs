//! Bound an actix-web [`HttpServer`]'s connections so that slow or many clients cannot exhaust
//! it: the same [`ServerLimits`] as `axum_pop::serve`, mapped onto actix-web's own settings.
//! Feature `serve` (on with `rustls`).
//!
//! | [`ServerLimits`] | actix-web |
//! |---|---|
//! | `header_read_timeout` | `client_request_timeout`: the time to receive a request's head |
//! | `idle_timeout` | `keep_alive`: the time a connection may wait for its next request |
//! | `max_connections` | `max_connections`, shared among the workers |
//! | `max_tls_handshakes` | `max_connection_rate`, shared among the workers |
//! | `tls_handshake_timeout` | `tls_handshake_timeout` (feature `rustls`) |
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use actix_pop::serve::{ServerExt as _, ServerLimits};
//!
//! # async fn run() -> std::io::Result<()> {
//! HttpServer::new(|| App::new().route("/health", web::get().to(|| async { "ok" })))
//!     .limits(&ServerLimits::default(), 2)
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! # }
//! ```

use std::fmt;

use actix_http::Request;
use actix_service::IntoServiceFactory;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory};
use actix_web::http::KeepAlive;
use actix_web::{Error, HttpServer};

pub use tower_pop::server_limits::ServerLimits;

/// What tower-pop sets on an actix-web [`HttpServer`]: its [`limits`](Self::limits), and (feature
/// `rustls`) TLS with each connection's client certificate kept (see [`crate::tls`]).
/// Implemented for every `HttpServer` actix-web can run, so its generic bounds are named once.
pub trait ServerExt: Sized {
    /// Run `workers` workers (at least one) and bound their connections by `limits`; the caps on
    /// connections and TLS handshakes are shared among the workers (actix-web counts them per
    /// worker).
    #[must_use]
    fn limits(self, limits: &ServerLimits, workers: usize) -> Self;

    /// See [`crate::tls::bind_tls`].
    ///
    /// # Errors
    /// When binding fails.
    #[cfg(feature = "rustls")]
    fn bind_tls(
        self,
        addrs: impl std::net::ToSocketAddrs,
        tls: &tower_pop::tls::TlsConfig,
    ) -> std::io::Result<Self>;

    /// See [`crate::tls::listen_tls`].
    ///
    /// # Errors
    /// When the listener cannot be used.
    #[cfg(feature = "rustls")]
    fn listen_tls(
        self,
        listener: std::net::TcpListener,
        tls: &tower_pop::tls::TlsConfig,
    ) -> std::io::Result<Self>;
}

impl<F, I, S, B> ServerExt for HttpServer<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    fn limits(self, limits: &ServerLimits, workers: usize) -> Self {
        let workers = workers.max(1);
        let server = self
            .workers(workers)
            .client_request_timeout(limits.header_read_timeout.max(MIN_TIMEOUT))
            .keep_alive(KeepAlive::Timeout(limits.idle_timeout.max(MIN_TIMEOUT)))
            .max_connections(limits.max_connections.div_ceil(workers).max(1))
            .max_connection_rate(limits.max_tls_handshakes.div_ceil(workers).max(1));
        #[cfg(feature = "rustls")]
        let server = server.tls_handshake_timeout(limits.tls_handshake_timeout.max(MIN_TIMEOUT));
        server
    }

    #[cfg(feature = "rustls")]
    fn bind_tls(
        self,
        addrs: impl std::net::ToSocketAddrs,
        tls: &tower_pop::tls::TlsConfig,
    ) -> std::io::Result<Self> {
        self.on_connect(crate::tls::capture_peer_certificate)
            .bind_rustls_0_23(addrs, (*tls.server_config()).clone())
    }

    #[cfg(feature = "rustls")]
    fn listen_tls(
        self,
        listener: std::net::TcpListener,
        tls: &tower_pop::tls::TlsConfig,
    ) -> std::io::Result<Self> {
        self.on_connect(crate::tls::capture_peer_certificate)
            .listen_rustls_0_23(listener, (*tls.server_config()).clone())
    }
}

/// The least timeout set: actix-web reads a zero as "no timeout", which a limit must never be.
const MIN_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1);
