//! gRPC calls (tonic channels) through [`SignDpop`](super::SignDpop): [`BufferRequestsLayer`]
//! makes a unary call's body replayable, so the one retry after `use_dpop_nonce` can resend it.
//!
//! A tonic request body is neither `Clone` nor known to be complete. A unary call's body is one
//! message whose frames are ready at once: [`BufferRequests`] takes them if they all are (up to
//! a bound) and hands on a body that can be sent twice; a streaming call's body is passed on
//! untouched and never retried (draining it could deadlock a bidirectional call).
//!
//! The layer under it must turn the body back into the channel's type, and the client must
//! be built with the channel's origin so the proof's `htu` is the call's URL:
//!
//! ```ignore
//! let svc = tower::ServiceBuilder::new()
//!     .layer(BufferRequestsLayer::default())
//!     .layer(SignDpopLayer::new(signer))
//!     .map_request(|r: http::Request<Buffered<tonic::body::Body>>| r.map(tonic::body::Body::new))
//!     .service(channel);
//! let client = WhoAmIClient::with_origin(svc, "https://api.example.com".parse()?);
//! ```

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use super::layer::ReplayBody;
use crate::macros::inner_service_accessors;

/// The largest body buffered for a retry by default: far more than a unary call's message.
pub const DEFAULT_MAX_BUFFERED: usize = 64 * 1024;

/// A request body that [`SignDpop`](super::SignDpop) can resend when it was complete at once.
pub enum Buffered<B: Body> {
    /// The whole body, read at once: replayable.
    Complete(Option<Bytes>),
    /// A body that was not complete at once: what was read, then the rest; sent once.
    Streaming {
        /// The data read before the body paused.
        head: Option<Bytes>,
        /// A frame read after it that was not data (trailers) or an error, sent next as it was.
        held: Option<Result<Frame<Bytes>, <B as Body>::Error>>,
        /// The rest of the body.
        rest: B,
    },
}

impl<B: Body> std::fmt::Debug for Buffered<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Complete(bytes) => f
                .debug_tuple("Complete")
                .field(&bytes.as_ref().map(Bytes::len))
                .finish(),
            Self::Streaming { head, held, .. } => f
                .debug_struct("Streaming")
                .field("head", &head.as_ref().map(Bytes::len))
                .field("held", &held.is_some())
                .finish_non_exhaustive(),
        }
    }
}

impl<B: Body> ReplayBody for Buffered<B> {
    fn try_clone(&self) -> Option<Self> {
        match self {
            Self::Complete(bytes) => Some(Self::Complete(bytes.clone())),
            Self::Streaming { .. } => None,
        }
    }
}

impl<B> Body for Buffered<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.get_mut() {
            Self::Complete(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Streaming { head, held, rest } => {
                if let Some(bytes) = head.take() {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                if let Some(frame) = held.take() {
                    return Poll::Ready(Some(frame));
                }
                Pin::new(rest).poll_frame(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Complete(bytes) => bytes.is_none(),
            Self::Streaming { head, held, rest } => {
                head.is_none() && held.is_none() && rest.is_end_stream()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Complete(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Self::Streaming { head, rest, .. } => {
                let head = head.as_ref().map_or(0, |b| b.len() as u64);
                let rest = rest.size_hint();
                // The upper bound first: `set_lower` asserts it is not above the upper one.
                let mut hint = SizeHint::new();
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(head));
                }
                hint.set_lower(rest.lower().saturating_add(head));
                hint
            }
        }
    }
}

/// Read `body` as far as it is ready now, up to `max` bytes: the whole of it when it completes,
/// else what was read and the rest. Never waits: a body that is not ready is a stream.
fn take_if_complete<B>(mut body: B, max: usize) -> Buffered<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut read = BytesMut::new();
    let held = loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(None) => return Buffered::Complete(Some(read.freeze())),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if read.len() + data.len() <= max => read.extend_from_slice(&data),
                Ok(data) => {
                    read.extend_from_slice(&data);
                    break None;
                }
                // Trailers in a request: sent on as they came, the body unreplayable.
                Err(frame) => break Some(Ok(frame)),
            },
            // An error is the body's to report when it is sent, in its place.
            Poll::Ready(Some(Err(error))) => break Some(Err(error)),
            // A body that is not ready is a stream.
            Poll::Pending => break None,
        }
    };
    let head = (!read.is_empty()).then(|| read.freeze());
    Buffered::Streaming {
        head,
        held,
        rest: body,
    }
}

/// Wraps request bodies in [`Buffered`] (see the module docs).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct BufferRequestsLayer {
    max: usize,
}

impl Default for BufferRequestsLayer {
    fn default() -> Self {
        Self {
            max: DEFAULT_MAX_BUFFERED,
        }
    }
}

impl BufferRequestsLayer {
    /// Buffer bodies up to `bytes` (larger ones are sent once, never retried).
    pub fn max(bytes: usize) -> Self {
        Self { max: bytes }
    }
}

impl<S> Layer<S> for BufferRequestsLayer {
    type Service = BufferRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BufferRequests {
            inner,
            max: self.max,
        }
    }
}

/// The service made by [`BufferRequestsLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct BufferRequests<S> {
    inner: S,
    max: usize,
}

impl<S> BufferRequests<S> {
    inner_service_accessors!();
}

impl<S, B> Service<Request<B>> for BufferRequests<S>
where
    S: Service<Request<Buffered<B>>>,
    B: Body<Data = Bytes> + Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let max = self.max;
        self.inner
            .call(request.map(|body| take_if_complete(body, max)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full};

    #[tokio::test]
    async fn a_complete_body_is_replayable_and_a_pending_one_passes_once() {
        let complete = take_if_complete(Full::new(Bytes::from_static(b"\0\0\0\0\0")), 1024);
        let copy = complete.try_clone().expect("replayable");
        assert_eq!(copy.collect().await.unwrap().to_bytes(), &b"\0\0\0\0\0"[..]);
        assert_eq!(
            complete.collect().await.unwrap().to_bytes(),
            &b"\0\0\0\0\0"[..]
        );
        // A body whose second frame is not ready yet: sent whole, once.
        let (mut tx, body) =
            http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(4);
        tx.send_data(Bytes::from_static(b"ab")).await.unwrap();
        let pending = take_if_complete(body, 1024);
        assert!(pending.try_clone().is_none());
        tx.send_data(Bytes::from_static(b"cd")).await.unwrap();
        drop(tx);
        assert_eq!(pending.collect().await.unwrap().to_bytes(), &b"abcd"[..]);
        // Over the bound: sent once, and its size hint stays coherent.
        let large = take_if_complete(Full::new(Bytes::from(vec![7; 100])), 10);
        assert!(large.try_clone().is_none());
        assert_eq!(large.size_hint().exact(), Some(100));
        assert_eq!(large.collect().await.unwrap().to_bytes().len(), 100);
        // Trailers and errors are passed on in their place, not dropped.
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, &'static str>::new(4);
        tx.send_data(Bytes::from_static(b"ab")).await.unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-t", http::HeaderValue::from_static("1"));
        tx.send_trailers(trailers).await.unwrap();
        drop(tx);
        let with_trailers = take_if_complete(body, 1024);
        assert!(with_trailers.try_clone().is_none());
        let collected = with_trailers.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-t"], "1");
        assert_eq!(collected.to_bytes(), &b"ab"[..]);
        let (tx, body) = http_body_util::channel::Channel::<Bytes, &'static str>::new(4);
        tx.abort("broken");
        let failing = take_if_complete(body, 1024);
        assert!(
            failing.collect().await.is_err(),
            "the error reaches the sender"
        );
    }
}
