//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells clients what this
//! API requires, and where it is.
//!
//! Configured with [`PopConfigBuilder::resource_metadata`](crate::config::PopConfigBuilder::resource_metadata);
//! the [`Verifier`](crate::verifier::Verifier) then knows the document ([`ResourceDocument`]) and puts its
//! URL into every challenge as `resource_metadata` (RFC 9728 §5.1). The document is derived
//! from the same configuration the verifier enforces, so it cannot drift:
//!
//! | member | value |
//! |---|---|
//! | `resource` | the configured identifier, byte for byte (§2) |
//! | `authorization_servers` | the trusted issuers |
//! | `bearer_methods_supported` | `["header"]` (tokens in the `Authorization` header only) |
//! | `dpop_signing_alg_values_supported` | the DPoP algorithms, as in the challenge's `algs` |
//! | `dpop_bound_access_tokens_required` | `true` unless bearer tokens are allowed |
//! | `tls_client_certificate_bound_access_tokens` | as configured (true when clients present certificates) |
//! | `scopes_supported` | as configured, when any |
//!
//! It is served at `/.well-known/oauth-protected-resource` followed by the resource's path (a
//! trailing slash dropped, §3.1), without authentication: the adapters mount it in one line
//! (`axum_pop::metadata_router`, `actix_pop::metadata_service`), and
//! [`ResourceDocument::json`] gives the body to any other stack.
//!
//! ```
//! use tower_pop::{PopConfig, Verifier, metadata::ResourceMetadata};
//!
//! let verifier = Verifier::new(PopConfig::builder()
//!     .public_origin("https://api.example.com")
//!     .issuer("https://as.example.com")
//!     .audience("https://api.example.com/v1")
//!     .jwks_json(r#"{"keys":[]}"#)
//!     .resource_metadata(ResourceMetadata::new("https://api.example.com/v1").scopes_supported(["read"]))
//!     .build()
//!     .unwrap());
//! let doc = verifier.resource_document().unwrap();
//! assert_eq!(doc.path(), "/.well-known/oauth-protected-resource/v1");
//! assert_eq!(doc.url(), "https://api.example.com/.well-known/oauth-protected-resource/v1");
//! let json: serde_json::Value = serde_json::from_str(doc.json()).unwrap();
//! assert_eq!(json["resource"], "https://api.example.com/v1");
//! assert_eq!(json["dpop_bound_access_tokens_required"], true);
//! ```

use serde_json::json;

use crate::error::ConfigError;

/// What to publish about this resource; the rest comes from the verifier's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMetadata {
    resource: String,
    scopes: Vec<String>,
    tls_client_certificate_bound: bool,
}

impl ResourceMetadata {
    /// Metadata for the resource identifier `resource` (an absolute `https` URL without query
    /// or fragment, RFC 9728 §1.2).
    #[must_use]
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            scopes: Vec::new(),
            tls_client_certificate_bound: false,
        }
    }

    /// The resource identifier, as given.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// `scopes_supported`.
    #[must_use]
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `tls_client_certificate_bound_access_tokens`: whether certificate-bound tokens are
    /// supported (clients can present certificates to this server). Default: false.
    #[must_use]
    pub fn tls_client_certificate_bound_access_tokens(mut self, supported: bool) -> Self {
        self.tls_client_certificate_bound = supported;
        self
    }
}

/// The metadata document as served: its path, its URL and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDocument {
    path: String,
    url: String,
    json: String,
}

impl ResourceDocument {
    /// Build the document; `insecure_http` allows an `http` identifier (loopback development).
    pub(crate) fn new(
        metadata: &ResourceMetadata,
        authorization_servers: &[&str],
        dpop_algs: &[&str],
        dpop_required: bool,
        insecure_http: bool,
    ) -> Result<Self, ConfigError> {
        let resource = &metadata.resource;
        let bad = || ConfigError::InvalidResource {
            resource: resource.clone(),
        };
        let rest = match resource.split_once("://") {
            Some(("https", rest)) => rest,
            Some(("http", rest)) if insecure_http => rest,
            _ => return Err(bad()),
        };
        // Visible ASCII only: the identifier goes into every challenge's `resource_metadata`
        // (a quoted-string) and into a route; a control character there would drop the
        // challenge or fail the response, so it is refused here, at start-up.
        if rest.is_empty()
            || !resource.bytes().all(|b| b.is_ascii_graphic())
            || resource.contains(['?', '#', '"', '\\'])
        {
            return Err(bad());
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        if metadata.scopes.iter().any(|s| !is_scope_token(s)) {
            return Err(bad());
        }
        let scheme = &resource[..resource.len() - rest.len() - 3];
        let path = format!(
            "/.well-known/oauth-protected-resource{}",
            path.strip_suffix('/').unwrap_or(path)
        );
        let mut doc = json!({
            "resource": resource,
            "authorization_servers": authorization_servers,
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": dpop_algs,
            "dpop_bound_access_tokens_required": dpop_required,
            "tls_client_certificate_bound_access_tokens": metadata.tls_client_certificate_bound,
        });
        if !metadata.scopes.is_empty() {
            doc["scopes_supported"] = json!(metadata.scopes);
        }
        Ok(Self {
            url: format!("{scheme}://{authority}{path}"),
            path,
            json: doc.to_string(),
        })
    }

    /// Where the document is served on this server, e.g.
    /// `/.well-known/oauth-protected-resource/v1`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The document's URL, as sent in `resource_metadata`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The JSON body (`application/json`).
    #[must_use]
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// RFC 6749 §3.3 `scope-token`: `1*( %x21 / %x23-5B / %x5D-7E )`.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(resource: &str) -> Result<ResourceDocument, ConfigError> {
        ResourceDocument::new(
            &ResourceMetadata::new(resource),
            &["https://as"],
            &["ES256"],
            true,
            false,
        )
    }

    #[test]
    fn well_known_path_inserted_before_the_resource_path_prm_01() {
        assert_eq!(
            doc("https://r.example").unwrap().path(),
            "/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            doc("https://r.example/").unwrap().path(),
            "/.well-known/oauth-protected-resource"
        );
        let d = doc("https://r.example:8443/api/v1/").unwrap();
        assert_eq!(d.path(), "/.well-known/oauth-protected-resource/api/v1");
        assert_eq!(
            d.url(),
            "https://r.example:8443/.well-known/oauth-protected-resource/api/v1"
        );
    }

    #[test]
    fn resource_is_byte_exact_and_must_be_an_https_url() {
        let d = doc("https://R.example/A").unwrap();
        let json: serde_json::Value = serde_json::from_str(d.json()).unwrap();
        // resource is the configured identifier byte for byte; https only, no fragment (PRM-02).
        assert_eq!(json["resource"], "https://R.example/A");
        for bad in [
            "http://r.example",
            "r.example",
            "https://r.example?x",
            "https://r.example#f",
            "https://u@r.example",
            "https://",
            // Control characters, spaces and non-ASCII: refused at start-up, never a dropped
            // challenge or a failed response later.
            "https://r.example/a\u{1}b",
            "https://r.example/a\tb",
            "https://r.example/a\u{7f}",
            "https://r.example/a b",
            "https://r.example/é",
            "https://r.example/\r\nx: y",
        ] {
            assert!(doc(bad).is_err(), "{bad}");
        }
        let bad_scope = ResourceMetadata::new("https://r").scopes_supported(["a b"]);
        assert!(ResourceDocument::new(&bad_scope, &[], &[], true, false).is_err());
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("read:all"));
        assert!(!is_scope_token("a b") && !is_scope_token("a\"b") && !is_scope_token(""));
    }
}
