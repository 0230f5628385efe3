//! Where the keys of one issuer come from: a configured JWK Set, or (feature `discovery`) the
//! issuer's RFC 8414 metadata. The JWT validator asks this room for keys and knows nothing of
//! how they are fetched; [`super::jwks`] reads a set, [`super::discovery`] fetches and refreshes one.

use std::sync::Arc;

use super::jwks::KeySet;
use crate::error::PopErrorKind;
use crate::jose::Algorithm;

/// Where the keys of one issuer come from: a configured JWK Set, or (feature `discovery`) the
/// issuer's metadata, cached and refreshed without a lock on the request path.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// A configured JWK Set (`jwks_json`, `jwks_file`).
    Static(Arc<KeySet>),
    /// Discovered from the issuer's metadata (RFC 8414).
    #[cfg(feature = "discovery")]
    Discovered(super::discovery::IssuerKeys),
}

impl KeySource {
    /// The keys that may verify a token with this `kid` and `alg`: at once for a static set; for
    /// a discovered one, the current set, refetched (single-flight, rate-limited) when the key
    /// is unknown.
    ///
    /// # Errors
    /// Discovered keys only: the key is unknown and the authorization server cannot be asked
    /// ([`PopErrorKind::KeySetUnavailable`], 503).
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeySet>, PopErrorKind> {
        match self {
            Self::Static(keys) => {
                let _ = (kid, alg);
                Ok(Arc::clone(keys))
            }
            #[cfg(feature = "discovery")]
            Self::Discovered(keys) => match keys.keys_for(kid, alg).await {
                Ok(snapshot) => Ok(Arc::clone(snapshot.key_set())),
                // Not logged per token: the failed fetch was (once), and so is the refusal.
                Err(_) => Err(PopErrorKind::KeySetUnavailable),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_source_answers_without_io() {
        let set = Arc::new(KeySet::default());
        let source = KeySource::Static(Arc::clone(&set));
        let keys = source
            .keys_for(Some("k"), Algorithm::ES256)
            .await
            .expect("static");
        assert!(Arc::ptr_eq(&keys, &set));
    }
}
