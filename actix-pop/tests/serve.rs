//! `actix_pop::serve::ServerExt::limits`: slow clients are bounded by the limits, and an honest
//! client is served meanwhile.

use std::time::Duration;

use actix_pop::serve::{ServerExt as _, ServerLimits};
use actix_web::{App, HttpServer, web};

use tower_pop_test_support::slow::{honest_get, slow_header};

/// Twenty clients sending their header a byte every 200 ms are each closed once the header read
/// timeout (1 s) runs out; an honest client gets its 200 meanwhile, at once.
#[actix_web::test]
async fn slow_headers_are_cut_and_honest_clients_are_served() {
    let mut limits = ServerLimits::default();
    limits.header_read_timeout = Duration::from_secs(1);
    limits.idle_timeout = Duration::from_secs(2);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(|| App::new().route("/health", web::get().to(|| async { "ok" })))
        .limits(&limits, 1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let slow: Vec<_> = (0..20)
        .map(|_| actix_web::rt::spawn(slow_header(addr, Duration::from_millis(200))))
        .collect();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
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
    handle.stop(true).await;
}

/// A client that opens a TLS connection and never sends its hello is dropped after the
/// handshake timeout (1 s).
#[actix_web::test]
async fn stalled_tls_handshakes_are_cut() {
    let mut limits = ServerLimits::default();
    limits.tls_handshake_timeout = Duration::from_secs(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = crate::support::tls::server_tls(actix_pop::tls::ClientAuth::None);
    let server = HttpServer::new(|| App::new().route("/health", web::get().to(|| async { "ok" })))
        .limits(&limits, 1)
        .disable_signals()
        .listen_tls(listener, &tls)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let open = tower_pop_test_support::slow::silent(addr)
        .await
        .expect("closed by the server");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&open),
        "{open:?}"
    );
    handle.stop(true).await;
}
