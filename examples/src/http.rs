//! HTTP for the demo and the tests, over loopback only: [`send`] goes through a real client
//! (reqwest, rustls), and [`send_raw`] writes exact bytes no client would send (duplicate or
//! garbage header lines). A connection that fails or stalls for 10 s panics: a test can never
//! mistake a dead server for a refusal.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A reply.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// Read a reqwest response whole.
    ///
    /// # Errors
    /// When the body cannot be read.
    pub async fn read(response: reqwest::Response) -> Result<Self, reqwest::Error> {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.text().await?;
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    /// The first value of header `name`.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` if it is not JSON).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// The shared client: no proxy, 10 s timeout, connections kept alive.
///
/// # Panics
/// If the client cannot be built.
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client")
    })
}

/// Send `method path` with `headers` (repeats allowed) to `http://addr`.
///
/// # Panics
/// If the request cannot be sent or the reply read.
pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    send_with_body(addr, method, path, headers, "").await
}

/// Like [`send`], with a body.
///
/// # Panics
/// If the request cannot be sent or the reply read.
pub async fn send_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
    let mut request = client().request(method, format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("request to {addr}{path} failed: {e}"));
    Reply::read(response)
        .await
        .unwrap_or_else(|e| panic!("reading the reply from {addr}{path} failed: {e}"))
}

/// Send raw bytes and read one reply: until the connection closes, or the head and a
/// `Content-Length` body are in. A server that resets the connection or answers nothing
/// parseable gives `status` 0 (call [`send`] afterwards to show it is still alive); one that
/// cannot be connected to, or that neither answers nor closes within 10 s, panics.
///
/// # Panics
/// If the connection fails or the server stalls.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    let mut buf = Vec::new();
    let exchange = async {
        // The server may refuse before reading everything: keep what it answered.
        if stream.write_all(bytes).await.is_err() {
            let _ = stream.read_to_end(&mut buf).await;
            return;
        }
        let mut chunk = [0u8; 8192];
        while !reply_complete(&buf) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .is_err()
    {
        panic!("{addr} neither answered nor closed the connection within 10 s");
    }
    parse(&String::from_utf8_lossy(&buf))
}

/// Whether `buf` holds a whole reply head and its `Content-Length` body.
fn reply_complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

fn parse(text: &str) -> Reply {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A `reqwest_middleware` middleware that counts the requests reaching the wire: below a DPoP
/// middleware, a nonce retry counts twice.
#[derive(Debug, Clone, Default)]
pub struct WireCounter(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl WireCounter {
    /// The requests sent so far.
    #[must_use]
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for WireCounter {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        next.run(req, extensions).await
    }
}
