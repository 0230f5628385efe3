//! `pop_gateway`'s WebSocket relay (issue #26): the client's upgrade is verified like any
//! request, then the gateway opens its own WebSocket to the upstream (with the identity fields
//! and without the proof) and relays messages both ways, until either side closes, the
//! connection idles past a bound, or the token expires: then the client gets close code 1008
//! and the upstream a normal close. An `https://` upstream gets `wss://`, verified like the
//! gateway's HTTP client verifies it. Both sockets keep [`crate::websocket`]'s bounds: a
//! client's message over them closes its socket with 1009.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum_pop::lifetime::close_message_for;
use http::HeaderMap;
use rustls_pki_types::ServerName;
use tokio_tungstenite::tungstenite::Message as UpMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as UpCloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The connection under an upstream WebSocket: TCP, or TLS over TCP for `wss://`.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A WebSocket to the upstream.
pub type Upstream = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// Fields of the client's handshake that belong to its own connection: the gateway's
/// handshake with the upstream makes its own.
const HANDSHAKE_FIELDS: [&str; 5] = [
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-accept",
    "host",
];

/// Whether `headers` ask for a WebSocket (RFC 6455 §4.1: `Upgrade: websocket`).
#[must_use]
pub fn is_upgrade(method: &http::Method, headers: &HeaderMap) -> bool {
    method == http::Method::GET
        && headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Open the upstream WebSocket at `url` (`ws://...`, or `wss://...` verified with `tls`) with
/// `headers` (the upstream fields the gateway computed: identity, forwarding), within
/// `timeout` (connect, TLS and handshake together).
///
/// # Errors
/// When the upstream cannot be reached or refuses the handshake (its status, if it answered).
pub async fn connect(
    url: &str,
    headers: &HeaderMap,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Upstream, Option<u16>> {
    let mut request = url.into_client_request().map_err(|_| None)?;
    for (name, value) in headers {
        if !HANDSHAKE_FIELDS.contains(&name.as_str()) {
            request.headers_mut().append(name, value.clone());
        }
    }
    let secure = request.uri().scheme_str() == Some("wss");
    let host = request
        .uri()
        .host()
        .ok_or(None)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if secure { 443 } else { 80 });
    let handshake = async move {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|_| None)?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if secure {
            // No TLS configuration for a wss:// URL would mean a plain handshake: refuse.
            let config = Arc::clone(tls.ok_or(None)?);
            let name = ServerName::try_from(host).map_err(|_| None)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|_| None)?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        match tokio_tungstenite::client_async_with_config(
            request,
            stream,
            Some(crate::websocket::client_config()),
        )
        .await
        {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(Some(response.status().as_u16()))
            }
            Err(_) => Err(None),
        }
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .unwrap_or(Err(None))
}

fn to_upstream(message: Message) -> Option<UpMessage> {
    Some(match message {
        Message::Text(text) => UpMessage::text(text.as_str()),
        Message::Binary(bytes) => UpMessage::Binary(bytes),
        Message::Ping(bytes) => UpMessage::Ping(bytes),
        Message::Pong(bytes) => UpMessage::Pong(bytes),
        Message::Close(_) => return None,
    })
}

fn to_client(message: UpMessage) -> Option<Message> {
    Some(match message {
        UpMessage::Text(text) => Message::Text(Utf8Bytes::from(text.as_str())),
        UpMessage::Binary(bytes) => Message::Binary(bytes),
        UpMessage::Ping(bytes) => Message::Ping(bytes),
        UpMessage::Pong(bytes) => Message::Pong(bytes),
        UpMessage::Close(_) | UpMessage::Frame(_) => return None,
    })
}

/// Relay `client` and `upstream` until one closes, nothing moves for `idle`, or the
/// authorization ends (`exp`, or a revocation a recheck finds).
pub async fn relay(
    mut client: WebSocket,
    mut upstream: Upstream,
    authorization: tower_pop::lifetime::Lifetime,
    idle: Duration,
) {
    use futures_sink_like::{next, send};
    let ended = authorization.ended();
    tokio::pin!(ended);
    let closing = loop {
        let quiet = tokio::time::sleep(idle);
        tokio::select! {
            end = &mut ended => break Some(close_message_for(end)),
            () = quiet => break Some(Message::Close(Some(CloseFrame {
                code: 1001,
                reason: Utf8Bytes::from_static("idle"),
            }))),
            message = client.recv() => match message {
                Some(Ok(message)) => match to_upstream(message) {
                    Some(message) => if send(&mut upstream, message).await.is_err() { break None },
                    None => break None,
                },
                Some(Err(error)) => break crate::websocket::close_message_after(error),
                None => break None,
            },
            message = next(&mut upstream) => match message.and_then(to_client) {
                Some(message) => if client.send(message).await.is_err() { break None },
                None => break None,
            },
        }
    };
    let _ = client.send(closing.unwrap_or(Message::Close(None))).await;
    let close = UpMessage::Close(Some(UpCloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    let _ = send(&mut upstream, close).await;
}

/// `next` and `send` on the upstream socket without the futures crate.
mod futures_sink_like {
    use std::future::poll_fn;
    use std::pin::Pin;

    use futures_core::Stream as _;
    use futures_sink::Sink as _;
    use tokio_tungstenite::tungstenite::{Error, Message};

    use super::Upstream;

    pub(super) async fn next(socket: &mut Upstream) -> Option<Message> {
        poll_fn(|cx| Pin::new(&mut *socket).poll_next(cx))
            .await
            .and_then(Result::ok)
    }

    pub(super) async fn send(socket: &mut Upstream, message: Message) -> Result<(), Error> {
        poll_fn(|cx| Pin::new(&mut *socket).poll_ready(cx)).await?;
        Pin::new(&mut *socket).start_send(message)?;
        poll_fn(|cx| Pin::new(&mut *socket).poll_flush(cx)).await
    }
}
