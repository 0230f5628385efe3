//! The stateless nonce checker (`nonce::Nonces::check`, RFC 9449 §8-9). Input: two bytes of
//! signed time offset from the fixture's clock (little-endian `i16` seconds), then the nonce.
//! Oracles: only 56-character values pass, and only inside their lifetime; a nonce minted at
//! that time passes.

#![no_main]
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower_pop::nonce::{NONCE_LEN, Nonces};
use tower_pop_fuzz::NOW;

fuzz_target!(|data: &[u8]| {
    static NONCES: OnceLock<Nonces> = OnceLock::new();
    let nonces = NONCES.get_or_init(tower_pop_fuzz::nonces);
    let [a, b, nonce @ ..] = data else {
        return;
    };
    let now = NOW.saturating_add_signed(i64::from(i16::from_le_bytes([*a, *b])));
    if let Ok(nonce) = std::str::from_utf8(nonce)
        && let Ok(info) = nonces.check(nonce, now)
    {
        assert_eq!(nonce.len(), NONCE_LEN);
        assert!(
            info.issued_at() <= now + 30,
            "at most the future skew ahead"
        );
        assert!(now < info.expires_at(), "not stale");
        assert!(info.is_current_key());
    }
    let fresh = nonces.current(now);
    assert!(nonces.check(&fresh, now).is_ok(), "a fresh nonce passes");
});
