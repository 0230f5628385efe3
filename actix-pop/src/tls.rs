//! Serve actix-web over TLS and keep each connection's client certificate (RFC 8705 §3).
//! Feature `rustls`.
//!
//! actix-web does the rustls handshake itself (`bind_rustls_0_23`, handshake timeout
//! `HttpServer::tls_handshake_timeout`, 3 s by default; ALPN set by actix: `h2` needs
//! actix-web's `http2` feature, a default of actix-web, else `http/1.1` only). What it does not do is keep the client certificate. [`bind_tls`] and [`listen_tls`]
//! bind with a [`TlsConfig`] and install [`capture_peer_certificate`] as the server's
//! `on_connect` hook, which reads the end-entity certificate **once per connection** into the
//! connection data; [`peer_certificate`] reads it back for any request on that connection
//! (HTTP/1.1 keep-alive or HTTP/2). One connection has one certificate: rustls supports
//! neither renegotiation nor post-handshake client authentication (RFC 9440 §1.2).
//!
//! What is asked of the client is decided by [`TlsConfig`]: with a client CA, certificates are
//! optional by default so DPoP clients keep connecting; see [`tower_pop::tls`].
//!
//! ```no_run
//! use actix_web::{App, HttpRequest, HttpServer, web};
//! use actix_pop::tls::{TlsConfig, bind_tls, peer_certificate};
//!
//! async fn whoami(req: HttpRequest) -> String {
//!     match peer_certificate(&req) {
//!         Some(cert) => tower_pop::thumbprint::x5t_s256(cert.der()),
//!         None => "no client certificate".to_owned(),
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = TlsConfig::builder()
//!     .cert_chain_pem_file("server.pem")
//!     .private_key_pem_file("server.key")
//!     .client_ca_pem_file("client-ca.pem") // ask for client certificates (optional)
//!     .build()?;
//! let server = HttpServer::new(|| App::new().route("/whoami", web::get().to(whoami)));
//! bind_tls(server, "127.0.0.1:8443", &tls)?.run().await?;
//! # Ok(()) }
//! ```

use std::any::Any;
use std::io;
use std::net::{TcpListener, ToSocketAddrs};

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use tower_pop::PeerCertificate;

use crate::serve::ServerExt;

pub use tower_pop::tls::{ClientAuth, PemSource, TlsConfig, TlsConfigBuilder, TlsConfigError};

/// `HttpServer::on_connect` hook: on a rustls connection, store the client's end-entity
/// certificate (if it sent one) as a [`PeerCertificate`] in the connection data. Other
/// connections (plain TCP listeners of the same server) are left alone.
///
/// [`bind_tls`] installs it. A server with its own `on_connect` hook calls it from there and
/// binds with `bind_rustls_0_23(addr, (*tls.server_config()).clone())`.
///
/// ```
/// use actix_web::dev::Extensions;
/// use actix_pop::{PeerCertificate, tls::capture_peer_certificate};
///
/// // Not a TLS connection: nothing is stored.
/// let mut data = Extensions::new();
/// capture_peer_certificate(&"a plain connection", &mut data);
/// assert!(data.get::<PeerCertificate>().is_none());
/// ```
pub fn capture_peer_certificate(connection: &dyn Any, data: &mut Extensions) {
    let Some(stream) = connection.downcast_ref::<TlsStream<TcpStream>>() else {
        return;
    };
    let (_, session) = stream.get_ref();
    if let Some(der) = session.peer_certificates().and_then(<[_]>::first) {
        data.insert(PeerCertificate::new(der.as_ref()));
    }
}

/// The client certificate of the connection `req` arrived on, stored by
/// [`capture_peer_certificate`]; `None` without TLS, without the hook, or when the client sent
/// no certificate. From a middleware's `ServiceRequest`, pass `req.request()`.
///
/// ```
/// use actix_pop::tls::peer_certificate;
/// let req = actix_web::test::TestRequest::default().to_http_request();
/// assert!(peer_certificate(&req).is_none());
/// ```
#[must_use]
pub fn peer_certificate(req: &HttpRequest) -> Option<&PeerCertificate> {
    req.conn_data::<PeerCertificate>()
}

/// Install [`capture_peer_certificate`] as `server`'s `on_connect` hook (replacing any other)
/// and bind `addrs` with rustls and `tls` (`server` is an actix-web `HttpServer`). actix-web's own connection settings apply; bound
/// them with [`ServerExt::limits`].
///
/// # Errors
/// When binding fails.
pub fn bind_tls<T: ServerExt>(
    server: T,
    addrs: impl ToSocketAddrs,
    tls: &TlsConfig,
) -> io::Result<T> {
    ServerExt::bind_tls(server, addrs, tls)
}

/// [`bind_tls`] on a listener the caller already bound (e.g. port 0 in tests).
///
/// # Errors
/// When the listener cannot be used.
pub fn listen_tls<T: ServerExt>(
    server: T,
    listener: TcpListener,
    tls: &TlsConfig,
) -> io::Result<T> {
    ServerExt::listen_tls(server, listener, tls)
}
