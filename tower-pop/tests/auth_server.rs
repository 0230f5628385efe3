//! A scripted authorization server on loopback HTTPS (hyper + tokio-rustls, certificates from
//! an rcgen CA): each path answers what the test set, and every request is recorded, so tests
//! count fetches and read what the server received.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Every network step of a test is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

/// The test CA and a server certificate for `localhost` and `127.0.0.1`.
pub struct Pki {
    pub ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// One PKI for the whole binary (key generation is the slow part).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "tower-pop test AS CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "test authorization server");
        let cert = params.signed_by(&key, &ca).unwrap();
        Pki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    })
}

fn server_tls() -> Arc<rustls::ServerConfig> {
    let pki = pki();
    let chain = vec![CertificateDer::from_pem_slice(pki.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// What one path answers.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
    chunked: bool,
}

impl Reply {
    pub fn json(value: &Value) -> Self {
        Self::status(200)
            .header("content-type", "application/json")
            .body(value.to_string())
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            chunked: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Answer only after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Send the body in 16 KiB chunks without `Content-Length`.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }
}

/// A request as the server received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Default)]
struct State {
    replies: Mutex<HashMap<String, Reply>>,
    seen: Mutex<HashMap<String, Vec<Seen>>>,
}

type Body = BoxBody<Bytes, Infallible>;

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().to_string();
    let headers = request.headers().clone();
    let body = request.into_body().collect().await.map_or_else(
        |_| String::new(),
        |b| String::from_utf8_lossy(&b.to_bytes()).into_owned(),
    );
    state
        .seen
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .push(Seen {
            method,
            headers,
            body,
        });
    let reply = state.replies.lock().unwrap().get(&path).cloned();
    let Some(reply) = reply else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")).boxed());
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let body = if reply.chunked {
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
        let bytes = reply.body.clone();
        tokio::spawn(async move {
            for chunk in bytes.chunks(16 * 1024) {
                if sender
                    .send_data(Bytes::copy_from_slice(chunk))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        body.boxed()
    } else {
        Full::new(Bytes::from(reply.body.clone())).boxed()
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in &reply.headers {
        response.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    Ok(response)
}

/// The running server; stopped when dropped.
pub struct AuthServer {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl AuthServer {
    /// HTTPS with the test CA's certificate.
    pub async fn https() -> Self {
        Self::start(true).await
    }

    /// Plain HTTP, for the loopback `insecure_*` options.
    pub async fn http() -> Self {
        Self::start(false).await
    }

    async fn start(tls: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let acceptor = TlsAcceptor::from(server_tls());
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(Arc::clone(&state), request)
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    if tls {
                        let Ok(Ok(stream)) = tokio::time::timeout(STEP, acceptor.accept(tcp)).await
                        else {
                            return;
                        };
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    } else {
                        let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                    }
                });
                // Reap finished connections so the set stays small.
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            tls,
            state,
            accept,
        }
    }

    /// `https://127.0.0.1:port` (or `http://`).
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The same server under another origin: `https://localhost:port`.
    pub fn other_origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://localhost:{}", self.addr.port())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// Answer `reply` on `path` from now on.
    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .replies
            .lock()
            .unwrap()
            .insert(path.to_owned(), reply);
    }

    /// Answer 404 on `path` from now on.
    pub fn unset(&self, path: &str) {
        self.state.replies.lock().unwrap().remove(path);
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .seen
            .lock()
            .unwrap()
            .get(path)
            .map_or(0, Vec::len)
    }

    /// The requests `path` received.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Stop listening and close every connection: the port refuses connections afterwards.
    pub async fn stop(&self) {
        self.accept.abort();
        let _ = tokio::time::timeout(STEP, async {
            while !self.accept.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
