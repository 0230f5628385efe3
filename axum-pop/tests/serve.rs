//! `axum_pop::serve::Server`: slow and many clients are bounded by the limits, and an honest
//! client is served meanwhile.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum_pop::serve::{Server, ServerLimits};

use crate::support::tls::{ClientOptions, get_once, server_tls};
use tower_pop_test_support::slow::{honest_get, silent, slow_header};

fn limits() -> ServerLimits {
    let mut limits = ServerLimits::default();
    limits.header_read_timeout = Duration::from_secs(1);
    limits.idle_timeout = Duration::from_secs(2);
    limits.tls_handshake_timeout = Duration::from_secs(1);
    limits
}

async fn start(server: impl FnOnce(tokio::net::TcpListener, Router) -> Server) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/health", get(|| async { "ok" }));
    tokio::spawn(server(listener, app).run());
    addr
}

/// Twenty clients sending their header a byte every 200 ms are each closed once the header read
/// timeout (1 s) runs out, not before; an honest client gets its 200 meanwhile, at once.
#[tokio::test]
async fn slow_headers_are_cut_and_honest_clients_are_served() {
    let addr = start(|listener, app| Server::new(listener, app).limits(limits())).await;
    let slow: Vec<_> = (0..20)
        .map(|_| tokio::spawn(slow_header(addr, Duration::from_millis(200))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let (status, took) = honest_get(addr, "/health").await;
        assert_eq!(status, 200);
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
    for client in slow {
        let open = client.await.unwrap().expect("closed by the server");
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(4)).contains(&open),
            "{open:?}"
        );
    }
}

/// A keep-alive connection waiting for its next request is closed by the same timeout.
#[tokio::test]
async fn idle_connections_are_closed() {
    let addr = start(|listener, app| Server::new(listener, app).limits(limits())).await;
    let open = silent(addr).await.expect("closed by the server");
    assert!(open < Duration::from_secs(4), "{open:?}");
}

/// At the connection cap, a new client waits in the backlog until a connection closes, then is
/// served.
#[tokio::test]
async fn connections_over_the_cap_wait_for_a_slot() {
    let mut capped = limits();
    capped.max_connections = 2;
    let addr = start(move |listener, app| Server::new(listener, app).limits(capped)).await;
    // Timed from before the holders connect: a slot frees when one of them has been silent
    // for the 1 s header timeout, however late the honest client starts.
    let started = std::time::Instant::now();
    let holders: Vec<_> = (0..2).map(|_| tokio::spawn(silent(addr))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = honest_get(addr, "/health").await;
    assert_eq!(status, 200);
    let took = started.elapsed();
    assert!(
        took > Duration::from_millis(900),
        "served before a slot was free: {took:?}"
    );
    for holder in holders {
        holder.await.unwrap().expect("closed by the server");
    }
}

/// A client that opens a TLS connection and never sends its hello is dropped after the
/// handshake timeout; a TLS client is served meanwhile.
#[tokio::test]
async fn stalled_tls_handshakes_are_cut() {
    let tls = server_tls(axum_pop::tls::ClientAuth::None);
    let addr =
        start(move |listener, app| Server::new(listener, app).tls(tls).limits(limits())).await;
    let stalled = tokio::spawn(silent(addr));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = get_once(addr, &ClientOptions::new(None), "/health").await;
    assert_eq!(answer.unwrap(), "ok");
    let open = stalled.await.unwrap().expect("closed by the server");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&open),
        "{open:?}"
    );
}

/// An HTTP/2 connection (h2c) that carries nothing after its request is closed by the idle
/// timeout (2 s): HTTP/2 has no header timeout between requests.
#[tokio::test]
async fn idle_http2_connections_are_closed() {
    use http_body_util::Empty;
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let addr = start(|listener, app| Server::new(listener, app).limits(limits())).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let started = std::time::Instant::now();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{addr}/health"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("closed by the server within the idle timeout")
        .unwrap()
        .ok();
    let open = started.elapsed();
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(6)).contains(&open),
        "{open:?}"
    );
}
