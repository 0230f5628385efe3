//! RFC 7638 JWK thumbprints (the `jkt` of DPoP, RFC 9449 §6) and RFC 8705 §3.1 certificate
//! thumbprints (`x5t#S256`): SHA-256, base64url without padding.

use crate::jose::digest::sha256_b64url;
use crate::jose::json::parse_json_object;
use crate::jose::jwk::PublicJwk;

/// The RFC 7638 SHA-256 thumbprint of a public JWK given as JSON, or `None` when the JSON is
/// not an acceptable public key (private members, unknown type, non-canonical encoding).
///
/// ```
/// let jwk = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
/// assert_eq!(
///     tower_pop::thumbprint::jwk_thumbprint(jwk).as_deref(),
///     Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
/// );
/// ```
#[must_use]
pub fn jwk_thumbprint(jwk_json: &str) -> Option<String> {
    let map = parse_json_object(jwk_json.as_bytes())?;
    Some(PublicJwk::from_json(&map)?.thumbprint())
}

/// The RFC 8705 §3.1 `x5t#S256` of a DER-encoded X.509 certificate.
#[must_use]
pub fn x5t_s256(certificate_der: &[u8]) -> String {
    sha256_b64url(certificate_der)
}

/// The RFC 9449 §4.2 `ath` of an access token: SHA-256 of its ASCII bytes, base64url.
#[must_use]
pub fn ath(access_token: &str) -> String {
    sha256_b64url(access_token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_section_3_1_rsa_thumbprint_jkt_01() {
        let jwk = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        assert_eq!(
            jwk_thumbprint(jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn rfc9449_example_key_thumbprint_jkt_02_03() {
        let expected = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
        let jwk = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
        assert_eq!(jwk_thumbprint(jwk).as_deref(), expected);
        // Extra members do not change the thumbprint (RFC 7638 §3.2.2).
        let extra = jwk.replace(r#""crv""#, r#""kid":"k1","alg":"ES256","use":"sig","crv""#);
        assert_eq!(jwk_thumbprint(&extra).as_deref(), expected);
        // JSON escapes are decoded before hashing (RFC 7638 §3.3, JKT-03).
        let escaped = jwk.replace("P-256", "P\\u002d256");
        assert_eq!(jwk_thumbprint(&escaped).as_deref(), expected);
    }

    #[test]
    fn rfc8037_a3_ed25519_thumbprint() {
        let jwk =
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert_eq!(
            jwk_thumbprint(jwk).as_deref(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        );
    }

    #[test]
    fn rfc9449_ath_example() {
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxV"),
            "0aujE4ernkKEadYcx8IfMLhsPRi4nLW7MfutX41I6QU"
        );
    }
}
