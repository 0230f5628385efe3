//! The FAPI 2.0 Security Profile (Final, 2025) for a resource server:
//! [`PopConfigBuilder::fapi2`](crate::config::PopConfigBuilder::fapi2) applies it, `build()`
//! refuses a configuration that breaks it, and every response carries an
//! `x-fapi-interaction-id`. Each rule and its section:
//!
//! | rule | section | how |
//! |---|---|---|
//! | access tokens only in the `Authorization` header (RFC 6750 §2.1, RFC 9449 §7.1), never in the query | §5.3.4 items 1-2 | always so; tokens elsewhere are not read |
//! | sender-constrained access tokens only: DPoP or mTLS | §5.3.4 item 5 | `allow_bearer` is refused: an unbound token gets 401 `invalid_token` |
//! | validity, integrity, expiry of access tokens; revocation | §5.3.4 item 3 | always so (RFC 9068 checks); introspection for revocation |
//! | authorization sufficient for the resource, else RFC 6750 §3.1 errors | §5.3.4 item 4 | [`RoutePolicy::require_scope`](crate::policy::RoutePolicy::require_scope): 403 `insufficient_scope` |
//! | JWTs (proofs, access tokens) only `PS256`, `ES256`, `EdDSA` (Ed25519), never `none` | §5.4.1 items 1-2 | both allow-lists set to [`ALGORITHMS`]; anything else is refused by `build()` |
//! | RSA keys at least 2048 bits, EC keys at least 224 | §5.4.1 items 2-3 | always so (RSA 2048-4096; P-256 for ES256) |
//! | proof `iat` at most 10 s ahead, refused beyond 60 s | §5.3.2.1 item 13 (the AS rule, adopted for proofs) | a `proof_future_skew` over 60 s is refused |
//! | TLS 1.2 or later; with TLS 1.2 only BCP 195's cipher suites | §5.2.1, §5.2.2 | [`TlsConfigBuilder::fapi2`](crate::mtls::tls::TlsConfigBuilder::fapi2) (feature `rustls`) |
//! | DPoP nonces (RFC 9449 §8) | §5.3.3.1 item 8 (clients shall support them), §6.2 | optional, as for the AS (§5.3.2.1 item 10): turn them on with `nonces` |
//! | `x-fapi-interaction-id` on every response: the client's value, or a new UUID | Implementation Advice §2.2.1 | [`interaction_id`]; logged with each decision |
//!
//! This is our reading of the public text, checked by our own tests (the conformance table's
//! FAPI cases); it is not a certification.

use std::sync::Arc;

use crate::jose::Algorithm;

/// The JWT algorithms FAPI 2.0 allows (§5.4.1 item 1): `PS256`, `ES256`, and EdDSA with Ed25519
/// under both its names (`EdDSA`, and RFC 9864's fully specified `Ed25519`, which the note to
/// §5.4.1 admits once registered).
pub const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::Ed25519,
];

/// The largest `proof_future_skew` FAPI 2.0 lets a verifier accept (§5.3.2.1 item 13: "shall
/// reject … greater than 60 seconds in the future").
pub(crate) const MAX_FUTURE_SKEW_SECS: u64 = 60;

/// The response's `x-fapi-interaction-id`: the client's value when it is an RFC 4122 UUID (the
/// form §2.2.1 asks clients to send; anything else is never echoed), else a new random
/// (version 4) UUID.
#[must_use]
pub fn interaction_id(sent: Option<&[u8]>) -> Arc<str> {
    match sent.and_then(|v| std::str::from_utf8(v).ok()) {
        Some(value) if is_uuid(value) => value.into(),
        _ => new_uuid().into(),
    }
}

/// `8-4-4-4-12` hexadecimal digits (RFC 4122 §3).
fn is_uuid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A random version 4 UUID (RFC 4122 §4.4). Should the system random generator fail, the
/// answer still carries an identifier: one from the clock, which only needs to be unlikely to
/// repeat.
fn new_uuid() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_is_echoed_anything_else_replaced() {
        let sent = "c770aef3-6784-41f7-8e0e-ff5f97bddb3a";
        assert_eq!(&*interaction_id(Some(sent.as_bytes())), sent);
        for bad in [
            &b"not-a-uuid"[..],
            b"c770aef3-6784-41f7-8e0e-ff5f97bddb3az",
            b"\xff",
        ] {
            let id = interaction_id(Some(bad));
            assert!(is_uuid(&id) && id.as_bytes() != bad, "{id}");
        }
        let (a, b) = (interaction_id(None), interaction_id(None));
        assert!(is_uuid(&a) && a != b);
        assert_eq!(&a[14..15], "4", "version 4");
        assert!(
            matches!(&a[19..20], "8" | "9" | "a" | "b"),
            "RFC 4122 variant"
        );
    }
}
