//! Streams that end with their token (feature `lifetime`): [`tower_pop::lifetime`] (when the
//! authorization ends, [`Lifetime::ended`](tower_pop::lifetime::Lifetime::ended), and the stream adapter for server-sent events) and the
//! WebSocket close message, 1008 with a fixed reason. The same helpers as `actix_pop::lifetime`.
//!
//! ```no_run
//! use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
//! use axum::response::Response;
//! use axum_pop::{PopAuth, lifetime};
//!
//! async fn ws(auth: PopAuth, upgrade: WebSocketUpgrade) -> Response {
//!     let authorization = auth.lifetime.clone();
//!     upgrade.on_upgrade(move |mut socket: WebSocket| async move {
//!         let ended = authorization.ended();
//!         tokio::pin!(ended);
//!         loop {
//!             tokio::select! {
//!                 end = &mut ended => {
//!                     let _ = socket.send(lifetime::close_message_for(end)).await;
//!                     break;
//!                 }
//!                 message = socket.recv() => match message {
//!                     Some(Ok(Message::Text(text))) => {
//!                         if socket.send(Message::Text(text)).await.is_err() { break }
//!                     }
//!                     Some(Ok(Message::Close(_)) | Err(_)) | None => break,
//!                     _ => {}
//!                 },
//!             }
//!         }
//!     })
//! }
//! ```

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
pub use tower_pop::lifetime::*;

/// The close message for a WebSocket whose token expired: code 1008 (policy violation, RFC 6455
/// §7.4.1), reason [`EXPIRED_REASON`].
#[must_use]
pub fn close_message() -> Message {
    close_message_for(End::Expired)
}

/// The close message for a WebSocket whose authorization ended for `end`: code 1008, reason
/// [`End::reason`] (fixed text, no secret).
#[must_use]
pub fn close_message_for(end: End) -> Message {
    Message::Close(Some(CloseFrame {
        code: POLICY_VIOLATION,
        reason: Utf8Bytes::from_static(end.reason()),
    }))
}
