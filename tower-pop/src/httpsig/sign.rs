//! Signing messages (RFC 9421 §3.1) with a [`ProofSigner`]'s key: requests by a client, with
//! the same key as its DPoP proofs, and responses by a server (§2.4, covering the request's
//! signature with `req`, for non-repudiation).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue};
use sfv::{BareItem, InnerList, Item, Parameters};

use super::base::{Message, RequestTarget, serialize_inner_list, signature_base};
use super::digest::{DigestAlgorithm, content_digest};
use super::key::SignatureAlgorithm;
use crate::dpop::signer::{ProofSigner, SignerError};
use crate::jose::Algorithm;

/// The RFC 9421 algorithm `signer`'s key signs with: the one its key type implies (RFC 9421
/// §3.3; RSA keys sign `rsa-pss-sha512` whatever their JOSE algorithm).
fn http_algorithm(signer: &ProofSigner) -> Result<SignatureAlgorithm, SignerError> {
    Ok(match signer.algorithm() {
        Algorithm::ES256 => SignatureAlgorithm::EcdsaP256Sha256,
        Algorithm::ES384 => SignatureAlgorithm::EcdsaP384Sha384,
        Algorithm::EdDSA | Algorithm::Ed25519 => SignatureAlgorithm::Ed25519,
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => SignatureAlgorithm::RsaPssSha512,
        // P-521 has no RFC 9421 algorithm.
        Algorithm::ES512 => return Err(SignerError::SIGNING),
    })
}

/// An RFC 9421 signature over `base` by `signer`, with [`http_algorithm`].
pub(crate) fn sign_http(
    signer: &ProofSigner,
    base: &[u8],
) -> Result<(SignatureAlgorithm, Vec<u8>), SignerError> {
    let algorithm = http_algorithm(signer)?;
    let signature = match algorithm {
        SignatureAlgorithm::RsaPssSha512 => signer.sign_rsa_pss_sha512(base)?,
        _ => signer.sign_bytes(base)?,
    };
    Ok((algorithm, signature))
}

/// What a request signature covers by default: what [`super::SignaturePolicy::new`] requires.
pub const REQUEST_COMPONENTS: [&str; 3] = super::DEFAULT_COMPONENTS;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn string(value: &str) -> Result<sfv::String, SignerError> {
    sfv::String::from_string(value.to_owned()).map_err(|_| SignerError::SIGNING)
}

/// The parameters of one signature: label, covered components, `created`, `keyid`.
#[derive(Debug, Clone)]
#[must_use]
pub struct SignatureOptions {
    label: String,
    components: Vec<Item>,
    created: Option<u64>,
    keyid: Option<String>,
    tag: Option<String>,
}

impl SignatureOptions {
    /// A signature labelled `sig1` over `components` (field names lowercase, derived components
    /// with `@`), `created` now, `keyid` the key's RFC 7638 thumbprint.
    pub fn new(components: &[&str]) -> Self {
        Self {
            label: "sig1".to_owned(),
            components: components
                .iter()
                .filter_map(|c| string(c).ok())
                .map(|c| Item::new(BareItem::String(c)))
                .collect(),
            created: None,
            keyid: None,
            tag: None,
        }
    }

    /// Another label.
    pub fn label(mut self, label: &str) -> Self {
        label.clone_into(&mut self.label);
        self
    }

    /// Cover one more component, given as an identifier with its parameters (e.g.
    /// `"signature";req;key="sig1"`).
    ///
    /// # Errors
    /// When `identifier` is not a structured-field string item.
    pub fn cover_identifier(mut self, identifier: &str) -> Result<Self, SignerError> {
        let item: Item = sfv::Parser::new(identifier)
            .parse()
            .map_err(|_| SignerError::SIGNING)?;
        self.components.push(item);
        Ok(self)
    }

    /// A fixed `created` (UNIX seconds) instead of now.
    pub fn created(mut self, created: u64) -> Self {
        self.created = Some(created);
        self
    }

    /// Another `keyid` than the key's thumbprint.
    pub fn keyid(mut self, keyid: &str) -> Self {
        self.keyid = Some(keyid.to_owned());
        self
    }

    /// A `tag` (RFC 9421 §2.3).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = Some(tag.to_owned());
        self
    }

    fn has(&self, name: &str) -> bool {
        self.components.iter().any(|c| {
            matches!(&c.bare_item, BareItem::String(s) if s.as_str() == name) && c.params.is_empty()
        })
    }

    fn params(&self, signer: &ProofSigner, alg: &str) -> Result<InnerList, SignerError> {
        let mut params = Parameters::new();
        let created = self.created.unwrap_or_else(now_unix);
        let created = i64::try_from(created).map_err(|_| SignerError::SIGNING)?;
        params.insert(
            sfv::key_ref("created").to_owned(),
            BareItem::Integer(sfv::Integer::try_from(created).map_err(|_| SignerError::SIGNING)?),
        );
        let keyid = self.keyid.as_deref().unwrap_or(signer.thumbprint());
        params.insert(
            sfv::key_ref("keyid").to_owned(),
            BareItem::String(string(keyid)?),
        );
        params.insert(
            sfv::key_ref("alg").to_owned(),
            BareItem::String(string(alg)?),
        );
        if let Some(tag) = &self.tag {
            params.insert(
                sfv::key_ref("tag").to_owned(),
                BareItem::String(string(tag)?),
            );
        }
        Ok(InnerList::with_params(self.components.clone(), params))
    }
}

/// Sign `message`, whose headers are `headers`, and add `Signature-Input` and `Signature`.
fn sign_into(
    signer: &ProofSigner,
    options: &SignatureOptions,
    message: &Message<'_>,
    headers: &mut HeaderMap,
) -> Result<(), SignerError> {
    // The algorithm is the key's, named in the parameters before signing.
    let alg = http_algorithm(signer)?.as_str();
    let params = options.params(signer, alg)?;
    let base = signature_base(&params, message).map_err(|_| SignerError::SIGNING)?;
    let (_, signature) = sign_http(signer, base.as_bytes())?;
    let input = format!("{}={}", options.label, serialize_inner_list(&params));
    let signature = format!("{}=:{}:", options.label, STANDARD.encode(signature));
    headers.append(
        "signature-input",
        HeaderValue::from_str(&input).map_err(|_| SignerError::SIGNING)?,
    );
    headers.append(
        "signature",
        HeaderValue::from_str(&signature).map_err(|_| SignerError::SIGNING)?,
    );
    Ok(())
}

/// The request target of an absolute URI, as a client sends it.
fn client_target<'a>(
    method: &'a str,
    uri: &'a http::Uri,
    authority: &'a str,
    headers: &'a HeaderMap,
) -> Result<RequestTarget<'a>, SignerError> {
    Ok(RequestTarget {
        method,
        scheme: uri.scheme_str().ok_or(SignerError::SIGNING)?,
        authority,
        path: uri.path(),
        query: uri.query(),
        headers,
    })
}

/// RFC 9421 §2.2.3: the authority in lowercase, without the scheme's default port.
fn normal_authority(uri: &http::Uri) -> Result<String, SignerError> {
    let authority = uri.authority().ok_or(SignerError::SIGNING)?;
    let host = authority.host().to_ascii_lowercase();
    let default = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    Ok(match authority.port_u16() {
        Some(port) if Some(port) != default => format!("{host}:{port}"),
        _ => host,
    })
}

/// Sign a request (RFC 9421 §3.1) with `signer`: adds `Content-Digest` (SHA-256, RFC 9530)
/// when `body` is not empty, covering it, then `Signature-Input` and `Signature`. `request`'s
/// URI must be absolute (`https://host/path`), as a client sends it. Headers the signature
/// covers, such as `Authorization` and `DPoP`, must already be set.
///
/// # Errors
/// When a covered component is absent or the key cannot sign.
pub fn sign_request(
    signer: &ProofSigner,
    options: &SignatureOptions,
    request: &mut http::request::Parts,
    body: &[u8],
) -> Result<(), SignerError> {
    let mut options = options.clone();
    if !body.is_empty() {
        let digest = content_digest(DigestAlgorithm::Sha256, body);
        request.headers.insert(
            "content-digest",
            HeaderValue::from_str(&digest).map_err(|_| SignerError::SIGNING)?,
        );
        if !options.has("content-digest") {
            options = SignatureOptions {
                components: {
                    let mut c = options.components;
                    c.push(Item::new(BareItem::String(string("content-digest")?)));
                    c
                },
                ..options
            };
        }
    }
    let authority = normal_authority(&request.uri)?;
    let mut headers = std::mem::take(&mut request.headers);
    let result = {
        let target = client_target(request.method.as_str(), &request.uri, &authority, &headers)?;
        let message = Message::Request(target);
        let mut added = HeaderMap::new();
        sign_into(signer, &options, &message, &mut added).map(|()| added)
    };
    match result {
        Ok(added) => {
            for (name, value) in &added {
                headers.append(name, value.clone());
            }
            request.headers = headers;
            Ok(())
        }
        Err(e) => {
            request.headers = headers;
            Err(e)
        }
    }
}

/// Sign a response (RFC 9421 §2.4, §3.1) with a server key: adds `Content-Digest` for `body`
/// and a signature labelled `options`' label over `@status`, `content-digest` and, when the
/// request carried a signature labelled `request_label`, that signature (`"signature";req;key=`),
/// binding the answer to the request it answers. `request` is the request as the server saw it,
/// with its public `scheme` and `authority`.
///
/// # Errors
/// When a covered component is absent or the key cannot sign.
#[allow(clippy::too_many_arguments)]
pub fn sign_response(
    signer: &ProofSigner,
    options: &SignatureOptions,
    status: u16,
    headers: &mut HeaderMap,
    body: &[u8],
    request: Option<(&http::request::Parts, &str, &str)>,
    request_label: Option<&str>,
) -> Result<(), SignerError> {
    let digest = content_digest(DigestAlgorithm::Sha256, body);
    headers.insert(
        "content-digest",
        HeaderValue::from_str(&digest).map_err(|_| SignerError::SIGNING)?,
    );
    let mut options = options.clone();
    for name in ["@status", "content-digest"] {
        if !options.has(name) {
            options
                .components
                .push(Item::new(BareItem::String(string(name)?)));
        }
    }
    if let (Some(_), Some(label)) = (request, request_label) {
        let label = string(label)?;
        let mut item = Item::new(BareItem::String(string("signature")?));
        item.params
            .insert(sfv::key_ref("req").to_owned(), BareItem::Boolean(true));
        item.params
            .insert(sfv::key_ref("key").to_owned(), BareItem::String(label));
        options.components.push(item);
    }
    let target = request.map(|(parts, scheme, authority)| RequestTarget {
        method: parts.method.as_str(),
        scheme,
        authority,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
    });
    let mut added = HeaderMap::new();
    let message = Message::Response {
        status,
        headers,
        request: target,
    };
    sign_into(signer, &options, &message, &mut added)?;
    for (name, value) in &added {
        headers.append(name, value.clone());
    }
    Ok(())
}
