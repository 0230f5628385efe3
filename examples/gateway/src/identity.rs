//! The fields the upstream is told the verified identity in, from the verified token only:
//! `X-Pop-Sub` (`sub`), `X-Pop-Binding` (`dpop`, `mtls`, `dpop+mtls` or `bearer`), `X-Pop-Jkt`
//! (the DPoP key's RFC 7638 thumbprint), `X-Pop-X5t-S256` (the client certificate's),
//! `X-Pop-Client-Id` (`client_id`, RFC 9068 §2.2) and `X-Pop-Scope` (`scope`, RFC 9068 §2.2.3).
//! A field is absent when the token has no such claim; a claim that cannot be written as a
//! plain field value is refused, never mangled.

use http::header::{HeaderName, HeaderValue};
use serde_json::Value;
use tower_pop::Verified;

/// The token's `sub`.
pub const X_POP_SUB: &str = "x-pop-sub";
/// The binding proven: `dpop`, `mtls`, `dpop+mtls` or `bearer`.
pub const X_POP_BINDING: &str = "x-pop-binding";
/// The RFC 7638 thumbprint of the proven DPoP key.
pub const X_POP_JKT: &str = "x-pop-jkt";
/// The `x5t#S256` of the proven client certificate.
pub const X_POP_X5T_S256: &str = "x-pop-x5t-s256";
/// The token's `client_id` (RFC 9068 §2.2).
pub const X_POP_CLIENT_ID: &str = "x-pop-client-id";
/// The token's `scope` (RFC 9068 §2.2.3).
pub const X_POP_SCOPE: &str = "x-pop-scope";

/// The identity fields for a verified request. A claim the upstream would be told about but
/// that is not a string, or not a valid field value (control characters, non-ASCII), is an
/// error: the gateway then refuses the token (401 `invalid_token`) rather than forward a partial
/// or mangled identity.
///
/// # Errors
/// [`UnsafeClaim`] naming the claim that cannot be written as a field value.
pub fn identity_headers(
    verified: &Verified,
) -> Result<Vec<(HeaderName, HeaderValue)>, UnsafeClaim> {
    let claim = |name: &'static str| -> Result<Option<HeaderValue>, UnsafeClaim> {
        match verified.claims().get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => safe_value(s).map(Some).ok_or(UnsafeClaim(name)),
            Some(_) => Err(UnsafeClaim(name)),
        }
    };
    let thumbprint = |name: &'static str, value: Option<&str>| match value {
        Some(v) => safe_value(v).map(Some).ok_or(UnsafeClaim(name)),
        None => Ok(None),
    };
    let mut fields = Vec::with_capacity(6);
    let mut add = |name: &'static str, value: Option<HeaderValue>| {
        if let Some(value) = value {
            fields.push((HeaderName::from_static(name), value));
        }
    };
    add(X_POP_SUB, claim("sub")?);
    add(
        X_POP_BINDING,
        Some(HeaderValue::from_static(verified.binding().as_str())),
    );
    add(X_POP_JKT, thumbprint("cnf.jkt", verified.jkt())?);
    add(
        X_POP_X5T_S256,
        thumbprint("cnf.x5t#S256", verified.certificate_thumbprint())?,
    );
    add(X_POP_CLIENT_ID, claim("client_id")?);
    add(X_POP_SCOPE, claim("scope")?);
    Ok(fields)
}

/// A verified token's claim that cannot become an identity field (its name; never its value,
/// which may be personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsafeClaim(pub &'static str);

impl std::fmt::Display for UnsafeClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "claim {} is not a plain visible-ASCII string", self.0)
    }
}

impl std::error::Error for UnsafeClaim {}

/// A field value of visible ASCII and inner spaces only (RFC 9110 §5.5, without obs-text), at
/// most 4 KiB.
fn safe_value(s: &str) -> Option<HeaderValue> {
    let ok = !s.is_empty()
        && s.len() <= 4096
        && s.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && !s.starts_with(' ')
        && !s.ends_with(' ');
    if !ok {
        return None;
    }
    HeaderValue::from_str(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values_must_be_safe() {
        assert!(safe_value("user-1 x").is_some());
        for bad in [
            "",
            " x",
            "a\r\nX-Pop-Sub: admin",
            "é",
            "a\u{7f}",
            &"a".repeat(5000),
        ] {
            assert!(safe_value(bad).is_none(), "{bad:?}");
        }
    }
}
