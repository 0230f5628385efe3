//! Streams that end with their token (feature `lifetime`): [`tower_pop::lifetime`] (when the
//! authorization ends, [`Lifetime::ended`](tower_pop::lifetime::Lifetime::ended), and the stream adapter for server-sent events) and the
//! WebSocket close reason for `actix-ws`, 1008 with a fixed reason. The same helpers as
//! `axum_pop::lifetime`.

pub use tower_pop::lifetime::*;

/// The close reason for a WebSocket (`actix_ws::Session::close`) whose token expired: code 1008
/// (policy violation, RFC 6455 §7.4.1), reason [`EXPIRED_REASON`].
#[must_use]
pub fn close_reason() -> actix_ws::CloseReason {
    close_reason_for(End::Expired)
}

/// The close reason for a WebSocket whose authorization ended for `end`: code 1008, reason
/// [`End::reason`] (fixed text, no secret).
#[must_use]
pub fn close_reason_for(end: End) -> actix_ws::CloseReason {
    actix_ws::CloseReason {
        code: actix_ws::CloseCode::Policy,
        description: Some(end.reason().to_owned()),
    }
}
