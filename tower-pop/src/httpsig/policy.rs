//! What a request signature must cover and how it is judged (RFC 9421 §3.2.1): the
//! application requirements, with safe defaults.

use std::sync::Arc;

/// The components every request signature must cover by default: the method, the target URI
/// (computed from the configured public origin, like DPoP's `htu`), and the access token.
pub const DEFAULT_COMPONENTS: [&str; 3] = ["@method", "@target-uri", "authorization"];

/// Largest request body read to check its `Content-Digest`, by default (1 MiB).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The application requirements on request signatures (RFC 9421 §3.2.1).
///
/// By default a request must carry a signature by the token's bound key that covers
/// [`DEFAULT_COMPONENTS`] and, when the request has a body, `content-digest` (RFC 9530), which
/// is then checked against the body; `created` is required and must fall within the verifier's
/// DPoP proof window (max age and future skew); a passed `expires` is refused; each signature
/// is accepted once. `keyid`, when present, must be the bound key's thumbprint (the token's
/// `cnf.jkt`, or the certificate's `x5t#S256`), and `alg`, when present, the algorithm the key
/// implies.
///
/// ```
/// use tower_pop::httpsig::SignaturePolicy;
/// let policy = SignaturePolicy::new().cover("dpop").max_body(64 * 1024);
/// assert!(policy.components().contains(&"dpop".to_owned()));
/// assert!(policy.accept_signature(true).contains("\"content-digest\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SignaturePolicy {
    components: Vec<String>,
    max_body: usize,
    label: String,
}

impl Default for SignaturePolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl SignaturePolicy {
    /// The default policy.
    pub fn new() -> Self {
        Self {
            components: DEFAULT_COMPONENTS.iter().map(|c| (*c).to_owned()).collect(),
            max_body: DEFAULT_MAX_BODY,
            label: "sig1".to_owned(),
        }
    }

    /// Also require `component` (a lowercase field name such as `dpop` or `content-type`, or a
    /// derived component such as `@authority`) to be covered.
    pub fn cover(mut self, component: &str) -> Self {
        let component = component.to_ascii_lowercase();
        if !self.components.contains(&component) {
            self.components.push(component);
        }
        self
    }

    /// The largest body read to check `Content-Digest`; a larger one is refused with 413.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The label `Accept-Signature` asks for (default `sig1`). Verification does not select by
    /// label: labels are not signed (RFC 9421 §7.2.5).
    pub fn label(mut self, label: &str) -> Self {
        label.clone_into(&mut self.label);
        self
    }

    /// The components that must be covered (plus `content-digest` with a body).
    #[must_use]
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The body bound.
    #[must_use]
    pub fn body_limit(&self) -> usize {
        self.max_body
    }

    /// The `Accept-Signature` value (RFC 9421 §5.1) asking for a signature that fits this
    /// policy, for a request with or without a body.
    #[must_use]
    pub fn accept_signature(&self, with_body: bool) -> String {
        let mut components: Vec<String> =
            self.components.iter().map(|c| format!("\"{c}\"")).collect();
        if with_body && !self.components.iter().any(|c| c == "content-digest") {
            components.push("\"content-digest\"".to_owned());
        }
        format!("{}=({});created", self.label, components.join(" "))
    }

    pub(crate) fn accept_signature_values(&self) -> [Arc<str>; 2] {
        [
            Arc::from(self.accept_signature(false)),
            Arc::from(self.accept_signature(true)),
        ]
    }
}
