//! The JWS compact serialisation (RFC 7515 §7.1) cut into its parts, and the one reader of a
//! JWS protected header, shared by DPoP proofs (RFC 9449 §4.2) and access tokens (RFC 9068 §4).
//!
//! Header rules for both: `typ` names the profile's media type (RFC 7515 §4.1.9: compared
//! case-insensitively, with or without `application/`); no `crit` or `b64` that we would have
//! to honour (RFC 7515 §4.1.11, RFC 7797) and no nested content (`cty`, RFC 8725 §3.11); an
//! `alg` on the caller's allow-list (RFC 8725 §3.1: `none` and HMAC have no [`Algorithm`]).
//! Each profile reads the key hint it uses: `jwk` for a proof, `kid` for a token.

use super::Algorithm;
use super::json::{Member, parse_json_members};

/// What a profile requires of a JWS protected header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderRules<'r> {
    /// The media type `typ` must name (`dpop+jwt`, `at+jwt`), or `None` when `typ` is not checked
    /// (a plain JWT issuer, RFC 7519).
    pub(crate) typ: Option<&'r str>,
    /// The algorithms allowed.
    pub(crate) algorithms: &'r [Algorithm],
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not strict JSON, a wrong or missing `typ`, an extension we refuse, no `alg` string.
    Malformed,
    /// An `alg` that is unknown or not on the allow-list.
    UnsupportedAlgorithm,
}

/// A header that passed [`read_header`]: its `alg`, and the key hints as sent.
pub(crate) struct Header<'h> {
    pub(crate) alg: Algorithm,
    pub(crate) jwk: Option<Member<'h>>,
    pub(crate) kid: Option<Member<'h>>,
}

/// Read the decoded protected header `json` under `rules`, in order: strict JSON, `typ`, no
/// `crit`, `b64` or `cty`, then `alg`.
pub(crate) fn read_header<'h>(
    json: &'h [u8],
    rules: &HeaderRules<'_>,
) -> Result<Header<'h>, HeaderError> {
    const NAMES: [&str; 7] = ["typ", "alg", "jwk", "kid", "crit", "b64", "cty"];
    let [typ, alg, jwk, kid, crit, b64, cty] =
        parse_json_members(json, &NAMES).ok_or(HeaderError::Malformed)?;
    if let Some(expected) = rules.typ
        && !typ
            .as_ref()
            .and_then(Member::as_str)
            .is_some_and(|t| is_media_type(t, expected))
    {
        return Err(HeaderError::Malformed);
    }
    if crit.is_some() || b64.is_some() || cty.is_some() {
        return Err(HeaderError::Malformed);
    }
    let name = alg
        .as_ref()
        .and_then(Member::as_str)
        .ok_or(HeaderError::Malformed)?;
    let alg = name
        .parse::<Algorithm>()
        .ok()
        .filter(|a| rules.algorithms.contains(a))
        .ok_or(HeaderError::UnsupportedAlgorithm)?;
    Ok(Header { alg, jwk, kid })
}

/// Whether `typ` names the media type `expected`, case-insensitively, with or without the
/// `application/` prefix (RFC 7515 §4.1.9).
fn is_media_type(typ: &str, expected: &str) -> bool {
    let typ = typ.as_bytes();
    let bare = match typ.split_at_checked(12) {
        Some((prefix, rest)) if prefix.eq_ignore_ascii_case(b"application/") => rest,
        _ => typ,
    };
    bare.eq_ignore_ascii_case(expected.as_bytes())
}

/// A compact JWS cut at its dots (RFC 7515 §7.1), each part still base64url, so a reader decodes
/// each part only when the checks before it have passed. Bytes, not text: every part is
/// decoded as base64url, which refuses anything else, so no UTF-8 check is needed first.
pub(crate) struct CompactJws<'a> {
    pub(crate) signing_input: &'a [u8],
    pub(crate) header: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) signature: &'a [u8],
}

impl<'a> CompactJws<'a> {
    /// Exactly three non-empty parts.
    pub(crate) fn split(input: &'a [u8]) -> Option<Self> {
        let first = memchr::memchr(b'.', input)?;
        let (header, rest) = (input.get(..first)?, input.get(first + 1..)?);
        let second = memchr::memchr(b'.', rest)?;
        let (payload, signature) = (rest.get(..second)?, rest.get(second + 1..)?);
        if memchr::memchr(b'.', signature).is_some()
            || header.is_empty()
            || payload.is_empty()
            || signature.is_empty()
        {
            return None;
        }
        Some(Self {
            signing_input: input.get(..first + 1 + second)?,
            header,
            payload,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JOSE-03, JOSE-04, DPOP-04: one header reader for both profiles.
    #[test]
    fn one_header_reader_for_proofs_and_tokens() {
        let proof = HeaderRules {
            typ: Some("dpop+jwt"),
            algorithms: &[Algorithm::ES256],
        };
        let read = |json: &str, rules: &HeaderRules<'_>| {
            read_header(json.as_bytes(), rules).map(|h| h.alg)
        };
        assert_eq!(
            read(r#"{"typ":"dpop+jwt","alg":"ES256"}"#, &proof),
            Ok(Algorithm::ES256)
        );
        assert_eq!(
            read(r#"{"typ":"APPLICATION/DPoP+JWT","alg":"ES256"}"#, &proof),
            Ok(Algorithm::ES256)
        );
        for bad in [
            r#"{"alg":"ES256"}"#,
            r#"{"typ":"jwt","alg":"ES256"}"#,
            r#"{"typ":"application/","alg":"ES256"}"#,
            r#"{"typ":7,"alg":"ES256"}"#,
            r#"{"typ":"dpop+jwt","alg":"ES256","crit":["x"]}"#,
            r#"{"typ":"dpop+jwt","alg":"ES256","b64":false}"#,
            r#"{"typ":"dpop+jwt","alg":"ES256","cty":"JWT"}"#,
            r#"{"typ":"dpop+jwt"}"#,
            r#"{"typ":"dpop+jwt","alg":1}"#,
            r#"{"typ":"dpop+jwt","alg":"ES256","alg":"ES256"}"#,
        ] {
            assert_eq!(read(bad, &proof), Err(HeaderError::Malformed), "{bad}");
        }
        for bad in [
            r#"{"typ":"dpop+jwt","alg":"PS256"}"#,
            r#"{"typ":"dpop+jwt","alg":"none"}"#,
        ] {
            assert_eq!(
                read(bad, &proof),
                Err(HeaderError::UnsupportedAlgorithm),
                "{bad}"
            );
        }
        let token = HeaderRules {
            typ: None,
            algorithms: &[Algorithm::RS256],
        };
        assert_eq!(
            read(r#"{"alg":"RS256","kid":"k"}"#, &token),
            Ok(Algorithm::RS256)
        );
        assert_eq!(
            read(r#"{"alg":"RS256","cty":"JWT"}"#, &token),
            Err(HeaderError::Malformed)
        );
    }

    #[test]
    fn compact_jws_needs_exactly_three_parts() {
        for bad in [
            "a.b",
            "",
            "e30.e30.AA.AA.AA",
            "e30.e30.AA.",
            "e30.e30.",
            ".e30.AA",
            "e30..AA",
            "..",
            "...",
        ] {
            assert!(CompactJws::split(bad.as_bytes()).is_none(), "{bad}");
        }
        let jws = CompactJws::split(b"e30.e31.AA").expect("three parts");
        assert_eq!(
            (jws.signing_input, jws.header, jws.payload, jws.signature),
            (&b"e30.e31"[..], &b"e30"[..], &b"e31"[..], &b"AA"[..])
        );
    }
}
