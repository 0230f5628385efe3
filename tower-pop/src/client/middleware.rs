//! The reqwest middleware: [`DpopMiddleware`], for `reqwest_middleware::ClientWithMiddleware`.

use http::Extensions;
use reqwest::{Request, Response, ResponseBuilderExt};
use reqwest_middleware::{Middleware, Next};

use super::wire::{self, NonceAsk, Target};
use super::{ResponseBody, Shared, signing_builder};

/// Adds a fresh DPoP proof to every request of a `reqwest_middleware` client, and retries once
/// when the server asks for a nonce. See [the module docs](super).
///
/// Cheap to clone: clones share the signer and the nonce store.
#[derive(Clone, Debug)]
#[must_use]
pub struct DpopMiddleware {
    pub(super) shared: Shared,
}

impl DpopMiddleware {
    signing_builder!();

    /// Remember the response's nonce; say whether it asks for a retry with it. A token
    /// endpoint's 400 is read (up to 16 KiB) and handed back rebuilt: what was read, then the
    /// rest.
    async fn inspect(&self, target: &Target, response: Response) -> (Response, bool) {
        self.shared.remember(target, response.headers());
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
}

#[async_trait::async_trait]
impl Middleware for DpopMiddleware {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let Some(target) = Target::from_url(req.url()) else {
            return next.run(req, extensions).await;
        };
        // Before signing: the copy gets a proof of its own (RFC 9449 §7.3, one use per proof).
        let spare = req.try_clone();
        // No proof, no request: a signing failure is the request's error.
        self.shared
            .sign(&req.method().clone(), &target, req.headers_mut())
            .map_err(reqwest_middleware::Error::middleware)?;
        let response = next.clone().run(req, extensions).await?;
        let (response, asks) = self.inspect(&target, response).await;
        let Some(mut again) = spare.filter(|_| asks) else {
            return Ok(response);
        };
        tracing::debug!(target: crate::observe::CLIENT, "use_dpop_nonce: retrying once");
        self.shared
            .sign(&again.method().clone(), &target, again.headers_mut())
            .map_err(reqwest_middleware::Error::middleware)?;
        let response = next.run(again, extensions).await?;
        self.shared.remember(&target, response.headers());
        Ok(response)
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
