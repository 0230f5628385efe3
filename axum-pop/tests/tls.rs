//! `axum_pop::tls::serve_tls`: the client certificate of each connection reaches every request.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use axum_pop::PeerCertificate;
use axum_pop::tls::{ClientAuth, TlsConfig, serve_tls_with_graceful_shutdown};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::version::{TLS12, TLS13};

use crate::support::tls::{
    ClientOptions, Connection, STEP, assert_tls_refused, get_once, pki, server_tls, trusted_ca,
};

/// `<x5t#S256 or none> <client port> <HTTP version>`
async fn whoami(
    certificate: Option<Extension<PeerCertificate>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    version: http::Version,
) -> String {
    let x5t = certificate.map_or_else(
        || "none".to_owned(),
        |Extension(cert)| tower_pop::thumbprint::x5t_s256(cert.der()),
    );
    format!("{x5t} {} {version:?}", peer.port())
}

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(tls: TlsConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new().route("/whoami", get(whoami));
        let task = tokio::spawn(serve_tls_with_graceful_shutdown(
            listener,
            tls,
            app,
            async move {
                stopped.await.ok();
            },
        ));
        Self { addr, stop, task }
    }

    /// Stop, and check the server returned in time and without error.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(STEP, self.task)
            .await
            .expect("graceful shutdown in time")
            .unwrap()
            .unwrap();
    }
}

fn x5t_of(body: &str) -> &str {
    body.split(' ').next().unwrap()
}

#[tokio::test]
async fn optional_ca_sees_each_clients_certificate_mtls_01() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() })).await;
    for client in [&pki.client_a, &pki.client_b] {
        let body = get_once(server.addr, &ClientOptions::new(Some(client)), "/whoami")
            .await
            .unwrap();
        assert_eq!(x5t_of(&body), client.x5t());
    }
    assert_ne!(pki.client_a.x5t(), pki.client_b.x5t());
    server.stop().await;
}

#[tokio::test]
async fn optional_ca_lets_clients_without_certificate_in() {
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() })).await;
    let body = get_once(server.addr, &ClientOptions::new(None), "/whoami")
        .await
        .unwrap();
    assert_eq!(x5t_of(&body), "none");
    server.stop().await;
}

#[tokio::test]
async fn required_ca_refuses_the_handshake_without_certificate() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Required { ca: trusted_ca() })).await;
    assert_tls_refused(
        get_once(server.addr, &ClientOptions::new(None), "/whoami").await,
        "CertificateRequired",
    );
    // A refused handshake costs only that connection.
    let body = get_once(
        server.addr,
        &ClientOptions::new(Some(&pki.client_a)),
        "/whoami",
    )
    .await
    .unwrap();
    assert_eq!(x5t_of(&body), pki.client_a.x5t());
    server.stop().await;
}

#[tokio::test]
async fn ca_modes_refuse_a_certificate_from_another_ca() {
    let pki = pki();
    for client_auth in [
        ClientAuth::Optional { ca: trusted_ca() },
        ClientAuth::Required { ca: trusted_ca() },
    ] {
        let server = Server::start(server_tls(client_auth)).await;
        for client in [&pki.stranger, &pki.self_signed] {
            assert_tls_refused(
                get_once(server.addr, &ClientOptions::new(Some(client)), "/whoami").await,
                "UnknownCA",
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn insecure_any_accepts_other_ca_and_self_signed_over_tls13_and_tls12() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::InsecureAcceptAnyCertificate)).await;
    for versions in [&[&TLS13][..], &[&TLS12][..]] {
        for client in [&pki.stranger, &pki.self_signed, &pki.client_a] {
            let options = ClientOptions {
                versions,
                ..ClientOptions::new(Some(client))
            };
            let body = get_once(server.addr, &options, "/whoami").await.unwrap();
            assert_eq!(x5t_of(&body), client.x5t());
        }
        let options = ClientOptions {
            versions,
            ..ClientOptions::new(None)
        };
        let body = get_once(server.addr, &options, "/whoami").await.unwrap();
        assert_eq!(x5t_of(&body), "none");
    }
    server.stop().await;
}

#[tokio::test]
async fn no_client_auth_never_sees_a_certificate() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::None)).await;
    let body = get_once(
        server.addr,
        &ClientOptions::new(Some(&pki.client_a)),
        "/whoami",
    )
    .await
    .unwrap();
    assert_eq!(x5t_of(&body), "none");
    server.stop().await;
}

#[tokio::test]
async fn every_request_on_one_keep_alive_connection_sees_the_certificate() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() })).await;
    let mut connection = Connection::open(server.addr, &ClientOptions::new(Some(&pki.client_b)))
        .await
        .unwrap();
    assert_eq!(connection.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let expected = format!("{} {} HTTP/1.1", pki.client_b.x5t(), connection.local_port);
    for _ in 0..3 {
        let (status, body) = connection.get("/whoami").await.unwrap();
        assert_eq!(status, http::StatusCode::OK);
        // Same client port: the same TCP connection served every request.
        assert_eq!(body, expected);
    }
    server.stop().await;
}

#[tokio::test]
async fn http2_requests_see_the_certificate() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() })).await;
    let options = ClientOptions {
        alpn: &[b"h2", b"http/1.1"],
        ..ClientOptions::new(Some(&pki.client_a))
    };
    let mut connection = Connection::open(server.addr, &options).await.unwrap();
    assert_eq!(connection.alpn.as_deref(), Some(&b"h2"[..]));
    let expected = format!("{} {} HTTP/2.0", pki.client_a.x5t(), connection.local_port);
    for _ in 0..3 {
        let (status, body) = connection.get("/whoami").await.unwrap();
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(body, expected);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_handshake_does_not_block_other_clients() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() })).await;
    // A TCP connection that never sends a ClientHello, and one that sends garbage.
    let _stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut garbage = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut garbage, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let body = get_once(
        server.addr,
        &ClientOptions::new(Some(&pki.client_a)),
        "/whoami",
    )
    .await
    .unwrap();
    assert_eq!(x5t_of(&body), pki.client_a.x5t());
    // The plain-HTTP client gets no HTTP answer: the server only speaks TLS.
    let mut reply = Vec::new();
    let read = tokio::time::timeout(
        STEP,
        tokio::io::AsyncReadExt::read_to_end(&mut garbage, &mut reply),
    )
    .await
    .unwrap();
    assert!(
        !String::from_utf8_lossy(&reply).contains("HTTP/1.1"),
        "{read:?}"
    );
    drop(_stalled);
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() })).await;
    let addr = server.addr;
    let options = ClientOptions::new(Some(&pki.client_a));
    get_once(addr, &options, "/whoami").await.unwrap();
    server.stop().await;
    assert!(get_once(addr, &options, "/whoami").await.is_err());
}
