//! The signature base (RFC 9421 §2.5): component values of a message, derived (§2.2) or from
//! its fields (§2.1, with the `sf`, `key`, `bs` and `req` parameters), one line each, then the
//! `@signature-params` line (§2.3).
//!
//! Everything here is deterministic and pinned by the RFC's Appendix B vectors; structured
//! fields are parsed and serialized by `sfv` (RFC 8941), never by hand (§7.5.3).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use sfv::{BareItem, Dictionary, FieldType as _, InnerList, Item, List, ListEntry, Parser};

/// Why a signature base cannot be built; every one fails verification (RFC 9421 §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BaseError {
    /// A covered component is absent, unknown, repeated or malformed.
    Component,
    /// The covered list or a parameter is not of the type RFC 9421 requires.
    Malformed,
}

/// The request half of a message: what the derived components of RFC 9421 §2.2 read.
/// `scheme` and `authority` are the public ones (configured), never the `Host` header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestTarget<'a> {
    pub(crate) method: &'a str,
    pub(crate) scheme: &'a str,
    pub(crate) authority: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
}

/// A message to sign or verify: a request, or a response with the request it answers (for
/// components with `req`, RFC 9421 §2.4).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Message<'a> {
    /// A request.
    Request(RequestTarget<'a>),
    /// A response: its status, its fields, and the request it answers.
    #[cfg_attr(not(any(test, feature = "signer")), allow(dead_code))]
    Response {
        status: u16,
        headers: &'a HeaderMap,
        request: Option<RequestTarget<'a>>,
    },
}

/// The fields whose structured type we know, for `;sf` and `;key` (RFC 9421 §2.1.1): all are
/// Dictionaries.
const DICTIONARY_FIELDS: [&str; 6] = [
    "content-digest",
    "repr-digest",
    "signature-input",
    "signature",
    "accept-signature",
    "want-content-digest",
];

/// At most this many covered components per signature: a request needs a handful, and each one
/// costs a field read; more is malformed.
pub(crate) const MAX_COMPONENTS: usize = 32;
/// The longest signature base built (bytes); a longer one is refused before any signature work.
const MAX_BASE_LEN: usize = 64 * 1024;

/// The parameters a component identifier may carry (RFC 9421 §2.1, §2.2.8, §2.4); `tr` (trailers)
/// is not supported: a layer sees no trailers before the handler.
const FIELD_PARAMS: [&str; 4] = ["sf", "key", "bs", "req"];

/// The signature base for the covered components and signature parameters in `params` (the
/// `Signature-Input` member, items and parameters in the order received).
pub(crate) fn signature_base(
    params: &InnerList,
    message: &Message<'_>,
) -> Result<String, BaseError> {
    if params.items.len() > MAX_COMPONENTS {
        return Err(BaseError::Malformed);
    }
    let mut base = String::with_capacity(256);
    // The query, decoded once for every `@query-param` of this base.
    let mut query = QueryParams::default();
    for (i, component) in params.items.iter().enumerate() {
        // The same identifier twice, parameters compared as a set, is an error (§2.5 step 2.1).
        if params.items[..i]
            .iter()
            .any(|seen| same_identifier(seen, component))
        {
            return Err(BaseError::Component);
        }
        let _ = sfv::ItemSerializer::with_buffer(&mut base)
            .bare_item(&component.bare_item)
            .parameters(&component.params);
        base.push_str(": ");
        let value = component_value(component, message, &mut query)?;
        if value.bytes().any(|b| b == b'\n' || b == b'\r') {
            return Err(BaseError::Component);
        }
        base.push_str(&value);
        base.push('\n');
        if base.len() > MAX_BASE_LEN {
            return Err(BaseError::Component);
        }
    }
    base.push_str("\"@signature-params\": ");
    write_inner_list(&mut base, params);
    // §2.5 step 4: the base is ASCII.
    if !base.is_ascii() {
        return Err(BaseError::Component);
    }
    Ok(base)
}

/// An inner list serialized as RFC 8941 writes it: `("a" "b");p=1`.
#[cfg_attr(
    not(any(test, feature = "signer", feature = "fuzzing")),
    allow(dead_code)
)]
pub(crate) fn serialize_inner_list(list: &InnerList) -> String {
    let mut out = String::with_capacity(128);
    write_inner_list(&mut out, list);
    out
}

/// [`serialize_inner_list`] into `out`.
fn write_inner_list(out: &mut String, list: &InnerList) {
    let mut serializer = sfv::ListSerializer::with_buffer(out);
    let mut inner = serializer.inner_list();
    inner.items(&list.items);
    let _ = inner.finish().parameters(&list.params);
    let _ = serializer.finish();
}

fn same_identifier(a: &Item, b: &Item) -> bool {
    a.bare_item == b.bare_item
        && a.params.len() == b.params.len()
        && a.params.iter().all(|(k, v)| b.params.get(k) == Some(v))
}

/// A boolean parameter that is present must be `true` (`;req`, not `;req=?0`).
fn flag(item: &Item, name: &str) -> Result<bool, BaseError> {
    match item.params.get(name) {
        None => Ok(false),
        Some(BareItem::Boolean(true)) => Ok(true),
        Some(_) => Err(BaseError::Malformed),
    }
}

fn component_value<'m>(
    component: &Item,
    message: &Message<'m>,
    query: &mut QueryParams,
) -> Result<Cow<'m, str>, BaseError> {
    let BareItem::String(name) = &component.bare_item else {
        return Err(BaseError::Malformed);
    };
    let name = name.as_str();
    let req = flag(component, "req")?;
    // `req` names the request a response answers; never allowed on a request (§2.4).
    let (target, headers) = match (message, req) {
        (Message::Request(_), true) => return Err(BaseError::Component),
        (Message::Request(request), false) => (Some(*request), request.headers),
        (Message::Response { request, .. }, true) => {
            let request = request.ok_or(BaseError::Component)?;
            (Some(request), request.headers)
        }
        (Message::Response { headers, .. }, false) => (None, *headers),
    };
    if let Some(derived) = name.strip_prefix('@') {
        return derived_value(derived, component, target, message, req, query);
    }
    for key in component.params.keys() {
        if !FIELD_PARAMS.contains(&key.as_str()) {
            return Err(BaseError::Component);
        }
    }
    field_value(name, component, headers).map(Cow::Owned)
}

fn derived_value<'m>(
    name: &str,
    component: &Item,
    target: Option<RequestTarget<'m>>,
    message: &Message<'m>,
    req: bool,
    query: &mut QueryParams,
) -> Result<Cow<'m, str>, BaseError> {
    // Only `req`, and `name` on `@query-param`, apply to derived components.
    for key in component.params.keys() {
        let allowed = key.as_str() == "req" || (name == "query-param" && key.as_str() == "name");
        if !allowed {
            return Err(BaseError::Component);
        }
    }
    if name == "status" {
        return match (message, req) {
            (Message::Response { status, .. }, false) => Ok(Cow::Owned(format!("{status:03}"))),
            _ => Err(BaseError::Component),
        };
    }
    let target = target.ok_or(BaseError::Component)?;
    let value = match name {
        "method" => Cow::Borrowed(target.method),
        "target-uri" => Cow::Owned(match target.query {
            Some(query) => format!(
                "{}://{}{}?{query}",
                target.scheme,
                target.authority,
                nonempty_path(target.path)
            ),
            None => format!(
                "{}://{}{}",
                target.scheme,
                target.authority,
                nonempty_path(target.path)
            ),
        }),
        "authority" => Cow::Borrowed(target.authority),
        "scheme" => Cow::Borrowed(target.scheme),
        "request-target" => Cow::Owned(match target.query {
            Some(query) => format!("{}?{query}", nonempty_path(target.path)),
            None => nonempty_path(target.path).to_owned(),
        }),
        "path" => Cow::Borrowed(nonempty_path(target.path)),
        "query" => Cow::Owned(format!("?{}", target.query.unwrap_or(""))),
        "query-param" => Cow::Owned(query.param(component, target.query)?),
        _ => return Err(BaseError::Component),
    };
    // Derived values are printable ASCII without surrounding whitespace (§2.2).
    let printable = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable || value.starts_with(' ') || value.ends_with(' ') {
        return Err(BaseError::Component);
    }
    Ok(value)
}

fn nonempty_path(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// The request's query as RFC 9421 §2.2.8 reads it: decoded as
/// `application/x-www-form-urlencoded`, then each name and value re-encoded with `%20` for a
/// space. Built once per base, at the first `@query-param`.
#[derive(Default)]
struct QueryParams(Option<Vec<(String, String)>>);

/// The longest query decoded for `@query-param` (bytes).
const MAX_QUERY_LEN: usize = 16 * 1024;

impl QueryParams {
    /// The one parameter named by the component's `name`; a name present twice cannot be
    /// signed.
    fn param(&mut self, component: &Item, query: Option<&str>) -> Result<String, BaseError> {
        let Some(BareItem::String(wanted)) = component.params.get("name") else {
            return Err(BaseError::Component);
        };
        if self.0.is_none() {
            let query = query.unwrap_or("");
            if query.len() > MAX_QUERY_LEN {
                return Err(BaseError::Component);
            }
            let pairs = form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (encode_query_part(&name), encode_query_part(&value)))
                .collect();
            self.0 = Some(pairs);
        }
        let pairs = self.0.as_deref().unwrap_or_default();
        let mut found = pairs.iter().filter(|(name, _)| name == wanted.as_str());
        match (found.next(), found.next()) {
            (Some((_, value)), None) => Ok(value.clone()),
            _ => Err(BaseError::Component),
        }
    }
}

/// The WHATWG "urlencoded" percent-encode set, with a space as `%20` rather than `+`.
const QUERY_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

fn encode_query_part(part: &str) -> String {
    percent_encoding::utf8_percent_encode(part, QUERY_SET).to_string()
}

/// RFC 9421 §2.1: every line of the field, trimmed, joined with `", "`; or its structured
/// re-serialization (`sf`), one dictionary member (`key`), or each line as a byte sequence (`bs`).
fn field_value(name: &str, component: &Item, headers: &HeaderMap) -> Result<String, BaseError> {
    // Field names in identifiers are lowercase (§2.1).
    if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(BaseError::Malformed);
    }
    let sf = flag(component, "sf")?;
    let bs = flag(component, "bs")?;
    let key = match component.params.get("key") {
        None => None,
        Some(BareItem::String(key)) => Some(key.as_str()),
        Some(_) => return Err(BaseError::Malformed),
    };
    if bs && (sf || key.is_some()) {
        return Err(BaseError::Component);
    }
    let mut lines = headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        return Err(BaseError::Component);
    }
    if bs {
        let encoded: Vec<String> = lines
            .map(|line| format!(":{}:", STANDARD.encode(trim(line.as_bytes()))))
            .collect();
        return Ok(encoded.join(", "));
    }
    let mut combined = String::new();
    for (i, line) in lines.enumerate() {
        // Field values that are not ASCII can only be covered with `bs` (§2.1).
        let line = std::str::from_utf8(trim(line.as_bytes()))
            .ok()
            .filter(|l| l.is_ascii())
            .ok_or(BaseError::Component)?;
        if i > 0 {
            combined.push_str(", ");
        }
        combined.push_str(line);
    }
    if !(sf || key.is_some()) {
        return Ok(combined);
    }
    if !DICTIONARY_FIELDS.contains(&name) || combined.len() > super::fields::MAX_FIELD_LEN {
        return Err(BaseError::Component);
    }
    let dictionary: Dictionary = Parser::new(&combined)
        .parse()
        .map_err(|_| BaseError::Component)?;
    match key {
        None => dictionary.serialize().ok_or(BaseError::Component),
        Some(key) => {
            let member = dictionary.get(key).ok_or(BaseError::Component)?;
            Ok(serialize_member(member))
        }
    }
}

/// One dictionary member's value as RFC 8941 serializes it, without its key.
fn serialize_member(member: &ListEntry) -> String {
    let list: List = vec![member.clone()];
    list.serialize().unwrap_or_default()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}
