//! Long-lived responses opened by one verified request (WebSocket, server-sent events, gRPC
//! server streams): they must end when the authorization does. A request is judged once, when
//! it opens the stream; [`Verified::expires_at`](crate::extension::Verified::expires_at) is when
//! its token expires, and [`until_expiry`] ends a stream then.
//!
//! A WebSocket (RFC 6455) is verified on its upgrade request: `htm` `GET`, `htu` the `http` or
//! `https` URL of that request. A `ws(s)` URL is not an HTTP target URI: the upgrade is an HTTP
//! request to the `http(s)` URL (RFC 6455 §3 maps `ws` to `http` and `wss` to `https`), and
//! RFC 9449 §4.2 defines `htu` as the HTTP target URI. The adapters close it with code 1008
//! (policy violation, RFC 6455 §7.4.1) and a reason without secrets, [`EXPIRED_REASON`].
//!
//! ```
//! use std::time::{SystemTime, UNIX_EPOCH};
//! use tower_pop::lifetime::until_expiry;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
//! // A stream of three items whose token expired already ends at once.
//! let items = futures_core_stream_of(vec![1, 2, 3]);
//! let ended: Vec<i32> = collect(until_expiry(items, now - 1)).await;
//! assert!(ended.is_empty());
//! # }
//! # fn futures_core_stream_of(v: Vec<i32>) -> tokio_stream::Iter<std::vec::IntoIter<i32>> { tokio_stream::iter(v) }
//! # async fn collect<S: futures_core::Stream<Item = i32>>(s: S) -> Vec<i32> {
//! #     use tokio_stream::StreamExt as _; let s = std::pin::pin!(s); s.collect().await }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_core::Stream;
use pin_project_lite::pin_project;

/// The close reason sent with code 1008 when a token expires: fixed text, no secret.
pub const EXPIRED_REASON: &str = "the access token expired";

/// WebSocket close code 1008, policy violation (RFC 6455 §7.4.1).
pub const POLICY_VIOLATION: u16 = 1008;

/// A timer that fires at `expires_at` (seconds since the Unix epoch, by the system clock), at
/// once if that has passed.
pub fn expiry(expires_at: u64) -> tokio::time::Sleep {
    let left = Duration::from_secs(expires_at).saturating_sub(since_epoch());
    tokio::time::sleep(left)
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

pin_project! {
    /// `stream`, ended at `expires_at` ([`until_expiry`]).
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct UntilExpiry<S> {
        #[pin]
        stream: S,
        #[pin]
        expiry: tokio::time::Sleep,
        expires_at: u64,
        ended: bool,
    }
}

/// `stream` until `expires_at` (seconds since the Unix epoch): then it ends, as a server-sent
/// event response body must when its token expires (the client sees the response end).
pub fn until_expiry<S: Stream>(stream: S, expires_at: u64) -> UntilExpiry<S> {
    UntilExpiry {
        stream,
        expiry: expiry(expires_at),
        expires_at,
        ended: false,
    }
}

impl<S: Stream> Stream for UntilExpiry<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        // The timer wakes the stream; the clock decides (a timer fires a little late, never
        // early enough to matter, and a stream already past its time must not yield once).
        let past = since_epoch() >= Duration::from_secs(*this.expires_at);
        if *this.ended || past || this.expiry.poll(cx).is_ready() {
            *this.ended = true;
            return Poll::Ready(None);
        }
        this.stream.poll_next(cx)
    }
}
