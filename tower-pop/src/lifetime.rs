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
//! A token checked by introspection can also be revoked before `exp`: with
//! [`IntrospectionOptions::recheck_every`](crate::introspection::IntrospectionOptions::recheck_every),
//! a request's [`Lifetime`] asks the authorization server again at that interval, and
//! [`Lifetime::ended`] (or [`until_ended`] for a stream) ends when the token expires, is no
//! longer active, or cannot be confirmed (fail closed).
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

use std::fmt;
use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "introspection")]
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_core::Stream;
use pin_project_lite::pin_project;

/// The close reason sent with code 1008 when a token expires: fixed text, no secret.
pub const EXPIRED_REASON: &str = "the access token expired";

/// WebSocket close code 1008, policy violation (RFC 6455 §7.4.1).
pub const POLICY_VIOLATION: u16 = 1008;

/// Why a request's authorization ended ([`Lifetime::ended`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum End {
    /// The token's `exp` passed.
    Expired,
    /// Introspection answered that the token is no longer active (revoked).
    Revoked,
    /// Introspection could not be had: the token could not be confirmed, so it ends (fail
    /// closed).
    Unconfirmed,
}

impl End {
    /// The close reason for a WebSocket (code 1008): fixed text, no secret.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Expired => EXPIRED_REASON,
            Self::Revoked => REVOKED_REASON,
            Self::Unconfirmed => UNCONFIRMED_REASON,
        }
    }
}

/// The close reason sent with code 1008 when introspection says the token is no longer active.
pub const REVOKED_REASON: &str = "the access token is no longer active";

/// The close reason sent with code 1008 when the token could not be confirmed again.
pub const UNCONFIRMED_REASON: &str = "the access token could not be confirmed";

/// When one verified request's authorization ends: at its token's `exp`
/// ([`Verified::expires_at`](crate::extension::Verified::expires_at)) or, for a token checked
/// by introspection with a recheck interval, when an answer is no longer active. Cheap to
/// clone; `Debug` shows no token.
#[derive(Clone)]
pub struct Lifetime {
    expires_at: u64,
    #[cfg(feature = "introspection")]
    recheck: Option<Arc<Recheck>>,
}

#[cfg(feature = "introspection")]
struct Recheck {
    introspector: Arc<crate::token::introspection::Introspector>,
    token: String,
    every: Duration,
}

#[cfg(feature = "introspection")]
impl Recheck {
    /// Whether the token is still active; `None` when three attempts a second apart (or a
    /// quarter of the interval, if shorter) got no answer: busy call slots or an unreachable
    /// authorization server.
    async fn still_active(&self) -> Option<bool> {
        let pause = (self.every / 4).min(Duration::from_secs(1));
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
            }
            if let Ok(active) = self.introspector.still_active(&self.token).await {
                return Some(active);
            }
        }
        None
    }
}

impl fmt::Debug for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifetime")
            .field("expires_at", &self.expires_at)
            .field("recheck_every", &self.recheck_every())
            .finish()
    }
}

impl Lifetime {
    /// An authorization that ends at `expires_at` (seconds since the Unix epoch).
    #[must_use]
    pub fn until(expires_at: u64) -> Self {
        Self {
            expires_at,
            #[cfg(feature = "introspection")]
            recheck: None,
        }
    }

    /// `token`'s authorization, checked again by `introspector` at its recheck interval (none
    /// set: until `expires_at` only).
    #[cfg(feature = "introspection")]
    pub(crate) fn rechecked(
        expires_at: u64,
        introspector: &Arc<crate::token::introspection::Introspector>,
        token: &str,
    ) -> Self {
        let recheck = introspector.recheck_every().map(|every| {
            Arc::new(Recheck {
                introspector: Arc::clone(introspector),
                token: token.to_owned(),
                every,
            })
        });
        Self {
            expires_at,
            recheck,
        }
    }

    /// The token's `exp`: the latest this authorization lasts.
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// How often the token is asked about again, if it is.
    #[must_use]
    pub fn recheck_every(&self) -> Option<Duration> {
        #[cfg(feature = "introspection")]
        return self.recheck.as_ref().map(|r| r.every);
        #[cfg(not(feature = "introspection"))]
        None
    }

    /// Resolves when the authorization ends, and why: at `exp` by the system clock, or, with a
    /// recheck interval, at the first answer that is not active or cannot be had (after three
    /// attempts).
    pub async fn ended(&self) -> End {
        #[cfg(feature = "introspection")]
        if let Some(recheck) = &self.recheck {
            loop {
                let left = Duration::from_secs(self.expires_at).saturating_sub(since_epoch());
                if left <= recheck.every {
                    break;
                }
                tokio::time::sleep(recheck.every).await;
                match recheck.still_active().await {
                    Some(true) => {}
                    Some(false) => return End::Revoked,
                    None => return End::Unconfirmed,
                }
            }
        }
        // A timer set in the past fires on the timer's next turn; the clock decides now.
        if since_epoch() < Duration::from_secs(self.expires_at) {
            expiry(self.expires_at).await;
        }
        End::Expired
    }
}

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

pin_project! {
    /// `stream`, ended when its authorization does ([`until_ended`]).
    #[must_use = "streams do nothing unless polled"]
    pub struct UntilEnded<S> {
        #[pin]
        stream: S,
        end: Pin<Box<dyn Future<Output = End> + Send>>,
        ended: bool,
    }
}

impl<S: fmt::Debug> fmt::Debug for UntilEnded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilEnded")
            .field("stream", &self.stream)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// `stream` until `lifetime` ends ([`Lifetime::ended`]): at `exp`, or at a revocation that a
/// recheck finds; then it ends, as a server-sent event response body must.
pub fn until_ended<S: Stream>(stream: S, lifetime: Lifetime) -> UntilEnded<S> {
    UntilEnded {
        stream,
        end: Box::pin(async move { lifetime.ended().await }),
        ended: false,
    }
}

impl<S: Stream> Stream for UntilEnded<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        if *this.ended || this.end.as_mut().poll(cx).is_ready() {
            *this.ended = true;
            return Poll::Ready(None);
        }
        this.stream.poll_next(cx)
    }
}
