//! The response body of the client layer: passed through, or read up to a bound and replayed.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::wire::MAX_ERROR_BODY;

pin_project! {
    /// The response body of [`SignDpop`](super::SignDpop): the inner service's body, or, for a
    /// 400 the layer read to look for `use_dpop_nonce`, what it read followed by the rest.
    pub struct ResponseBody<B: Body> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        Passed { #[pin] inner: B },
        Read {
            data: Option<Bytes>,
            error: Option<B::Error>,
            trailers: Option<HeaderMap>,
            rest: Option<Pin<Box<B>>>,
        },
    }
}

impl<B: Body> ResponseBody<B> {
    pub(super) fn passed(inner: B) -> Self {
        Self {
            kind: Kind::Passed { inner },
        }
    }

    /// Read up to [`MAX_ERROR_BODY`] bytes of `body`.
    pub(super) async fn buffer(body: B) -> Self
    where
        B: Body<Data = Bytes>,
    {
        let mut body = Box::pin(body);
        let mut data = BytesMut::new();
        let (mut error, mut trailers, mut done) = (None, None, false);
        while (data.len() as u64) <= MAX_ERROR_BODY {
            match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
                None => {
                    done = true;
                    break;
                }
                Some(Err(e)) => {
                    error = Some(e);
                    done = true;
                    break;
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(chunk) => data.extend_from_slice(&chunk),
                    Err(frame) => {
                        // Trailers end a body.
                        trailers = frame.into_trailers().ok();
                        done = true;
                        break;
                    }
                },
            }
        }
        Self {
            kind: Kind::Read {
                data: Some(data.freeze()),
                error,
                trailers,
                rest: (!done).then_some(body),
            },
        }
    }

    /// The whole body, if it was read to its end without error.
    pub(super) fn complete(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Read {
                data: Some(data),
                error: None,
                rest: None,
                ..
            } => Some(data),
            _ => None,
        }
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Passed { inner } => inner.poll_frame(cx),
            KindProj::Read {
                data,
                error,
                trailers,
                rest,
            } => {
                if let Some(chunk) = data.take().filter(|d| !d.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                if let Some(e) = error.take() {
                    return Poll::Ready(Some(Err(e)));
                }
                if let Some(t) = trailers.take() {
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
                match rest {
                    Some(rest) => rest.as_mut().poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passed { inner } => inner.is_end_stream(),
            Kind::Read {
                data,
                error,
                trailers,
                rest,
            } => {
                data.as_ref().is_none_or(Bytes::is_empty)
                    && error.is_none()
                    && trailers.is_none()
                    && rest.as_ref().is_none_or(|r| r.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passed { inner } => inner.size_hint(),
            Kind::Read { data, rest, .. } => {
                let read = data.as_ref().map_or(0, |d| d.len() as u64);
                let rest = rest
                    .as_ref()
                    .map_or_else(|| SizeHint::with_exact(0), |r| r.size_hint());
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + read);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + read);
                }
                hint
            }
        }
    }
}

impl<B: Body> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Passed { .. } => "passed",
            Kind::Read { .. } => "read",
        };
        f.debug_struct("ResponseBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
