//! A test PKI (rcgen, aws-lc-rs) and a TLS client that controls its connection (tokio-rustls +
//! hyper): one TCP connection per `Connection`, so tests can send several requests on it.
//!
//! Shared by the axum-pop and actix-pop TLS tests (actix-pop includes this file by path).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, SupportedProtocolVersion};
use tower_pop::tls::{ClientAuth, PemSource, TlsConfig};

/// Every network step of a test is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

pub type BoxError = Box<dyn Error + Send + Sync>;

pub use tower_pop_test_support::{Identity, pki};

fn inline(pem: &str) -> PemSource {
    PemSource::Inline(pem.as_bytes().to_vec())
}

/// The server's TLS configuration with the given client authentication.
pub fn server_tls(client_auth: ClientAuth) -> TlsConfig {
    let pki = pki();
    TlsConfig::builder()
        .cert_chain(inline(&pki.server.cert_pem))
        .private_key(inline(&pki.server.key_pem))
        .client_auth(client_auth)
        .build()
        .unwrap()
}

/// Client CA of the trusted test CA, for `ClientAuth::Optional`/`Required`.
pub fn trusted_ca() -> PemSource {
    inline(&pki().ca_pem)
}

/// How a test client connects.
pub struct ClientOptions<'a> {
    pub identity: Option<&'a Identity>,
    pub alpn: &'a [&'a [u8]],
    pub versions: &'a [&'static SupportedProtocolVersion],
}

impl<'a> ClientOptions<'a> {
    pub fn new(identity: Option<&'a Identity>) -> Self {
        Self {
            identity,
            alpn: &[b"http/1.1"],
            versions: rustls::ALL_VERSIONS,
        }
    }
}

fn client_config(options: &ClientOptions<'_>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki().ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(options.versions)
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match options.identity {
        Some(identity) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = options.alpn.iter().map(|p| p.to_vec()).collect();
    config
}

enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// One TLS connection to the server, HTTP/1.1 or HTTP/2 as negotiated by ALPN.
pub struct Connection {
    sender: Sender,
    /// The client's side of the TCP connection: the server sees this port.
    pub local_port: u16,
    /// The ALPN protocol the server chose.
    pub alpn: Option<Vec<u8>>,
}

impl Connection {
    /// Connect and handshake. With TLS 1.3 a server that refuses the client certificate only
    /// says so after the client finished, so a refusal may also surface at the first request.
    pub async fn open(addr: SocketAddr, options: &ClientOptions<'_>) -> Result<Self, BoxError> {
        tokio::time::timeout(STEP, Self::open_inner(addr, options)).await?
    }

    async fn open_inner(addr: SocketAddr, options: &ClientOptions<'_>) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        let local_port = tcp.local_addr()?.port();
        let connector = TlsConnector::from(Arc::new(client_config(options)));
        let tls = connector
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(tls);
        let sender = if alpn.as_deref() == Some(b"h2") {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            Sender::Http2(sender)
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(connection);
            Sender::Http1(sender)
        };
        Ok(Self {
            sender,
            local_port,
            alpn,
        })
    }

    /// `GET path` on this connection; the response body as text.
    pub async fn get(&mut self, path: &str) -> Result<(http::StatusCode, String), BoxError> {
        tokio::time::timeout(STEP, self.get_inner(path)).await?
    }

    async fn get_inner(&mut self, path: &str) -> Result<(http::StatusCode, String), BoxError> {
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await?;
                let request = http::Request::get(path)
                    .header(http::header::HOST, "localhost")
                    .body(Empty::new())?;
                sender.send_request(request).await?
            }
            Sender::Http2(sender) => {
                sender.ready().await?;
                let request =
                    http::Request::get(format!("https://localhost{path}")).body(Empty::new())?;
                sender.send_request(request).await?
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8(body.to_vec())?))
    }
}

/// Open a connection and make one request: `Err` when the handshake or the request failed.
pub async fn get_once(
    addr: SocketAddr,
    options: &ClientOptions<'_>,
    path: &str,
) -> Result<String, BoxError> {
    let mut connection = Connection::open(addr, options).await?;
    let (status, body) = connection.get(path).await?;
    if status != http::StatusCode::OK {
        return Err(format!("status {status}").into());
    }
    Ok(body)
}

/// Every message in an error's source chain, for asserting why a connection failed.
pub fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// The server refused the TLS session with `alert` (e.g. `UnknownCA`, `CertificateRequired`):
/// not some other failure such as a refused TCP connection or a timeout.
pub fn assert_tls_refused(result: Result<String, BoxError>, alert: &str) {
    let err = result.expect_err("the server must refuse this client");
    let text = error_chain(&*err);
    assert!(
        text.contains(&format!("received fatal alert: {alert}")),
        "expected TLS alert {alert}, got: {text}"
    );
}
