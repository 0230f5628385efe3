//! The `Authorization` header (RFC 6750 §2.1, RFC 9449 §7.1, RFC 9110 §11).
//!
//! - schemes `Bearer` and `DPoP`, matched case-insensitively (RFC 9110 §11.1); any other scheme counts
//!   as no credentials (RFC 6750 §3.1);
//! - scheme, one or more spaces, one token68 (RFC 9449 §7.1 Fig. 12); a scheme with nothing after it is a
//!   malformed request (RFC 6750 §3.1);
//! - more than one field, or a comma (which token68 cannot contain, so a proxy folded two
//!   fields into one), is a malformed request (RFC 6750 §2, RFC 9110 §5.3).

use crate::error::{AuthScheme, PopError, PopErrorKind};
use crate::request::FieldValues;

/// Longest access token accepted, in bytes: bounds the work one request can ask for.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A scheme and its token.
#[derive(Clone, Copy)]
pub(crate) struct Credentials<'a> {
    pub(crate) scheme: AuthScheme,
    pub(crate) token: &'a str,
}

fn is_token68(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = token.get(..token.len() - padding).unwrap_or_default();
    // Branch-free comparisons folded without early exit: the whole token is scanned on every
    // request, and the compiler can vectorise these, unlike a table lookup per byte.
    !body.is_empty() && body.iter().fold(true, |ok, &b| ok & is_token68_char(b))
}

/// The token68 characters of RFC 9110 §11.2 (before the trailing `=`s): ALPHA, DIGIT and
/// `-._~+/`.
fn is_token68_char(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// Whether one comma-separated piece of a folded field starts with `Bearer ` or `DPoP `.
fn names_our_scheme(piece: &str) -> bool {
    let scheme = piece.trim_start().split(' ').next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop")
}

/// The scheme and token of the request's `Authorization` fields, or the precise error for each
/// way they can be wrong.
pub(crate) fn parse(values: FieldValues<'_>) -> Result<Credentials<'_>, PopError> {
    let Some(value) = values.first else {
        return Err(PopErrorKind::MissingCredentials.into());
    };
    if values.count > 1 {
        return Err(PopErrorKind::InvalidRequest.into());
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return Err(PopErrorKind::InvalidRequest.into());
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        AuthScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        AuthScheme::Dpop
    } else if value.split(',').any(names_our_scheme) {
        // A proxy folded an unknown scheme and one of ours into one field (AUTH-10).
        return Err(PopErrorKind::InvalidRequest.into());
    } else {
        return Err(PopErrorKind::MissingCredentials.into());
    };
    if value.contains(',') {
        return Err(PopErrorKind::InvalidRequest.into());
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(PopError::with_scheme(PopErrorKind::InvalidRequest, scheme));
    }
    if token.len() > MAX_TOKEN_LEN || !is_token68(token.as_bytes()) {
        return Err(PopError::with_scheme(PopErrorKind::TokenInvalid, scheme));
    }
    Ok(Credentials { scheme, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Result<(AuthScheme, String), PopErrorKind> {
        let values = FieldValues {
            first: Some(v.as_bytes()),
            count: 1,
            ..FieldValues::default()
        };
        parse(values)
            .map(|c| (c.scheme, c.token.to_owned()))
            .map_err(|e| e.kind())
    }

    const AT0: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

    #[test]
    fn token68_characters_are_rfc_9110s() {
        for b in 0..=255u8 {
            let expected =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_token68_char(b), expected, "byte {b}");
            assert_eq!(is_token68(&[b, b'=']), expected, "byte {b} then padding");
        }
        assert!(is_token68(b"a=="));
        assert!(!is_token68(b"=="));
        assert!(!is_token68(b"a=b"));
        assert!(!is_token68(b""));
    }

    /// The shapes the removed one-pass reader was held equal to the full parse on, read as
    /// before (AUTH-01, AUTH-02, AUTH-08, AUTH-09, AUTH-10).
    #[test]
    fn common_and_near_common_shapes() {
        use AuthScheme::{Bearer, Dpop};
        use PopErrorKind::{InvalidRequest, MissingCredentials, TokenInvalid};
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let ok = |scheme, token: &str| Ok((scheme, token.to_owned()));
        let cases = [
            (format!("DPoP {AT0}"), ok(Dpop, AT0)),
            (format!("bearer   {AT0}"), ok(Bearer, AT0)),
            (format!("DPOP {AT0}=="), ok(Dpop, &format!("{AT0}=="))),
            (format!("DPoP {AT0},x"), Err(InvalidRequest)),
            (format!("DPoP {AT0} "), Err(TokenInvalid)),
            (format!("Basic {AT0}"), Err(MissingCredentials)),
            (format!("DPoP\t{AT0}"), Err(MissingCredentials)),
            (format!("DPoP {long}"), Err(TokenInvalid)),
            ("DPoP ".to_owned(), Err(InvalidRequest)),
            ("Bearer =".to_owned(), Err(TokenInvalid)),
            ("Bearer a\u{e9}".to_owned(), Err(TokenInvalid)),
        ];
        for (case, expected) in cases {
            assert_eq!(one(&case), expected, "{case:?}");
        }
    }

    #[test]
    fn schemes_are_case_insensitive_auth_01() {
        for v in ["DPoP", "dpop", "DPOP"] {
            assert_eq!(
                one(&format!("{v} {AT0}")),
                Ok((AuthScheme::Dpop, AT0.into()))
            );
        }
        assert_eq!(
            one(&format!("bearer {AT0}")),
            Ok((AuthScheme::Bearer, AT0.into()))
        );
    }

    #[test]
    fn token68_with_several_spaces_auth_02() {
        assert_eq!(
            one(&format!("DPoP   {AT0}")),
            Ok((AuthScheme::Dpop, AT0.into()))
        );
        assert_eq!(
            one(&format!("DPoP {AT0} x")),
            Err(PopErrorKind::TokenInvalid)
        );
        assert_eq!(one("DPoP a\"b"), Err(PopErrorKind::TokenInvalid));
        assert_eq!(
            one("Bearer abc=="),
            Ok((AuthScheme::Bearer, "abc==".into()))
        );
        assert_eq!(one("Bearer =="), Err(PopErrorKind::TokenInvalid));
    }

    #[test]
    fn unknown_scheme_is_no_credentials_auth_08() {
        assert_eq!(
            one("Basic dXNlcjpwdw=="),
            Err(PopErrorKind::MissingCredentials)
        );
        assert_eq!(
            one("Digest realm=\"a\", nonce=\"b\""),
            Err(PopErrorKind::MissingCredentials)
        );
    }

    #[test]
    fn empty_credentials_and_folded_fields_auth_09_10() {
        assert_eq!(one("DPoP"), Err(PopErrorKind::InvalidRequest));
        assert_eq!(one("DPoP   "), Err(PopErrorKind::InvalidRequest));
        assert_eq!(
            one(&format!("Bearer {AT0}, DPoP {AT0}")),
            Err(PopErrorKind::InvalidRequest)
        );
        assert_eq!(
            one(&format!("Basic eA==, Bearer {AT0}")),
            Err(PopErrorKind::InvalidRequest)
        );
        assert_eq!(
            one(&format!("Basic eA==,dpop {AT0}")),
            Err(PopErrorKind::InvalidRequest)
        );
        let two = FieldValues {
            first: Some(b"Bearer x"),
            second: Some(b"Bearer y"),
            count: 2,
        };
        assert_eq!(
            parse(two).map(|_| ()).map_err(|e| e.kind()),
            Err(PopErrorKind::InvalidRequest)
        );
        assert_eq!(
            parse(FieldValues::default())
                .map(|_| ())
                .map_err(|e| e.kind()),
            Err(PopErrorKind::MissingCredentials)
        );
    }
}
