//! The bounds every example WebSocket keeps (`/ws` on both servers, the gateway's relay on both
//! sides), so that the axum and actix servers answer alike and one socket cannot make a server
//! hold more than a message's worth of memory.
//!
//! A message is at most [`MAX_MESSAGE`] bytes (fragments together), a frame at most
//! [`MAX_FRAME`]: actix-ws's defaults, which tungstenite's (64 MiB and 16 MiB) far exceed. A
//! larger one closes the socket with 1009 (message too big, RFC 6455 §7.4.1). The axum and
//! actix-ws halves mirror each other: `bounded_upgrade` / `bounded_messages`,
//! `close_message_after` / `close_reason_after`.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use tokio_tungstenite::tungstenite;

/// The largest message taken, 1 MiB (actix-ws's aggregation default).
pub const MAX_MESSAGE: usize = 1 << 20;

/// The largest frame taken, 64 KiB (actix-http's codec default).
pub const MAX_FRAME: usize = 64 << 10;

/// Bytes read at once: tungstenite allocates its 128 KiB default for every open socket.
const READ_BUFFER: usize = 8 << 10;

/// The close code for a message over [`MAX_MESSAGE`] or a frame over [`MAX_FRAME`].
pub const TOO_BIG: u16 = 1009;

/// The close reason sent with [`TOO_BIG`].
pub const TOO_BIG_REASON: &str = "message too big";

/// `upgrade` (axum) with the bounds above.
pub fn bounded_upgrade(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_FRAME)
}

/// The bounds above for a socket the gateway opens to its upstream.
#[must_use]
pub fn client_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_FRAME))
}

/// `messages` (actix-ws) with the bounds above, fragments reassembled into one message.
#[must_use]
pub fn bounded_messages(messages: actix_ws::MessageStream) -> actix_ws::AggregatedMessageStream {
    messages
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE)
}

/// The close message for an axum socket whose read failed with `error`: 1009 when a message
/// or frame was over the bounds; `None` (close without a code) for any other failure.
#[must_use]
pub fn close_message_after(error: axum::Error) -> Option<Message> {
    let too_big = error
        .into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
    too_big.then(|| {
        Message::Close(Some(CloseFrame {
            code: TOO_BIG,
            reason: Utf8Bytes::from_static(TOO_BIG_REASON),
        }))
    })
}

/// The close reason for an actix-ws socket whose read failed with `error`: 1009 when a message
/// or frame was over the bounds; `None` (close without a code) for any other failure.
#[must_use]
pub fn close_reason_after(error: &actix_ws::ProtocolError) -> Option<actix_ws::CloseReason> {
    let too_big = match error {
        actix_ws::ProtocolError::Overflow => true,
        // How actix-ws reports fragments that add up to more than its continuation bound.
        actix_ws::ProtocolError::Io(e) => e.to_string() == "Exceeded maximum continuation size",
        _ => false,
    };
    too_big.then(|| actix_ws::CloseReason {
        code: actix_ws::CloseCode::from(TOO_BIG),
        description: Some(TOO_BIG_REASON.to_owned()),
    })
}
