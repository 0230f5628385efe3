//! Streams that end with their token (feature `lifetime`): [`tower_pop::lifetime`] (the timer and
//! the stream adapter for server-sent events) and the WebSocket close message, 1008 with a fixed
//! reason. The same helpers as `actix_pop::lifetime`.
//!
//! ```no_run
//! use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
//! use axum::response::Response;
//! use axum_pop::{PopAuth, lifetime};
//!
//! async fn ws(auth: PopAuth, upgrade: WebSocketUpgrade) -> Response {
//!     let expires_at = auth.expires_at;
//!     upgrade.on_upgrade(move |mut socket: WebSocket| async move {
//!         let expiry = lifetime::expiry(expires_at);
//!         tokio::pin!(expiry);
//!         loop {
//!             tokio::select! {
//!                 () = &mut expiry => {
//!                     let _ = socket.send(lifetime::close_message()).await;
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
    Message::Close(Some(CloseFrame {
        code: POLICY_VIOLATION,
        reason: Utf8Bytes::from_static(EXPIRED_REASON),
    }))
}
