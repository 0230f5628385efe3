//! Verifying a request's signature (RFC 9421 §3.2) against the key its access token is bound to,
//! after [`Verifier`] has accepted the token and its proof.
//!
//! Order, cheapest first: the fields' structure, the policy's coverage, `created`/`expires`,
//! `keyid`/`alg`, `Content-Digest` against the body (RFC 9530), the signature base and the one
//! signature check, then single use in the replay store. Only the first signature that covers
//! what the policy requires is checked: one signature verification per request, whatever a
//! client sends.

use std::sync::Arc;

use sfv::{BareItem, InnerList, Item};
use sha2::{Digest as _, Sha256};

use super::base::{BaseError, Message, RequestTarget, signature_base};
use super::digest::{self, DigestError};
use super::fields::{self, FieldError, Labelled};
use super::key::{BoundKey, SignatureAlgorithm};
use super::policy::SignaturePolicy;
use crate::defaults;
use crate::dpop::known_key::ProvenKey;
use crate::dpop::proof::{Proof, ProofBytes};
use crate::error::{PopError, PopErrorKind};
use crate::extension::{Binding, Verified};
use crate::jose::digest::ct_eq;
use crate::jose::thumbprint::x5t_s256;
use crate::mtls::ClientCertificate;
use crate::replay::{ReplayEntry, owner_key};
use crate::request::{OriginalTarget, PopRequest};
use crate::verifier::{Refusal, Verifier};

/// A request signature that verified: in the request's extensions once
/// [`RequireSignatureLayer`](super::RequireSignatureLayer) let it through, for the handler and
/// for signing the response over it ([`sign::sign_response`](super::sign)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    label: String,
    created: u64,
    algorithm: SignatureAlgorithm,
}

impl VerifiedSignature {
    /// The label it was sent under (not signed: use it only to refer to this signature).
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its `created` (UNIX seconds).
    #[must_use]
    pub fn created(&self) -> u64 {
        self.created
    }

    /// The algorithm it was made with.
    #[must_use]
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

/// Checks request signatures for one [`Verifier`] under one [`SignaturePolicy`].
#[derive(Debug)]
pub struct SignatureVerifier {
    verifier: Arc<Verifier>,
    policy: SignaturePolicy,
    /// The policy's components as identifiers, `content-digest` last (required with a body).
    required: Vec<Item>,
    content_digest: Item,
    accept: [Arc<str>; 2],
    /// The public origin split once: `@scheme` and `@authority` (RFC 9421 §7.4.3).
    scheme: String,
    authority: String,
    replay_hasher: Sha256,
}

fn identifier(name: &str) -> Item {
    let name = sfv::String::from_string(name.to_owned())
        .unwrap_or_else(|_| sfv::String::from_string(String::new()).expect("empty string"));
    Item::new(BareItem::String(name))
}

impl SignatureVerifier {
    /// Signatures on requests that `verifier` accepted, judged by `policy`.
    pub fn new(verifier: impl Into<Arc<Verifier>>, policy: SignaturePolicy) -> Self {
        let verifier = verifier.into();
        let origin = verifier.config().public_origin.clone();
        let (scheme, authority) = origin
            .split_once("://")
            .map(|(s, a)| (s.to_owned(), a.to_owned()))
            .unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(b"tower-pop/httpsig/v1\0");
        hasher.update(verifier.config().replay_namespace);
        Self {
            required: policy.components().iter().map(|c| identifier(c)).collect(),
            content_digest: identifier("content-digest"),
            accept: policy.accept_signature_values(),
            verifier,
            policy,
            scheme,
            authority,
            replay_hasher: hasher,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &SignaturePolicy {
        &self.policy
    }

    /// The token verifier.
    #[must_use]
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// Check the signature of a request whose token and proof `verified` accepted; `body` is the
    /// whole request content (empty without one).
    ///
    /// # Errors
    /// The refusal, with its challenge and, for a signature that is missing or does not fit,
    /// `Accept-Signature`.
    pub async fn check(
        &self,
        parts: &http::request::Parts,
        verified: &Verified,
        body: &[u8],
    ) -> Result<VerifiedSignature, Refusal> {
        let result = self.check_kind(parts, verified, body).await;
        result.map_err(|kind| {
            tracing::debug!(target: "tower_pop::verify", kind = kind.as_str(), "request signature refused");
            self.refusal(PopError::with_scheme(kind, verified.scheme()), !body.is_empty())
        })
    }

    /// The refusal for a request that reached the signature check without a verified token
    /// (the signature layer outside the token layer): 401, as without credentials.
    pub fn refuse_unverified(&self) -> Refusal {
        self.refusal(PopError::new(PopErrorKind::MissingCredentials), false)
    }

    /// The refusal for a body that could not be read whole: 413 when it is over
    /// [`SignaturePolicy::max_body`], else 400 (it broke off).
    pub fn refuse_body(&self, verified: &Verified, too_large: bool) -> Refusal {
        let kind = if too_large {
            PopErrorKind::BodyTooLarge
        } else {
            PopErrorKind::InvalidRequest
        };
        self.refusal(PopError::with_scheme(kind, verified.scheme()), true)
    }

    /// The refusal for `error`: the verifier's challenge, with `Accept-Signature` on a 401.
    fn refusal(&self, error: PopError, with_body: bool) -> Refusal {
        let challenge = self.verifier.challenge(&error);
        let challenge = if error.status() == 401 {
            let accept = Arc::clone(&self.accept[usize::from(with_body)]);
            let headers = challenge.headers().clone().with_accept_signature(accept);
            challenge.with_headers(headers)
        } else {
            challenge
        };
        Refusal::new(error, challenge)
    }

    async fn check_kind(
        &self,
        parts: &http::request::Parts,
        verified: &Verified,
        body: &[u8],
    ) -> Result<VerifiedSignature, PopErrorKind> {
        let config = self.verifier.config();
        let signatures = fields::signatures(&parts.headers).map_err(|e| match e {
            FieldError::Absent => PopErrorKind::MissingSignature,
            FieldError::Malformed => PopErrorKind::MalformedSignature,
        })?;
        let with_body = !body.is_empty();
        let Labelled {
            label,
            params,
            signature,
        } = signatures
            .into_iter()
            .find(|s| self.covers(&s.params, with_body))
            .ok_or(PopErrorKind::SignatureCoverage)?;
        let now = config.clock.now_unix();
        let meta = Metadata::read(&params)?;
        let window_start = now.saturating_sub(config.proof_max_age);
        if meta.created < window_start
            || meta.created > now.saturating_add(config.proof_future_skew)
            || meta.expires.is_some_and(|e| e <= now)
        {
            return Err(PopErrorKind::SignatureExpired);
        }
        let (key, thumbprint) = self.bound_key(parts, verified)?;
        if meta
            .keyid
            .is_some_and(|id| !ct_eq(id.as_bytes(), thumbprint.as_bytes()))
            || meta.alg.is_some_and(|alg| alg != key.algorithm().as_str())
        {
            return Err(PopErrorKind::InvalidSignature);
        }
        // The body is covered only through a checked digest (RFC 9421 §7.2.8).
        if with_body || parts.headers.contains_key("content-digest") {
            digest::check(&parts.headers, body).map_err(|e| match e {
                DigestError::Mismatch => PopErrorKind::ContentDigestMismatch,
                DigestError::Malformed => PopErrorKind::MalformedSignature,
            })?;
        }
        let target = self.target(parts);
        let base = signature_base(&params, &Message::Request(target)).map_err(|e| match e {
            BaseError::Component => PopErrorKind::InvalidSignature,
            BaseError::Malformed => PopErrorKind::MalformedSignature,
        })?;
        if !key.verify(base.as_bytes(), &signature) {
            return Err(PopErrorKind::InvalidSignature);
        }
        self.record(&key, thumbprint, &signature, meta.created, now)
            .await?;
        Ok(VerifiedSignature {
            label,
            created: meta.created,
            algorithm: key.algorithm(),
        })
    }

    /// Whether `params` covers every required component (and `content-digest` with a body),
    /// each as a bare identifier.
    fn covers(&self, params: &InnerList, with_body: bool) -> bool {
        let has = |wanted: &Item| params.items.iter().any(|item| item == wanted);
        self.required.iter().all(has) && (!with_body || has(&self.content_digest))
    }

    /// The token's bound key and its thumbprint (`keyid` must equal it when present).
    fn bound_key<'v>(
        &self,
        parts: &http::request::Parts,
        verified: &'v Verified,
    ) -> Result<(BoundKey<'v>, &'v str), PopErrorKind> {
        let config = self.verifier.config();
        match verified.binding() {
            Binding::Dpop | Binding::DpopAndMtls => {
                let jkt = verified.jkt().ok_or(PopErrorKind::InvalidSignature)?;
                // The key its token kept when a proof by it first verified, with its import.
                if let Some((key, alg, imported)) =
                    verified.proven.as_ref().and_then(ProvenKey::shown)
                {
                    let key =
                        BoundKey::from_jwk(key, &config.dpop_algorithms, Some((alg, imported)))
                            .ok_or(PopErrorKind::InvalidSignature)?;
                    return Ok((key, jkt));
                }
                // Else the proof the verifier accepted, read again for its key: its thumbprint
                // was compared with `cnf.jkt` on this very value.
                let value = parts
                    .headers
                    .get("dpop")
                    .ok_or(PopErrorKind::InvalidSignature)?;
                let mut bytes = ProofBytes::default();
                let proof = Proof::parse(value.as_bytes(), &config.dpop_algorithms, &mut bytes)
                    .map_err(|_| PopErrorKind::InvalidSignature)?;
                // The same check the proof passed, again: nothing may have changed the header.
                proof
                    .check_key_binding(jkt)
                    .map_err(|_| PopErrorKind::InvalidSignature)?;
                let key = BoundKey::from_jwk(&proof.key, &config.dpop_algorithms, None)
                    .ok_or(PopErrorKind::InvalidSignature)?;
                Ok((key, jkt))
            }
            Binding::Mtls => {
                let x5t = verified
                    .certificate_thumbprint()
                    .ok_or(PopErrorKind::InvalidSignature)?;
                let request = PopRequest::from(parts);
                let certificate = ClientCertificate::new(&request, config.forwarded.as_ref());
                let der = certificate.der().ok_or(PopErrorKind::InvalidSignature)?;
                if !ct_eq(x5t_s256(der).as_bytes(), x5t.as_bytes()) {
                    return Err(PopErrorKind::InvalidSignature);
                }
                let der = rustls_pki_types::CertificateDer::from(der);
                let cert = webpki::EndEntityCert::try_from(&der)
                    .map_err(|_| PopErrorKind::InvalidSignature)?;
                let spki = cert.subject_public_key_info();
                let key = BoundKey::from_spki(spki.as_ref(), &config.dpop_algorithms)
                    .ok_or(PopErrorKind::InvalidSignature)?;
                Ok((key, x5t))
            }
            // No key to sign with: a signature by the token's key cannot exist.
            _ => Err(PopErrorKind::InvalidSignature),
        }
    }

    /// The request as its derived components see it: the public origin, and the path and
    /// query as received (or as the trusted proxy reported them).
    fn target<'p>(&'p self, parts: &'p http::request::Parts) -> RequestTarget<'p> {
        let uri = OriginalTarget::or(&parts.extensions, &parts.uri);
        RequestTarget {
            method: parts.method.as_str(),
            scheme: &self.scheme,
            authority: &self.authority,
            path: uri.path(),
            query: uri.query(),
            headers: &parts.headers,
        }
    }

    /// Single use (RFC 9421 §7.2.2): the signature, under the bound key, recorded until its
    /// `created` leaves the window, within the key's share of the store (the same quota as its
    /// DPoP proofs: a certificate-bound client, which sends no proofs, is bounded too). An ECDSA
    /// signature is recorded in its low-`s` form: `(r, n - s)` verifies as well as `(r, s)`, and
    /// must not count as another signature.
    async fn record(
        &self,
        key: &BoundKey<'_>,
        thumbprint: &str,
        signature: &[u8],
        created: u64,
        now: u64,
    ) -> Result<(), PopErrorKind> {
        let config = self.verifier.config();
        let mut h = self.replay_hasher.clone();
        h.update(thumbprint.as_bytes());
        h.update(b"\0");
        h.update(key.canonical_signature(signature));
        let expires_at = created
            .saturating_add(config.proof_max_age)
            .saturating_add(1)
            .saturating_add(defaults::REPLAY_RETENTION_MARGIN.as_secs());
        let entry = ReplayEntry::new(h.finalize().into(), now, expires_at);
        let owner = owner_key(thumbprint);
        self.verifier
            .record(
                entry,
                &owner,
                thumbprint,
                now,
                PopErrorKind::SignatureReplayed,
            )
            .await
    }
}

/// The signature parameters of RFC 9421 §2.3, typed.
struct Metadata<'p> {
    created: u64,
    expires: Option<u64>,
    keyid: Option<&'p str>,
    alg: Option<&'p str>,
}

impl<'p> Metadata<'p> {
    fn read(params: &'p InnerList) -> Result<Self, PopErrorKind> {
        let mut meta = Metadata {
            created: 0,
            expires: None,
            keyid: None,
            alg: None,
        };
        let mut created = None;
        for (name, value) in &params.params {
            let integer = || match value {
                BareItem::Integer(i) => {
                    u64::try_from(i64::from(*i)).map_err(|_| PopErrorKind::MalformedSignature)
                }
                _ => Err(PopErrorKind::MalformedSignature),
            };
            let string = || match value {
                BareItem::String(s) => Ok(s.as_str()),
                _ => Err(PopErrorKind::MalformedSignature),
            };
            match name.as_str() {
                "created" => created = Some(integer()?),
                "expires" => meta.expires = Some(integer()?),
                "keyid" => meta.keyid = Some(string()?),
                "alg" => meta.alg = Some(string()?),
                "nonce" | "tag" => {
                    string()?;
                }
                // Parameters outside the registry are refused rather than ignored.
                _ => return Err(PopErrorKind::MalformedSignature),
            }
        }
        meta.created = created.ok_or(PopErrorKind::SignatureExpired)?;
        Ok(meta)
    }
}
