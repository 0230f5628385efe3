//! Stateless DPoP server nonces (RFC 9449 §8, §9, §11.1; ).
//!
//! A resource server that requires nonces answers a proof without a valid `nonce` claim with
//! `401`, `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` header (RFC 9449
//! §9); the client retries with a proof carrying that value. [`Nonces`] mints and checks those
//! values **without shared state**: a nonce is a MAC over the time it was issued, so any instance
//! holding the same secret accepts any other's nonces (RFC 9449 §9: and nothing else's).
//!
//! ## What a nonce is
//!
//! 42 bytes, base64url without padding (56 characters, all in the `1*NQCHAR` set of §8.1,
//! RFC 9449 §8.1):
//!
//! | bytes | content |
//! |---|---|
//! | 1 | format version, `1` |
//! | 1 | key id: derived from the secret, so a check tries only the matching key |
//! | 8 | issue time, seconds since the Unix epoch, big-endian: the start of its time slot |
//! | 16 | random salt, so two nonces are distinct (RFC 9449 §8) |
//! | 16 | HMAC-SHA-256 over the 26 bytes above, truncated to 128 bits |
//!
//! The MAC key is derived from the secret (which is never used directly), so nonces are
//! unpredictable and unforgeable without it (§8: "MUST be unpredictable"). Tags are compared in
//! constant time, and any input that is not exactly 56 characters is refused before decoding.
//! Because 42 bytes encode to exactly one canonical string, "a valid nonce" and "an exact match
//! of a value this server supplied" (§4.3 check 10, RFC 9449 §8) are the same thing.
//!
//! ## Time
//!
//! A nonce is accepted from its issue time until [`lifetime`](NoncesBuilder::lifetime) later
//! (default 5 minutes: §11.1 wants a short window; long enough for a client's retry and some
//! requests after it). The issue time is the start of a slot of a tenth of the lifetime, so a
//! nonce lives between 90 % and 100 % of the lifetime after it was handed out, and one nonce per
//! slot can be cached ([`Nonces::current`] is a load and a clone). A nonce up to
//! [`future_skew`](NoncesBuilder::future_skew) (default 30 s) ahead of this instance's clock is
//! accepted, for an instance whose clock runs ahead of ours. The same nonce may be used by many
//! proofs while it is live (RFC 9449 §11.1); single use of each proof is the replay store's job.
//!
//! [`NonceInfo::issued_at`] is server time, independent of the client's clock (§11.1,
//! RFC 9449 §11.1): a proof carrying a nonce cannot have been made before the nonce was issued, so the
//! verifier may refuse a proof whose `iat` is earlier than `issued_at - future_skew`, and the
//! nonce's lifetime bounds how long any proof made with it can be accepted.
//!
//! ## Rotation and deployment
//!
//! Several instances behind one API must share the secret (`--nonce-secret-file` in the example
//! servers); with [`Nonces::random`] each instance only accepts its own nonces, which makes
//! clients that hop between instances retry. To rotate, give every instance the new secret as
//! the current one and the old one through [`NoncesBuilder::add_previous`] for one lifetime;
//! [`Nonces::should_refresh`] moves clients off an old key's nonces, then drop the old secret.
//!
//! ## Example
//!
//! ```
//! use tower_pop::nonce::{NonceError, NonceSecret, Nonces};
//!
//! # fn main() -> Result<(), tower_pop::nonce::NonceConfigError> {
//! let secret = NonceSecret::from_file_bytes(b"correct horse battery staple and more!\n")?;
//! let nonces = Nonces::new(secret);
//! let now = 1_562_262_618;
//!
//! // What goes into `DPoP-Nonce` on a `use_dpop_nonce` challenge.
//! let nonce = nonces.current(now);
//! assert_eq!(nonce.len(), 56);
//!
//! // A proof comes back with it: accepted, with the server-side issue time.
//! let info = nonces.check(&nonce, now + 10).expect("live nonce");
//! assert!(info.issued_at() <= now);
//! assert!(!nonces.should_refresh(&info, now + 10));
//!
//! // After its lifetime it is stale, and any tampering is a forgery.
//! assert_eq!(nonces.check(&nonce, now + 300), Err(NonceError::Stale));
//! assert_eq!(nonces.check("A".repeat(56).as_str(), now), Err(NonceError::Malformed));
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::NONCE_LIFETIME_SECS;
pub use crate::error::NonceConfigError;
use crate::jose::digest::ct_eq;
use arc_swap::ArcSwapOption;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

// 0.1 paths of the nonce defaults, which live in `crate::defaults`.
#[doc(hidden)]
pub use crate::defaults::{
    NONCE_FUTURE_SKEW as DEFAULT_NONCE_FUTURE_SKEW, NONCE_LIFETIME as DEFAULT_NONCE_LIFETIME,
};
/// Shortest accepted secret: 32 bytes (256 bits, the HMAC-SHA-256 key size).
pub const MIN_SECRET_LEN: usize = 32;
/// Length of every nonce this module issues, in characters.
pub const NONCE_LEN: usize = 56;

const VERSION: u8 = 1;
const RAW_LEN: usize = 42;
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
const SIGNED_LEN: usize = RAW_LEN - TAG_LEN;
const MAC_KEY_LABEL: &[u8] = b"tower-pop dpop-nonce v1 mac key";
const KEY_ID_LABEL: &[u8] = b"tower-pop dpop-nonce v1 key id";

/// A nonce secret: at least [`MIN_SECRET_LEN`] bytes, used as given (not decoded).
///
/// Generate one with, for example, `openssl rand -base64 48 > nonce.secret`. `Debug` never
/// shows it.
#[derive(Clone)]
pub struct NonceSecret(Box<[u8]>);

impl NonceSecret {
    /// A secret of these bytes; fails if shorter than [`MIN_SECRET_LEN`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, NonceConfigError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(NonceConfigError::SecretTooShort {
                len: bytes.len(),
                min: MIN_SECRET_LEN,
            });
        }
        Ok(Self(bytes.into_boxed_slice()))
    }

    /// A secret from the contents of a file, ignoring one trailing `\n` or `\r\n` (what `echo`
    /// and editors add). Empty or short contents are refused.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, NonceConfigError> {
        let bytes = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(bytes);
        Self::new(bytes)
    }

    /// Read a secret file, as [`from_file_bytes`](Self::from_file_bytes). The error names the
    /// path, never the contents.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Self, NonceConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| NonceConfigError::ReadSecretFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_file_bytes(&bytes)
    }

    /// 32 bytes from the system's random number generator, for a single instance.
    pub fn random() -> Result<Self, NonceConfigError> {
        let mut bytes = vec![0u8; MIN_SECRET_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| NonceConfigError::RandomUnavailable)?;
        Ok(Self(bytes.into_boxed_slice()))
    }
}

impl fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSecret(<redacted>)")
    }
}

/// Why a nonce was refused. Every variant is answered with `use_dpop_nonce` and a fresh
/// `DPoP-Nonce` (RFC 9449 §9); they differ only for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NonceError {
    /// Not 56 base64url characters, or an unknown format version.
    Malformed,
    /// Minted with a key this server does not hold (another server's, or a removed one).
    UnknownKey,
    /// The tag does not verify: tampered with or made up.
    Forged,
    /// Older than the lifetime.
    Stale,
    /// Issued further in the future than the allowed skew.
    FromTheFuture,
}

impl fmt::Display for NonceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed dpop nonce",
            Self::UnknownKey => "dpop nonce from an unknown key",
            Self::Forged => "forged dpop nonce",
            Self::Stale => "stale dpop nonce",
            Self::FromTheFuture => "dpop nonce issued in the future",
        })
    }
}

impl std::error::Error for NonceError {}

/// What a valid nonce says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceInfo {
    issued_at: u64,
    expires_at: u64,
    current_key: bool,
}

impl NonceInfo {
    /// When it was issued (the start of its slot), seconds since the Unix epoch, by the
    /// issuing server's clock. A proof carrying it was made at or after this time (§11.1).
    #[must_use]
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// When it stops being accepted (exclusive), seconds since the Unix epoch.
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Whether it was minted with the current secret rather than a previous one.
    #[must_use]
    pub fn is_current_key(&self) -> bool {
        self.current_key
    }
}

struct NonceKey {
    id: u8,
    mac: hmac::Key,
}

impl NonceKey {
    fn derive(secret: &NonceSecret) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, &secret.0);
        let mac = hmac::sign(&root, MAC_KEY_LABEL);
        let id = hmac::sign(&root, KEY_ID_LABEL).as_ref()[0];
        Self {
            id,
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac.as_ref()),
        }
    }

    fn tag(&self, signed: &[u8]) -> [u8; TAG_LEN] {
        let full = hmac::sign(&self.mac, signed);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full.as_ref()[..TAG_LEN]);
        tag
    }
}

struct CachedNonce {
    issued_at: u64,
    value: Arc<str>,
}

/// Issues and checks stateless DPoP nonces; see the [module docs](self).
///
/// Share one instance (`Arc<Nonces>`) per process. `Debug` shows key ids and times, never a
/// secret or a nonce.
pub struct Nonces {
    current: NonceKey,
    previous: Vec<NonceKey>,
    lifetime: u64,
    slot: u64,
    future_skew: u64,
    cached: ArcSwapOption<CachedNonce>,
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nonces")
            .field("current_key_id", &self.current.id)
            .field(
                "previous_key_ids",
                &self.previous.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .field("lifetime_secs", &self.lifetime)
            .field("slot_secs", &self.slot)
            .field("future_skew_secs", &self.future_skew)
            .finish_non_exhaustive()
    }
}

/// Builder of [`Nonces`], from [`Nonces::builder`].
#[derive(Debug)]
#[must_use]
pub struct NoncesBuilder {
    current: NonceSecret,
    previous: Vec<NonceSecret>,
    lifetime: Duration,
    future_skew: Duration,
}

impl NoncesBuilder {
    /// A previous secret whose nonces are still accepted (key rotation). Repeatable.
    pub fn add_previous(mut self, secret: NonceSecret) -> Self {
        self.previous.push(secret);
        self
    }

    /// How long a nonce is accepted, in whole seconds, 10 s ..= 24 h. Default
    /// [`NONCE_LIFETIME`](crate::defaults::NONCE_LIFETIME) (5 minutes): short, as §11.1 asks, yet long enough that a
    /// client rarely needs a retry.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// How far ahead of this instance's clock a nonce's issue time may be, in whole seconds, at
    /// most the lifetime. Default [`NONCE_FUTURE_SKEW`](crate::defaults::NONCE_FUTURE_SKEW) (30 s): instances' clocks differ
    /// by seconds, not minutes.
    pub fn future_skew(mut self, future_skew: Duration) -> Self {
        self.future_skew = future_skew;
        self
    }

    /// Check the settings and derive the keys.
    pub fn build(self) -> Result<Nonces, NonceConfigError> {
        let lifetime = self.lifetime.as_secs();
        if !NONCE_LIFETIME_SECS.contains(&lifetime) {
            return Err(NonceConfigError::InvalidLifetime {
                lifetime: self.lifetime,
            });
        }
        if self.future_skew > self.lifetime {
            return Err(NonceConfigError::InvalidFutureSkew {
                future_skew: self.future_skew,
                lifetime: self.lifetime,
            });
        }
        Ok(Nonces::assemble(
            &self.current,
            &self.previous,
            lifetime,
            self.future_skew.as_secs(),
        ))
    }
}

impl Nonces {
    /// A builder with `current` as the secret new nonces are minted with.
    pub fn builder(current: NonceSecret) -> NoncesBuilder {
        NoncesBuilder {
            current,
            previous: Vec::new(),
            lifetime: DEFAULT_NONCE_LIFETIME,
            future_skew: DEFAULT_NONCE_FUTURE_SKEW,
        }
    }

    /// Nonces under `secret` with the default lifetime and skew.
    #[must_use]
    pub fn new(secret: NonceSecret) -> Self {
        Self::assemble(
            &secret,
            &[],
            DEFAULT_NONCE_LIFETIME.as_secs(),
            DEFAULT_NONCE_FUTURE_SKEW.as_secs(),
        )
    }

    /// Settings already checked (or the defaults).
    fn assemble(
        current: &NonceSecret,
        previous: &[NonceSecret],
        lifetime: u64,
        future_skew: u64,
    ) -> Self {
        Self {
            current: NonceKey::derive(current),
            previous: previous.iter().map(NonceKey::derive).collect(),
            lifetime,
            slot: (lifetime / 10).max(1),
            future_skew,
            cached: ArcSwapOption::empty(),
        }
    }

    /// Nonces under a fresh random secret: only this process accepts them.
    pub fn random() -> Result<Self, NonceConfigError> {
        Ok(Self::new(NonceSecret::random()?))
    }

    /// The configured lifetime.
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.lifetime)
    }

    fn slot_start(&self, now: u64) -> u64 {
        now - now % self.slot
    }

    fn mint(&self, issued_at: u64) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1] = self.current.id;
        raw[2..10].copy_from_slice(&issued_at.to_be_bytes());
        // The salt only makes values distinct; unpredictability rests on the MAC key. Were the
        // generator ever to fail, the nonce would still be unforgeable, so no panic here.
        let _ = aws_lc_rs::rand::fill(&mut raw[10..10 + SALT_LEN]);
        let tag = self.current.tag(&raw[..SIGNED_LEN]);
        raw[SIGNED_LEN..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// A new nonce at `now` (seconds since the Unix epoch), distinct from every other.
    ///
    /// Costs a MAC and 16 random bytes; for response headers prefer [`current`](Self::current).
    #[must_use]
    pub fn issue(&self, now: u64) -> String {
        self.mint(self.slot_start(now))
    }

    /// The nonce to send in `DPoP-Nonce` at `now`: one per slot (a tenth of the lifetime) and
    /// instance, minted once and then served from a lock-free cache.
    #[must_use]
    pub fn current(&self, now: u64) -> Arc<str> {
        let issued_at = self.slot_start(now);
        if let Some(cached) = self.cached.load().as_ref()
            && cached.issued_at == issued_at
        {
            return Arc::clone(&cached.value);
        }
        let value: Arc<str> = self.mint(issued_at).into();
        self.cached.store(Some(Arc::new(CachedNonce {
            issued_at,
            value: Arc::clone(&value),
        })));
        value
    }

    /// Check a nonce presented at `now` (seconds since the Unix epoch).
    pub fn check(&self, nonce: &str, now: u64) -> Result<NonceInfo, NonceError> {
        if nonce.len() != NONCE_LEN {
            return Err(NonceError::Malformed);
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(NonceError::Malformed),
        }
        if raw[0] != VERSION {
            return Err(NonceError::Malformed);
        }
        let (signed, tag) = raw.split_at(SIGNED_LEN);
        // Key ids are 8 bits derived from the secret, so two keys may share one: try each.
        let mut known = false;
        let mut current_key = false;
        let mut valid = false;
        let keys =
            std::iter::once((true, &self.current)).chain(self.previous.iter().map(|k| (false, k)));
        for (is_current, key) in keys.filter(|(_, k)| k.id == raw[1]) {
            known = true;
            if ct_eq(&key.tag(signed), tag) {
                valid = true;
                current_key |= is_current;
            }
        }
        if !known {
            return Err(NonceError::UnknownKey);
        }
        if !valid {
            return Err(NonceError::Forged);
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[2..10]);
        let issued_at = u64::from_be_bytes(issued);
        if issued_at > now.saturating_add(self.future_skew) {
            return Err(NonceError::FromTheFuture);
        }
        let expires_at = issued_at.saturating_add(self.lifetime);
        if now >= expires_at {
            return Err(NonceError::Stale);
        }
        Ok(NonceInfo {
            issued_at,
            expires_at,
            current_key,
        })
    }

    /// Whether a successful response to a proof carrying this nonce should carry a fresh one
    /// (RFC 9449 §8.2): once it is half its lifetime old, or was minted with a previous key.
    /// The fresh one is [`current`](Self::current), which is then at least five slots newer.
    #[must_use]
    pub fn should_refresh(&self, info: &NonceInfo, now: u64) -> bool {
        !info.current_key || now.saturating_sub(info.issued_at) >= self.lifetime / 2
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: u64 = 1_562_262_618;

    fn secret(fill: u8) -> NonceSecret {
        NonceSecret::new(vec![fill; 32]).unwrap()
    }

    fn nonces() -> Nonces {
        Nonces::new(secret(7))
    }

    fn is_nqchar(c: char) -> bool {
        matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
    }

    fn tamper(nonce: &str, index: usize) -> String {
        let mut bytes = nonce.as_bytes().to_vec();
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn round_trip() {
        let n = nonces();
        let nonce = n.issue(NOW);
        let info = n.check(&nonce, NOW).unwrap();
        assert!(info.issued_at() <= NOW && NOW - info.issued_at() < 30);
        assert_eq!(info.expires_at(), info.issued_at() + 300);
        assert!(info.is_current_key());
    }

    #[test]
    fn only_rfc_9449_nqchar_characters_nonce_03() {
        let n = nonces();
        for i in 0..1000 {
            let nonce = n.issue(NOW + i);
            assert_eq!(nonce.len(), NONCE_LEN);
            assert!(nonce.chars().all(is_nqchar), "{nonce}");
        }
    }

    #[test]
    fn issued_nonces_are_distinct_nonce_02() {
        let n = nonces();
        let all: std::collections::HashSet<String> = (0..10_000).map(|_| n.issue(NOW)).collect();
        assert_eq!(all.len(), 10_000);
    }

    #[test]
    fn current_is_cached_per_slot() {
        let n = nonces();
        let slot_start = NOW - NOW % 30;
        let a = n.current(slot_start);
        assert!(Arc::ptr_eq(&a, &n.current(slot_start + 29)));
        let b = n.current(slot_start + 30);
        assert_ne!(a, b);
        assert_eq!(
            n.check(&b, slot_start + 30).unwrap().issued_at(),
            slot_start + 30
        );
    }

    #[test]
    fn stale_after_lifetime_nonce_09() {
        let n = nonces();
        let nonce = n.issue(NOW);
        let issued_at = n.check(&nonce, NOW).unwrap().issued_at();
        assert!(n.check(&nonce, issued_at + 299).is_ok());
        assert_eq!(n.check(&nonce, issued_at + 300), Err(NonceError::Stale));
        assert_eq!(n.check(&n.issue(NOW - 600), NOW), Err(NonceError::Stale));
    }

    #[test]
    fn from_the_future_beyond_skew() {
        let n = nonces();
        let ahead = n.issue(NOW + 60);
        let issued_at = NOW + 60 - (NOW + 60) % 30;
        assert!(n.check(&ahead, issued_at - 30).is_ok());
        assert_eq!(
            n.check(&ahead, issued_at - 31),
            Err(NonceError::FromTheFuture)
        );
    }

    #[test]
    fn forged_tag_and_flipped_bytes_are_refused_nonce_05() {
        let n = nonces();
        let nonce = n.issue(NOW);
        // Character 0 holds the version; 1 and 2 the key id; every later one is under the tag.
        assert_eq!(n.check(&tamper(&nonce, 0), NOW), Err(NonceError::Malformed));
        for i in 3..NONCE_LEN {
            let err = n.check(&tamper(&nonce, i), NOW).unwrap_err();
            assert_eq!(err, NonceError::Forged, "index {i}");
        }
        // One character case-changed (NONCE-05), in the salt or tag.
        let idx = 3 + nonce[3..].find(|c: char| c.is_ascii_alphabetic()).unwrap();
        let mut flipped = nonce.clone().into_bytes();
        flipped[idx] ^= 0x20;
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(n.check(&flipped, NOW), Err(NonceError::Forged));
        // A made-up tag over a valid prefix.
        let raw_forgery = format!("{}{}", &nonce[..35], "A".repeat(21));
        assert_eq!(n.check(&raw_forgery, NOW), Err(NonceError::Forged));
    }

    #[test]
    fn another_secret_is_refused_nonce_08() {
        let ours = nonces();
        let theirs = Nonces::new(secret(8));
        let err = ours.check(&theirs.issue(NOW), NOW).unwrap_err();
        assert!(matches!(err, NonceError::UnknownKey | NonceError::Forged));
    }

    #[test]
    fn rotation_previous_key_validates_removed_key_does_not() {
        let old = Nonces::new(secret(1));
        let old_nonce = old.issue(NOW);
        let rotated = Nonces::builder(secret(2))
            .add_previous(secret(1))
            .build()
            .unwrap();
        let info = rotated.check(&old_nonce, NOW).unwrap();
        assert!(!info.is_current_key());
        assert!(rotated.should_refresh(&info, NOW));
        assert!(
            rotated
                .check(&rotated.issue(NOW), NOW)
                .unwrap()
                .is_current_key()
        );
        let after = Nonces::new(secret(2));
        let err = after.check(&old_nonce, NOW).unwrap_err();
        assert!(matches!(err, NonceError::UnknownKey | NonceError::Forged));
    }

    #[test]
    fn malformed_inputs() {
        let n = nonces();
        let good = n.issue(NOW);
        for bad in [
            String::new(),
            "x".into(),
            "!".repeat(NONCE_LEN),
            format!("{good}A"),
            good[..NONCE_LEN - 1].to_owned(),
            "A".repeat(10_000),
            format!("{}==", &good[..NONCE_LEN - 2]),
            good.replace(['-', '_'], "+"),
        ] {
            if bad == good {
                continue;
            }
            assert_eq!(n.check(&bad, NOW), Err(NonceError::Malformed), "{bad:?}");
        }
        // Wrong version: a nonce is `AQ…` (byte 0 = 1); `Ag…` is version 2.
        assert!(good.starts_with('A'));
        let mut raw = URL_SAFE_NO_PAD.decode(&good).unwrap();
        raw[0] = 2;
        let wrong_version = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(n.check(&wrong_version, NOW), Err(NonceError::Malformed));
    }

    #[test]
    fn two_instances_with_one_secret_accept_each_other() {
        let a = Nonces::new(secret(9));
        let b = Nonces::new(secret(9));
        assert!(b.check(&a.current(NOW), NOW).is_ok());
        assert!(a.check(&b.issue(NOW), NOW).is_ok());
    }

    #[test]
    fn different_secrets_give_different_nonces_for_one_slot() {
        let a = Nonces::new(secret(3));
        let b = Nonces::new(secret(4));
        let (na, nb) = (a.issue(NOW), b.issue(NOW));
        assert_ne!(na, nb);
        // With the same slot and salt, the tags still differ: the key is what is unpredictable.
        let signed = [0u8; SIGNED_LEN];
        assert_ne!(a.current.tag(&signed), b.current.tag(&signed));
    }

    #[test]
    fn should_refresh_after_half_the_lifetime() {
        let n = nonces();
        let info = n.check(&n.current(NOW), NOW).unwrap();
        assert!(!n.should_refresh(&info, info.issued_at() + 149));
        assert!(n.should_refresh(&info, info.issued_at() + 150));
        let fresh = n.check(&n.current(info.issued_at() + 150), info.issued_at() + 150);
        assert!(fresh.unwrap().issued_at() >= info.issued_at() + 150);
    }

    #[test]
    fn secrets_are_at_least_32_bytes_and_never_printed() {
        let err = NonceSecret::new(b"short".to_vec()).unwrap_err();
        assert!(matches!(
            err,
            NonceConfigError::SecretTooShort { len: 5, min: 32 }
        ));
        assert_eq!(
            err.to_string(),
            "nonce secret is 5 bytes, at least 32 are required"
        );
        assert!(matches!(
            NonceSecret::from_file_bytes(b"").unwrap_err(),
            NonceConfigError::SecretTooShort { len: 0, .. }
        ));
        assert!(matches!(
            NonceSecret::from_file_bytes(b"\n").unwrap_err(),
            NonceConfigError::SecretTooShort { len: 0, .. }
        ));
        // 31 bytes plus a newline is still short.
        let mut short = vec![b'k'; 31];
        short.push(b'\n');
        assert!(NonceSecret::from_file_bytes(&short).is_err());

        let s = NonceSecret::new(b"SUPERSECRETSUPERSECRETSUPERSECRET".to_vec()).unwrap();
        assert_eq!(format!("{s:?}"), "NonceSecret(<redacted>)");
        let n = Nonces::new(s);
        let dbg = format!("{n:?} {:?}", Nonces::builder(secret(1)));
        assert!(
            !dbg.contains("SUPERSECRET") && !dbg.contains("[1, 1"),
            "{dbg}"
        );
        assert!(!dbg.contains(&*n.current(NOW)));
    }

    #[test]
    fn one_trailing_newline_is_ignored() {
        let base = b"0123456789abcdef0123456789abcdef".to_vec();
        let plain = Nonces::new(NonceSecret::from_file_bytes(&base).unwrap());
        for suffix in [&b"\n"[..], b"\r\n"] {
            let with = [base.as_slice(), suffix].concat();
            let other = Nonces::new(NonceSecret::from_file_bytes(&with).unwrap());
            assert!(plain.check(&other.issue(NOW), NOW).is_ok());
        }
        // Only one newline: two make a different secret.
        let two = [base.as_slice(), b"\n\n"].concat();
        let other = Nonces::new(NonceSecret::from_file_bytes(&two).unwrap());
        assert!(plain.check(&other.issue(NOW), NOW).is_err());
    }

    #[test]
    fn read_file_reports_the_path_not_the_contents() {
        let dir = std::env::temp_dir().join(format!("tower-pop-nonce-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, b"0123456789abcdef0123456789abcdef\n").unwrap();
        assert!(NonceSecret::read_file(&path).is_ok());
        std::fs::write(&path, b"tiny\n").unwrap();
        let err = NonceSecret::read_file(&path).unwrap_err();
        assert!(!err.to_string().contains("tiny"));
        let missing = NonceSecret::read_file(dir.join("missing")).unwrap_err();
        assert!(missing.to_string().contains("missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn random_secrets_differ() {
        let a = Nonces::random().unwrap();
        let b = Nonces::random().unwrap();
        assert!(a.check(&a.issue(NOW), NOW).is_ok());
        assert!(b.check(&a.issue(NOW), NOW).is_err());
    }

    #[test]
    fn lifetime_and_skew_are_validated() {
        for bad in [0, 9, 24 * 3600 + 1] {
            assert!(matches!(
                Nonces::builder(secret(1))
                    .lifetime(Duration::from_secs(bad))
                    .build(),
                Err(NonceConfigError::InvalidLifetime { .. })
            ));
        }
        assert!(matches!(
            Nonces::builder(secret(1))
                .lifetime(Duration::from_secs(20))
                .future_skew(Duration::from_secs(21))
                .build(),
            Err(NonceConfigError::InvalidFutureSkew { .. })
        ));
        let short = Nonces::builder(secret(1))
            .lifetime(Duration::from_secs(10))
            .future_skew(Duration::ZERO)
            .build()
            .unwrap();
        assert_eq!(short.lifetime(), Duration::from_secs(10));
        let nonce = short.issue(NOW);
        assert!(short.check(&nonce, NOW).is_ok());
        assert_eq!(short.check(&nonce, NOW + 10), Err(NonceError::Stale));
    }
}
