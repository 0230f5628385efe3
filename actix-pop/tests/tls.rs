//! `actix_pop::tls`: the client certificate of each connection reaches every request, through
//! the handler accessor and from a middleware's `ServiceRequest`.

use std::net::SocketAddr;

use actix_pop::tls::{ClientAuth, TlsConfig, listen_tls, peer_certificate};
use actix_web::dev::{ServerHandle, Service as _};
use actix_web::{App, HttpMessage as _, HttpRequest, HttpServer, web};
use tokio_rustls::rustls::version::{TLS12, TLS13};

use crate::support::tls::{
    ClientOptions, Connection, STEP, assert_tls_refused, get_once, pki, server_tls, trusted_ca,
};

fn x5t(cert: Option<&tower_pop::PeerCertificate>) -> String {
    cert.map_or_else(
        || "none".to_owned(),
        |cert| tower_pop::thumbprint::x5t_s256(cert.der()),
    )
}

/// What a middleware saw, through `peer_certificate(req.request())`.
#[derive(Clone)]
struct SeenByMiddleware(String);

/// `<x5t#S256 or none> <client port> <HTTP version> <what the middleware saw>`
async fn whoami(req: HttpRequest) -> String {
    let seen = req
        .extensions()
        .get::<SeenByMiddleware>()
        .map_or_else(|| "unset".to_owned(), |s| s.0.clone());
    format!(
        "{} {} {:?} {seen}",
        x5t(peer_certificate(&req)),
        req.peer_addr().unwrap().port(),
        req.version(),
    )
}

struct Server {
    addr: SocketAddr,
    handle: ServerHandle,
    task: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn start(tls: TlsConfig) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = HttpServer::new(|| {
            App::new()
                .wrap_fn(|req, service| {
                    let seen = x5t(peer_certificate(req.request()));
                    req.extensions_mut().insert(SeenByMiddleware(seen));
                    service.call(req)
                })
                .route("/whoami", web::get().to(whoami))
        })
        .workers(1)
        .shutdown_timeout(5)
        .disable_signals();
        let server = listen_tls(server, listener, &tls).unwrap().run();
        let handle = server.handle();
        let task = actix_web::rt::spawn(server);
        Self { addr, handle, task }
    }

    /// Stop gracefully, and check the server returned in time and without error.
    async fn stop(self) {
        tokio::time::timeout(STEP, self.handle.stop(true))
            .await
            .unwrap();
        tokio::time::timeout(STEP, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// The handler's and the middleware's view must agree; returns the thumbprint.
fn x5t_of(body: &str) -> &str {
    let fields: Vec<&str> = body.split(' ').collect();
    assert_eq!(fields.len(), 4, "{body}");
    assert_eq!(
        fields[0], fields[3],
        "handler and middleware disagree: {body}"
    );
    fields[0]
}

#[actix_web::test]
async fn optional_ca_sees_each_clients_certificate_mtls_01() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() }));
    for client in [&pki.client_a, &pki.client_b] {
        let body = get_once(server.addr, &ClientOptions::new(Some(client)), "/whoami")
            .await
            .unwrap();
        assert_eq!(x5t_of(&body), client.x5t());
    }
    assert_ne!(pki.client_a.x5t(), pki.client_b.x5t());
    server.stop().await;
}

#[actix_web::test]
async fn optional_ca_lets_clients_without_certificate_in() {
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() }));
    let body = get_once(server.addr, &ClientOptions::new(None), "/whoami")
        .await
        .unwrap();
    assert_eq!(x5t_of(&body), "none");
    server.stop().await;
}

#[actix_web::test]
async fn required_ca_refuses_the_handshake_without_certificate() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Required { ca: trusted_ca() }));
    assert_tls_refused(
        get_once(server.addr, &ClientOptions::new(None), "/whoami").await,
        "CertificateRequired",
    );
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

#[actix_web::test]
async fn ca_modes_refuse_a_certificate_from_another_ca() {
    let pki = pki();
    for client_auth in [
        ClientAuth::Optional { ca: trusted_ca() },
        ClientAuth::Required { ca: trusted_ca() },
    ] {
        let server = Server::start(server_tls(client_auth));
        for client in [&pki.stranger, &pki.self_signed] {
            assert_tls_refused(
                get_once(server.addr, &ClientOptions::new(Some(client)), "/whoami").await,
                "UnknownCA",
            );
        }
        server.stop().await;
    }
}

#[actix_web::test]
async fn insecure_any_accepts_other_ca_and_self_signed_over_tls13_and_tls12() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::InsecureAcceptAnyCertificate));
    for versions in [&[&TLS13][..], &[&TLS12][..]] {
        for client in [&pki.stranger, &pki.self_signed] {
            let options = ClientOptions {
                versions,
                ..ClientOptions::new(Some(client))
            };
            let body = get_once(server.addr, &options, "/whoami").await.unwrap();
            assert_eq!(x5t_of(&body), client.x5t());
        }
    }
    server.stop().await;
}

#[actix_web::test]
async fn every_request_on_one_keep_alive_connection_sees_the_certificate() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() }));
    let mut connection = Connection::open(server.addr, &ClientOptions::new(Some(&pki.client_b)))
        .await
        .unwrap();
    assert_eq!(connection.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let x5t = pki.client_b.x5t();
    let expected = format!("{x5t} {} HTTP/1.1 {x5t}", connection.local_port);
    for _ in 0..3 {
        let (status, body) = connection.get("/whoami").await.unwrap();
        assert_eq!(status, http::StatusCode::OK);
        // Same client port: the same TCP connection served every request.
        assert_eq!(body, expected);
    }
    // actix waits for open connections (an idle h2 one included) before it stops.
    drop(connection);
    server.stop().await;
}

/// actix-web serves HTTP/2 only with its `http2` feature (a default of actix-web, off in this
/// workspace's `default-features = false`): either way, the certificate reaches every request.
#[actix_web::test]
async fn h2_capable_client_sees_the_certificate_on_what_actix_negotiates() {
    let pki = pki();
    let server = Server::start(server_tls(ClientAuth::Optional { ca: trusted_ca() }));
    let options = ClientOptions {
        alpn: &[b"h2", b"http/1.1"],
        ..ClientOptions::new(Some(&pki.client_a))
    };
    let mut connection = Connection::open(server.addr, &options).await.unwrap();
    let version = match connection.alpn.as_deref() {
        Some(b"h2") => "HTTP/2.0",
        Some(b"http/1.1") => "HTTP/1.1",
        other => panic!("unexpected ALPN {other:?}"),
    };
    let x5t = pki.client_a.x5t();
    let expected = format!("{x5t} {} {version} {x5t}", connection.local_port);
    for _ in 0..3 {
        let (status, body) = connection.get("/whoami").await.unwrap();
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(body, expected);
    }
    // actix waits for open connections (an idle h2 one included) before it stops.
    drop(connection);
    server.stop().await;
}
