//! What one route requires beyond a verified request ([`RoutePolicy`]: anonymous access, required
//! scopes, RFC 6750 §3.1), and the shorthands every layer that carries one offers
//! ([`PolicyBuilder`]: written once, implemented by the tower layer and both adapters).

use std::sync::Arc;

use crate::challenge::Challenge;
use crate::error::{ConfigError, PopError};
use crate::extension::Verified;
use crate::metadata::is_scope_token;

/// What one route requires beyond a verified request: given to the layer or middleware and
/// applied by [`Verifier::decide`](crate::verifier::Verifier::decide).
///
/// ```
/// use tower_pop::RoutePolicy;
/// let policy = RoutePolicy::new().require_scope("read")?.require_scope("write")?;
/// assert_eq!(policy.required_scopes(), Some("read write"));
/// assert!(RoutePolicy::new().require_scope("read write").is_err());
/// # Ok::<(), tower_pop::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePolicy {
    allow_anonymous: bool,
    scopes: Vec<String>,
    joined: Option<Arc<str>>,
}

impl RoutePolicy {
    /// Verified requests only, no scope required.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Let requests without any credentials through with an [`Anonymous`](crate::extension::Anonymous) marker.
    #[must_use]
    pub fn allow_anonymous(mut self) -> Self {
        self.allow_anonymous = true;
        self
    }

    /// Require `scope` in the token's space-delimited `scope` claim (exact, case-sensitive,
    /// RFC 6749 §3.3); a token without it gets 403 `insufficient_scope` (RFC 6750 §3.1).
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`] when `scope` is not an RFC 6749 scope-token (empty, or
    /// with a space, `"` or `\`).
    pub fn require_scope(self, scope: &str) -> Result<Self, ConfigError> {
        check_scope(scope)?;
        Ok(self.with_scope(scope))
    }

    /// [`require_scope`](Self::require_scope) for a scope already checked.
    pub(crate) fn with_scope(mut self, scope: &str) -> Self {
        if self.scopes.iter().any(|s| s == scope) {
            return self;
        }
        self.scopes.push(scope.to_owned());
        self.joined = Some(self.scopes.join(" ").into());
        self
    }

    /// Whether anonymous requests pass.
    #[must_use]
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// The required scopes, space-delimited, if any.
    #[must_use]
    pub fn required_scopes(&self) -> Option<&str> {
        self.joined.as_deref()
    }

    pub(crate) fn check_scopes(&self, verified: Verified) -> Result<Verified, PopError> {
        match self.missing_scope(&verified) {
            None => Ok(verified),
            Some(error) => Err(error),
        }
    }

    /// Whether `verified`, already verified by a layer, satisfies this policy's scopes too:
    /// for decisions the route cannot make, because what is asked for is in the body (a
    /// JSON-RPC method, an MCP tool, a GraphQL operation). The refusal is the one the layer
    /// would give, 403 `insufficient_scope` naming the scopes in the challenge of the scheme
    /// used (RFC 6750 §3.1), with the request's response headers (nonce, interaction id).
    ///
    /// ```
    /// # use tower_pop::RoutePolicy;
    /// # fn check(verified: &tower_pop::Verified) -> Result<(), tower_pop::ConfigError> {
    /// let write = RoutePolicy::new().require_scope("files:write")?;
    /// if let Err(refusal) = write.authorize(verified) {
    ///     assert_eq!(refusal.status(), 403);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The refusal, when a required scope is missing.
    pub fn authorize(&self, verified: &Verified) -> Result<(), Challenge> {
        match self.missing_scope(verified) {
            None => Ok(()),
            Some(error) => Err(Challenge::for_error(&error, &verified.challenge)
                .with_headers(verified.response_headers.clone())),
        }
    }

    fn missing_scope(&self, verified: &Verified) -> Option<PopError> {
        let joined = self.joined.as_ref()?;
        let granted = verified
            .claims()
            .get("scope")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if self
            .scopes
            .iter()
            .all(|s| granted.split(' ').any(|g| g == s))
        {
            None
        } else {
            Some(PopError::insufficient_scope(
                verified.scheme(),
                Arc::clone(joined),
            ))
        }
    }
}

/// The route-policy shorthands of a layer or middleware that carries a [`RoutePolicy`]:
/// [`RequirePopLayer`](crate::layer::RequirePopLayer), `axum_pop::RequirePopLayer` and
/// `actix_pop::RequirePop` implement [`map_policy`](Self::map_policy) and get the rest.
///
/// ```
/// use tower_pop::{PolicyBuilder as _, PopConfig, RequirePopLayer, Verifier};
///
/// let verifier = Verifier::new(
///     PopConfig::builder()
///         .public_origin("https://api.example.com")
///         .issuer("https://as.example.com")
///         .audience("https://api.example.com")
///         .jwks_json(r#"{"keys":[]}"#)
///         .build()
///         .expect("valid configuration"),
/// );
/// let layer = RequirePopLayer::new(verifier).require_scope("read")?.allow_anonymous();
/// assert_eq!(layer.route_policy().required_scopes(), Some("read"));
/// assert!(layer.route_policy().allows_anonymous());
/// # Ok::<(), tower_pop::ConfigError>(())
/// ```
pub trait PolicyBuilder: Sized {
    /// The policy as it stands.
    fn route_policy(&self) -> &RoutePolicy;

    /// Replace the policy with what `change` makes of it.
    #[must_use]
    fn map_policy(self, change: impl FnOnce(RoutePolicy) -> RoutePolicy) -> Self;

    /// Let requests that carry no credentials at all through, with an
    /// [`Anonymous`](crate::extension::Anonymous) marker instead of a [`Verified`], for routes where
    /// authentication is optional ([`RoutePolicy::allow_anonymous`]). Requests that do carry
    /// credentials are still verified, and refused when they fail.
    #[must_use]
    fn allow_anonymous(self) -> Self {
        self.map_policy(RoutePolicy::allow_anonymous)
    }

    /// Require `scope` in the token's `scope` claim: 403 `insufficient_scope` without it
    /// ([`RoutePolicy::require_scope`]).
    ///
    /// # Errors
    /// As [`RoutePolicy::require_scope`].
    fn require_scope(self, scope: &str) -> Result<Self, ConfigError> {
        check_scope(scope)?;
        Ok(self.map_policy(|policy| policy.with_scope(scope)))
    }

    /// Apply `policy` to every request (replacing `allow_anonymous` and `require_scope`).
    #[must_use]
    fn policy(self, policy: RoutePolicy) -> Self {
        self.map_policy(|_| policy)
    }
}

/// A required scope must be an RFC 6749 §3.3 scope-token.
pub(crate) fn check_scope(scope: &str) -> Result<(), ConfigError> {
    if is_scope_token(scope) {
        Ok(())
    } else {
        Err(ConfigError::InvalidScope {
            scope: scope.to_owned(),
        })
    }
}
