//! The reqwest middleware: [`DpopMiddleware`], for `reqwest_middleware::ClientWithMiddleware`,
//! and the redirects it follows itself (see [the module docs](super#redirects)).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, LOCATION, PROXY_AUTHORIZATION,
};
use http::{Extensions, HeaderMap, Method, StatusCode};
use reqwest::{Request, Response, ResponseBuilderExt, Url};
use reqwest_middleware::{Middleware, Next};

use super::wire::{self, DPOP, NonceAsk, Target};
use super::{ResponseBody, Shared, signing_builder};

/// Adds a fresh DPoP proof to every request of a `reqwest_middleware` client, retries once
/// when the server asks for a nonce, and follows redirects without carrying a proof or token
/// to another origin. See [the module docs](super).
///
/// Cheap to clone: clones share the signer and the nonce store.
#[derive(Clone, Debug)]
#[must_use]
pub struct DpopMiddleware {
    pub(super) shared: Shared,
    max_redirects: usize,
    /// Whether the warning about a client that follows redirects itself was given.
    warned: Arc<AtomicBool>,
}

/// How a redirect continues (RFC 9110 §15.4): with the same method and body (307, 308), or
/// as a `GET` without body (303; 301 and 302 after a `POST`, as browsers and reqwest do).
fn continuation(status: StatusCode, method: &Method) -> Option<(Method, bool)> {
    match status.as_u16() {
        307 | 308 => Some((method.clone(), true)),
        303 if *method != Method::HEAD => Some((Method::GET, false)),
        301 | 302 if *method == Method::POST => Some((Method::GET, false)),
        301..=303 => Some((method.clone(), true)),
        _ => None,
    }
}

impl DpopMiddleware {
    signing_builder!();

    fn from_shared(shared: Shared) -> Self {
        Self {
            shared,
            max_redirects: crate::defaults::CLIENT_MAX_REDIRECTS,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Follow at most `redirects` redirects per request (default
    /// [`CLIENT_MAX_REDIRECTS`](crate::defaults::CLIENT_MAX_REDIRECTS), 10); `0` hands every
    /// 3xx back. The reqwest client below must not follow them itself
    /// (`redirect::Policy::none()`).
    pub fn max_redirects(mut self, redirects: usize) -> Self {
        self.max_redirects = redirects;
        self
    }

    /// Remember the response's nonce under the origin that answered; say whether it asks for a
    /// retry with it. A token endpoint's 400 is read (up to 16 KiB) and handed back rebuilt:
    /// what was read, then the rest.
    async fn inspect(&self, target: &Target, response: Response) -> (Response, bool) {
        self.remember(target, &response);
        match wire::nonce_ask(
            response.status(),
            response.headers(),
            response.content_length(),
        ) {
            NonceAsk::No => (response, false),
            NonceAsk::Yes => (response, true),
            NonceAsk::ReadBody => {
                // Through http::Response and back, the only way reqwest offers to put a body
                // that was partly read back into a response; the URL goes along.
                let url = response.url().clone();
                let (mut parts, body) =
                    http::Response::<reqwest::Body>::from(response).into_parts();
                if let Ok(carrier) = http::Response::builder().url(url).body(()) {
                    parts.extensions.extend(carrier.into_parts().0.extensions);
                }
                let body = ResponseBody::buffer(body).await;
                let asks = body.complete().is_some_and(wire::body_asks_nonce);
                let body = reqwest::Body::wrap(body);
                (http::Response::from_parts(parts, body).into(), asks)
            }
        }
    }

    /// A response's `DPoP-Nonce`, under the origin of the URL that answered (which is
    /// `target`'s unless the client below followed a redirect).
    fn remember(&self, target: &Target, response: &Response) {
        let answered = Target::from_url(response.url());
        if answered.as_ref().is_some_and(|a| a.htu != target.htu)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                target: crate::observe::CLIENT,
                "the reqwest client below the DPoP middleware followed a redirect, and the proof went along: build it with redirect::Policy::none()"
            );
        }
        self.shared
            .remember(answered.as_ref().unwrap_or(target), response.headers());
    }

    /// A fresh proof for `req`, then, with [`sign_requests`](Self::sign_requests), its RFC 9421
    /// signature over the body as reqwest holds it (a stream cannot be signed: an error).
    fn sign(&self, req: &mut Request, target: &Target) -> reqwest_middleware::Result<()> {
        let method = req.method().clone();
        self.shared
            .sign(&method, target, req.headers_mut())
            .map_err(reqwest_middleware::Error::middleware)?;
        if self.shared.signs_messages() {
            let uri: http::Uri = req
                .url()
                .as_str()
                .parse()
                .map_err(reqwest_middleware::Error::middleware)?;
            let content = match req.body() {
                None => Some(Vec::new()),
                Some(body) => body.as_bytes().map(<[u8]>::to_vec),
            };
            self.shared
                .sign_message(&method, &uri, req.headers_mut(), content.as_deref())
                .map_err(reqwest_middleware::Error::middleware)?;
        }
        Ok(())
    }

    /// One request to `target`, signed, with one retry when the server asks for a nonce.
    async fn signed(
        &self,
        mut req: Request,
        target: &Target,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // Before signing: the copy gets a proof of its own (RFC 9449 §7.3, one use per proof).
        let spare = req.try_clone();
        // No proof, no request: a signing failure is the request's error.
        self.sign(&mut req, target)?;
        let response = next.clone().run(req, extensions).await?;
        let (response, asks) = self.inspect(target, response).await;
        let Some(mut again) = spare.filter(|_| asks) else {
            return Ok(response);
        };
        tracing::debug!(target: crate::observe::CLIENT, "use_dpop_nonce: retrying once");
        self.sign(&mut again, target)?;
        let response = next.run(again, extensions).await?;
        self.remember(target, &response);
        Ok(response)
    }
}

/// The request a redirect continues with, from what the last one was: `None` when it cannot be
/// made (a body that cannot be copied must be repeated).
fn redirected(
    method: &Method,
    headers: &HeaderMap,
    copy: Option<Request>,
    status: StatusCode,
    location: Url,
) -> Option<Request> {
    let (method, keeps_body) = continuation(status, method)?;
    if keeps_body {
        let mut next = copy?;
        *next.url_mut() = location;
        *next.method_mut() = method;
        return Some(next);
    }
    let mut next = Request::new(method, location);
    *next.headers_mut() = headers.clone();
    for name in [CONTENT_TYPE, CONTENT_LENGTH] {
        next.headers_mut().remove(name);
    }
    Some(next)
}

/// The `Location` of a response, resolved against the URL that answered (RFC 9110 §10.2.2);
/// only `http` and `https`.
fn location(response: &Response) -> Option<Url> {
    let mut values = response.headers().get_all(LOCATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let url = response.url().join(value.to_str().ok()?).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

#[async_trait::async_trait]
impl Middleware for DpopMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let Some(first) = Target::from_url(req.url()) else {
            return next.run(req, extensions).await;
        };
        let mut request = req;
        let mut target = first.clone();
        // Once the chain leaves the first origin, nothing is signed or carried again.
        let mut signing = true;
        let mut hops = 0;
        loop {
            let (method, headers) = (request.method().clone(), request.headers().clone());
            let copy = request.try_clone();
            let response = if signing {
                self.signed(request, &target, extensions, next.clone())
                    .await?
            } else {
                let response = next.clone().run(request, extensions).await?;
                self.remember(&target, &response);
                response
            };
            if hops >= self.max_redirects {
                return Ok(response);
            }
            let Some(url) = location(&response) else {
                return Ok(response);
            };
            let Some(following) = Target::from_url(&url) else {
                return Ok(response);
            };
            let Some(mut next_request) =
                redirected(&method, &headers, copy, response.status(), url)
            else {
                return Ok(response);
            };
            if following.origin != first.origin {
                signing = false;
            }
            if !signing {
                for name in [&DPOP, &AUTHORIZATION, &COOKIE, &PROXY_AUTHORIZATION] {
                    next_request.headers_mut().remove(name);
                }
            }
            tracing::debug!(target: crate::observe::CLIENT, status = response.status().as_u16(), same_origin = signing, "following a redirect");
            request = next_request;
            target = following;
            hops += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpop::signer::ProofSigner;
    use crate::jose::Algorithm;

    #[test]
    fn debug_shows_the_thumbprint_and_no_key_or_nonce() {
        let dpop = DpopMiddleware::new(ProofSigner::generate(Algorithm::ES256).unwrap());
        dpop.nonces()
            .insert("https://api.example.com:443", "the-nonce");
        let debug = format!("{dpop:?}");
        assert!(debug.contains(dpop.signer().thumbprint()), "{debug}");
        assert!(debug.contains("origins: 1"), "{debug}");
        assert!(
            !debug.contains("the-nonce") && !debug.contains("\"d\""),
            "{debug}"
        );
    }

    /// A proof that cannot be made is the request's error (`Error::Middleware`), before any
    /// connection is attempted.
    #[tokio::test]
    async fn signing_failure_is_the_request_error() {
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(DpopMiddleware::new(ProofSigner::failing_for_tests()))
            .build();
        // Port 9 on loopback: nothing is listening there, and nothing is sent anyway.
        let error = client
            .get("http://127.0.0.1:9/whoami")
            .send()
            .await
            .unwrap_err();
        let reqwest_middleware::Error::Middleware(error) = error else {
            panic!("a middleware error, not a transport one: {error}")
        };
        assert!(
            error
                .downcast_ref::<crate::dpop::signer::SignerError>()
                .is_some(),
            "{error}"
        );
    }
}
