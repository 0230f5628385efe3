//! The token endpoint side (RFC 9449 §5): [`DpopMiddleware::request_token`], [`TokenRequest`],
//! [`AccessToken`], [`TokenError`].

use std::fmt;
use std::time::Duration;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::DpopMiddleware;
use super::wire::{self, Target};

/// Largest token response read: a token response is a few kilobytes.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// `application/x-www-form-urlencoded` (WHATWG URL §5.2, RFC 6749 Appendix B): everything but
/// `*-._` and alphanumerics is percent-encoded (a space as `%20`, which decoders accept).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// The form of a token request (RFC 6749 §4), sent as `application/x-www-form-urlencoded`.
///
/// `Debug` lists the parameter names only: values such as `client_secret`, `code` or
/// `refresh_token` are secrets.
///
/// ```
/// use tower_pop::client::TokenRequest;
///
/// let request = TokenRequest::client_credentials("my-client", "s3cr3t").scope("read write");
/// assert_eq!(
///     format!("{request:?}"),
///     r#"TokenRequest { params: ["grant_type", "client_id", "client_secret", "scope"] }"#
/// );
/// ```
#[derive(Clone)]
#[must_use]
pub struct TokenRequest {
    params: Vec<(String, String)>,
}

impl TokenRequest {
    /// A request for `grant_type`; add its parameters with [`add_param`](Self::add_param).
    pub fn new(grant_type: &str) -> Self {
        Self {
            params: vec![("grant_type".into(), grant_type.into())],
        }
    }

    /// The client credentials grant (RFC 6749 §4.4) with the client's id and secret in the body
    /// (RFC 6749 §2.3.1).
    pub fn client_credentials(client_id: &str, client_secret: &str) -> Self {
        Self::new("client_credentials")
            .add_param("client_id", client_id)
            .add_param("client_secret", client_secret)
    }

    /// Append a parameter.
    pub fn add_param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Append `scope` (RFC 6749 §3.3).
    pub fn scope(self, scope: &str) -> Self {
        self.add_param("scope", scope)
    }

    fn encode(&self) -> String {
        let pairs: Vec<String> = self
            .params
            .iter()
            .map(|(n, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(n, FORM),
                    utf8_percent_encode(v, FORM)
                )
            })
            .collect();
        pairs.join("&")
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("TokenRequest")
            .field("params", &names)
            .finish()
    }
}

/// A DPoP-bound access token from a token endpoint (RFC 9449 §5, RFC 6749 §5.1).
///
/// `Debug` shows neither the access token nor the refresh token.
#[derive(Clone)]
pub struct AccessToken {
    token: String,
    expires_in: Option<Duration>,
    scope: Option<String>,
    refresh_token: Option<String>,
}

impl AccessToken {
    /// The access token.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// The `Authorization` value to send it with: `DPoP <token>` (RFC 9449 §7.1).
    #[must_use]
    pub fn authorization(&self) -> String {
        format!("DPoP {}", self.token)
    }

    /// Its lifetime, if the endpoint said (`expires_in`).
    #[must_use]
    pub fn expires_in(&self) -> Option<Duration> {
        self.expires_in
    }

    /// The granted scope, if the endpoint said.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The refresh token, if one was issued (bound to the same key for public clients,
    /// RFC 9449 §5).
    #[must_use]
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// Why a token request failed. Neither `Display` nor `Debug` contains the request's secrets or
/// the answer's tokens: only the status, the OAuth `error` code and the `token_type`.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenError {
    /// The token endpoint URL does not parse as an absolute URL.
    InvalidUrl,
    /// The request could not be sent or the answer not read (the source says why; it names
    /// the URL, never the form).
    Transport(Box<dyn std::error::Error + Send + Sync>),
    /// The endpoint refused (RFC 6749 §5.2), after the one retry on `use_dpop_nonce`.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The `error` code of the answer, if it had a well-formed one.
        error: Option<String>,
    },
    /// The endpoint answered with a redirect (3xx), or the client followed one: never followed
    /// by this helper, never read. The form was sent once, to the URL given, and nowhere else.
    Redirected {
        /// The HTTP status.
        status: u16,
    },
    /// A success status, but not a token response: no JSON, no `access_token`, or larger than
    /// 64 KiB.
    Malformed {
        /// The HTTP status.
        status: u16,
    },
    /// The token is not DPoP-bound: `token_type` is not `DPoP` (RFC 9449 §5 says the client
    /// must check; a Bearer token would be stolen as easily as any).
    NotDpop {
        /// The `token_type` the endpoint sent (at most 32 characters of it).
        token_type: String,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl => f.write_str("invalid token endpoint url"),
            Self::Transport(_) => f.write_str("token request failed"),
            Self::Refused {
                status,
                error: Some(error),
            } => write!(f, "token endpoint refused with {status}: {error}"),
            Self::Refused {
                status,
                error: None,
            } => {
                write!(f, "token endpoint refused with {status}")
            }
            Self::Redirected { status } => {
                write!(
                    f,
                    "token endpoint answered {status} with a redirect, not followed"
                )
            }
            Self::Malformed { status } => {
                write!(
                    f,
                    "token endpoint answered {status} without a token response"
                )
            }
            Self::NotDpop { token_type } => {
                write!(f, "token_type is {token_type:?}, not DPoP")
            }
        }
    }
}

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(&**e),
            _ => None,
        }
    }
}

/// An OAuth `error` code is `1*NQSCHAR` (RFC 6749 §5.2); keep a short well-formed one only.
fn error_code(body: &Value) -> Option<String> {
    let code = body.get("error")?.as_str()?;
    let nqschar = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
    (!code.is_empty() && code.len() <= 64 && code.chars().all(nqschar)).then(|| code.to_owned())
}

fn transport(e: impl std::error::Error + Send + Sync + 'static) -> TokenError {
    TokenError::Transport(Box::new(e))
}

/// A request body that can be sent once: reqwest cannot copy it, so it follows no 307 or 308
/// redirect with it (RFC 9110 §15.4.8: those repeat the request, form and secrets included).
struct SendOnce(Option<Bytes>);

impl Body for SendOnce {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

impl DpopMiddleware {
    /// POST `request` to the token endpoint `token_url` with a DPoP proof (RFC 9449 §5) over
    /// `client`: a fresh proof, the origin's latest nonce, and one retry on a 400
    /// `{"error":"use_dpop_nonce"}` with the `DPoP-Nonce` the endpoint sent (RFC 9449 §8). The
    /// answer must be a token response whose `token_type` is `DPoP` (compared
    /// case-insensitively); the proof key's thumbprint is then the token's `cnf.jkt`.
    ///
    /// **Redirects are never followed** (a token request carries the client's secret and a
    /// grant): a 3xx answer is [`TokenError::Redirected`]. The form is sent as a
    /// body that cannot be copied, so even a `client` that follows redirects does not repeat it
    /// on a 307 or 308; such a client turns a 301, 302 or 303 into a `GET` without the form,
    /// whose answer is refused unread. Build the client with `redirect::Policy::none()` to send
    /// nothing at all to a redirect target.
    ///
    /// ```no_run
    /// use tower_pop::Algorithm;
    /// use tower_pop::client::{DpopMiddleware, TokenRequest};
    /// use tower_pop::dpop::signer::ProofSigner;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let dpop = DpopMiddleware::new(ProofSigner::generate(Algorithm::ES256)?);
    /// let token = dpop
    ///     .request_token(
    ///         &reqwest::Client::new(),
    ///         "https://as.example.com/token",
    ///         &TokenRequest::client_credentials("my-client", "s3cr3t"),
    ///     )
    ///     .await?;
    /// let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(dpop).build();
    /// let me = api
    ///     .get("https://api.example.com/me")
    ///     .header("Authorization", token.authorization())
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`TokenError`]: the URL, the transport, a refusal, a malformed answer, or a token that is
    /// not DPoP-bound.
    pub async fn request_token(
        &self,
        client: &reqwest::Client,
        token_url: &str,
        request: &TokenRequest,
    ) -> Result<AccessToken, TokenError> {
        let url = reqwest::Url::parse(token_url).map_err(|_| TokenError::InvalidUrl)?;
        let target = Target::from_url(&url).ok_or(TokenError::InvalidUrl)?;
        let form = Bytes::from(request.encode());
        let mut retried = false;
        let (status, bytes) = loop {
            let mut outgoing = client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .body(reqwest::Body::wrap(SendOnce(Some(form.clone()))))
                .build()
                .map_err(transport)?;
            self.shared
                .sign(&http::Method::POST, &target, outgoing.headers_mut())
                .map_err(transport)?;
            let mut response = client.execute(outgoing).await.map_err(transport)?;
            let status = response.status().as_u16();
            // Answered from elsewhere (the client followed a redirect), or a redirect itself.
            if response.status().is_redirection() || response.url() != &url {
                return Err(TokenError::Redirected { status });
            }
            self.shared.remember(&target, response.headers());
            let nonce_given = wire::response_nonce(response.headers()).is_some();
            if response
                .content_length()
                .is_some_and(|n| n > MAX_TOKEN_RESPONSE as u64)
            {
                return Err(TokenError::Malformed { status });
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport)? {
                if bytes.len() + chunk.len() > MAX_TOKEN_RESPONSE {
                    return Err(TokenError::Malformed { status });
                }
                bytes.extend_from_slice(&chunk);
            }
            // RFC 9449 §8: a 400 `use_dpop_nonce` with a `DPoP-Nonce` is retried once.
            if status == 400 && nonce_given && !retried && wire::body_asks_nonce(&bytes) {
                retried = true;
                tracing::debug!(target: crate::observe::CLIENT, "use_dpop_nonce: retrying once");
                continue;
            }
            break (status, bytes);
        };
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        if !(200..300).contains(&status) {
            return Err(TokenError::Refused {
                status,
                error: body.as_ref().and_then(error_code),
            });
        }
        let body = body.ok_or(TokenError::Malformed { status })?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Malformed { status })?;
        let token_type = body.get("token_type").and_then(Value::as_str).unwrap_or("");
        if !token_type.eq_ignore_ascii_case("DPoP") {
            return Err(TokenError::NotDpop {
                token_type: token_type.chars().take(32).collect(),
            });
        }
        Ok(AccessToken {
            token: token.to_owned(),
            expires_in: body
                .get("expires_in")
                .and_then(Value::as_u64)
                .map(Duration::from_secs),
            scope: body.get("scope").and_then(Value::as_str).map(str::to_owned),
            refresh_token: body
                .get("refresh_token")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encodes_every_reserved_character() {
        let request = TokenRequest::client_credentials("id with space", "s&=+/%é").scope("a b");
        assert_eq!(
            request.encode(),
            "grant_type=client_credentials&client_id=id%20with%20space\
             &client_secret=s%26%3D%2B%2F%25%C3%A9&scope=a%20b"
        );
    }

    #[test]
    fn debug_and_display_show_no_secret() {
        let request = TokenRequest::client_credentials("c", "the-secret");
        assert!(!format!("{request:?}").contains("the-secret"));
        let token = AccessToken {
            token: "the-access-token".into(),
            expires_in: Some(Duration::from_secs(60)),
            scope: Some("read".into()),
            refresh_token: Some("the-refresh-token".into()),
        };
        let debug = format!("{token:?}");
        assert!(!debug.contains("the-access-token") && !debug.contains("the-refresh-token"));
        assert!(debug.contains("read"));
        let error = TokenError::NotDpop {
            token_type: "Bearer".into(),
        };
        assert_eq!(error.to_string(), r#"token_type is "Bearer", not DPoP"#);
    }

    #[test]
    fn error_codes_are_kept_only_when_well_formed() {
        let code = |v: Value| error_code(&v);
        assert_eq!(
            code(serde_json::json!({"error": "invalid_client"})).as_deref(),
            Some("invalid_client")
        );
        assert_eq!(code(serde_json::json!({"error": "bad\"quote"})), None);
        assert_eq!(code(serde_json::json!({"error": "x".repeat(65)})), None);
        assert_eq!(code(serde_json::json!({"error": 3})), None);
    }
}
