//! The remembered proof key: the one fast path of proof checking, in one room.
//!
//! A DPoP-bound token (`cnf.jkt`, RFC 9449 §6.1) is cached after its verification
//! ([`crate::token::cache`]); its [`KnownKey`] remembers the key its first verified proof
//! showed. Later proofs with that token skip work that gives the same answer again:
//!
//! - **the key binding** (RFC 9449 §4.3 step 12): a proof key equal to the remembered one, byte
//!   for byte in RFC 7638 canonical form, has its thumbprint, so it is not hashed again;
//! - **the key import**: the key as imported into aws-lc for the first proof (for RSA with the
//!   Montgomery context computed at its first verification) verifies later signatures;
//! - **the header**: a proof whose encoded protected header is the very bytes the first one sent
//!   reads the same way (`typ`, `alg`, `jwk`), so it is not decoded or read again.
//!
//! The signature, `jti`, `iat`, `htm`, `htu`, `ath` and nonce are checked on every proof. The
//! door is [`KnownKey`]: [`KnownKey::kept_header`] when a proof is read,
//! [`KnownKey::verify`] for the binding, the signature and remembering. The `proof` fuzz target
//! holds both equal to the full reading. It saves 0.6 us (EdDSA) to 3.7 us (PS256) per proof,
//! 4 % of the ES256 path and 18 % of the PS256 one (`cargo bench -p tower-pop --bench
//! fast_paths`, `BENCHMARKS.md`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use aws_lc_rs::signature::ParsedPublicKey;

use super::proof::Proof;
use crate::error::PopErrorKind;
use crate::jose::Algorithm;
use crate::jose::jwk::PublicJwk;

/// The one key a token's `cnf.jkt` names, once a proof has shown it: its canonical form
/// (RFC 7638 §3.3) and, within [`SHOWN`]'s budget, what its proof showed ([`Shown`]). Later
/// proofs with the same token are matched against the form byte for byte (which implies the
/// same thumbprint) instead of hashing their key again, and, when their header is the one
/// shown, neither read nor imported again; any other key is hashed and compared with `cnf.jkt`
/// as before. Set at most once, and only with a key whose thumbprint equals `cnf.jkt` and whose
/// proof's signature verified, so it can never admit a key the thumbprint would refuse.
#[derive(Default, Clone)]
pub(crate) struct KnownKey(OnceLock<Arc<RememberedKey>>);

// A memo, not part of what a confirmation says: two confirmations of the same `cnf` are equal
// whether or not a proof has shown the key yet.
impl PartialEq for KnownKey {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for KnownKey {}

/// Longest canonical form remembered: an RSA-4096 key's (a proof key's largest) is about 720
/// bytes. Counted in each cached DPoP-bound token's weight.
pub(crate) const KNOWN_KEY_MAX_BYTES: usize = 768;

/// Heap that what first proofs showed (their encoded header, their key read from it, and the
/// key as imported: see [`Shown`]) may hold in the whole process: 16 MiB, as much as the default
/// token cache, about 10,000 EC keys or 4,500 RSA-2048 keys. It lies outside the token cache's
/// byte bound (it is kept after the token is cached), so this bounds it instead. Past it, a
/// token remembers its key's canonical form only, and its proofs are read and their key imported
/// per proof, as a first proof is.
const SHOWN_MAX_BYTES: usize = 16 << 20;

/// The process's budget for [`Shown`].
static SHOWN: ShownBudget = ShownBudget::new(SHOWN_MAX_BYTES);

/// Bytes of [`Shown`] held, against a maximum.
struct ShownBudget {
    held: AtomicUsize,
    max: usize,
}

impl ShownBudget {
    const fn new(max: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            max,
        }
    }

    /// Count `bytes` more, if they fit.
    fn take(&'static self, bytes: usize) -> Option<Held> {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(bytes).filter(|total| *total <= self.max)
            })
            .ok()?;
        Some(Held {
            bytes,
            budget: self,
        })
    }
}

/// Bytes counted in a budget, given back when dropped.
struct Held {
    bytes: usize,
    budget: &'static ShownBudget,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// What the first proof by a token's key showed, kept within [`SHOWN`]: a later proof whose
/// encoded protected header is these very bytes has the same `typ`, `alg` and `jwk` (a header is
/// read the same way every time), so it is not read again; its signature is checked with the key
/// as imported, which gives the same answer as importing it again.
struct Shown {
    alg: Algorithm,
    header: Box<[u8]>,
    key: PublicJwk<'static>,
    imported: ParsedPublicKey,
    _held: Held,
}

/// Longest encoded header kept: an RSA-4096 key's proof header is about 1,100 bytes. A longer
/// one (padded with members we ignore) is read every time, so one client cannot spend the
/// budget faster than honest headers do.
const SHOWN_HEADER_MAX_BYTES: usize = 1536;

/// An estimate of the heap a [`Shown`] holds: itself, the header, the key's members, and aws-lc's
/// key objects (for RSA the modulus three times: itself and the Montgomery context's two numbers)
/// with the encoded copy that aws-lc-rs keeps, with allocator overhead.
fn shown_bytes(header: &[u8], key: &PublicJwk<'_>) -> usize {
    let members = key
        .canonical_pieces()
        .iter()
        .map(|p| p.len())
        .sum::<usize>();
    let imported = match key {
        PublicJwk::Ec { .. } => 768,
        PublicJwk::Ed25519 { .. } => 256,
        PublicJwk::Rsa { n_bytes, .. } => 1024 + 5 * n_bytes.len(),
    };
    size_of::<Shown>() + header.len() + members + imported + 128
}

/// What a proof whose signature verified shows of its key: the key, the proof's `alg`, its
/// encoded protected header, and the key as imported for `alg` (which verified it).
struct Showing<'k> {
    key: &'k PublicJwk<'k>,
    alg: Algorithm,
    header: &'k [u8],
    imported: ParsedPublicKey,
}

impl<'k> Showing<'k> {
    /// What `proof`, whose signature `imported` verified, shows.
    fn of(proof: &'k Proof<'_>, imported: ParsedPublicKey) -> Self {
        Self {
            key: &proof.key,
            alg: proof.alg,
            header: proof.header,
            imported,
        }
    }
}

/// A remembered key: see [`KnownKey`].
struct RememberedKey {
    form: Box<[u8]>,
    /// Set by the first proof that finds room in the budget.
    shown: OnceLock<Box<Shown>>,
}

/// Heap a [`RememberedKey`] holds besides its form (counted with the form in a cached token's
/// weight): itself in its `Arc`, with allocator overhead.
pub(crate) const REMEMBERED_KEY_BYTES: usize = size_of::<RememberedKey>() + 16 + 16;

impl RememberedKey {
    /// The key as imported for `alg`, when it was kept (a key imported for another algorithm,
    /// possible only for RSA, is not).
    fn imported_for(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        self.shown
            .get()
            .filter(|shown| shown.alg == alg)
            .map(|shown| &shown.imported)
    }

    /// Keep what a proof by this key `showed`, unless something is kept already, its header is
    /// longer than any honest one, or the budget has no room; a later proof may offer again.
    fn offer_within(&self, budget: &'static ShownBudget, showed: Showing<'_>) {
        let Showing {
            key,
            alg,
            header,
            imported,
        } = showed;
        if self.shown.get().is_some() || header.len() > SHOWN_HEADER_MAX_BYTES {
            return;
        }
        if let Some(held) = budget.take(shown_bytes(header, key)) {
            // Another thread may have kept one first; then this one is dropped, and its bytes
            // given back.
            let _ = self.shown.set(Box::new(Shown {
                alg,
                header: header.into(),
                key: key.clone().into_owned(),
                imported,
                _held: held,
            }));
        }
    }

    /// The `alg` and key of a proof whose encoded protected header is `header`, when it is the
    /// header kept and its `alg` is in `allowed`.
    fn header(
        &self,
        header: &[u8],
        allowed: &[Algorithm],
    ) -> Option<(Algorithm, &PublicJwk<'static>)> {
        self.shown
            .get()
            .filter(|shown| *shown.header == *header && allowed.contains(&shown.alg))
            .map(|shown| (shown.alg, &shown.key))
    }

    /// Whether `proof`'s key is this one: the key a kept header named (the very object), or a
    /// key with this canonical form.
    fn is_key_of(&self, proof: &Proof<'_>) -> bool {
        let kept = self.shown.get().is_some_and(|shown| match &proof.key {
            std::borrow::Cow::Borrowed(key) => std::ptr::addr_eq(*key, &shown.key),
            std::borrow::Cow::Owned(_) => false,
        });
        kept || proof.key.has_canonical_form(&self.form)
    }
}

/// The key a request's proof proved, as its token remembers it: for a second check by the same
/// key (an RFC 9421 request signature) without reading the proof's header again. A proof that
/// verified has the remembered key (same thumbprint, same canonical form), so this is its key.
#[derive(Clone)]
#[cfg_attr(not(feature = "httpsig"), allow(dead_code))]
pub(crate) struct ProvenKey(Arc<RememberedKey>);

impl ProvenKey {
    /// The key, with the `alg` its import was kept for and that import, when one was kept.
    #[cfg(feature = "httpsig")]
    pub(crate) fn shown(&self) -> Option<(&PublicJwk<'static>, Algorithm, &ParsedPublicKey)> {
        self.0
            .shown
            .get()
            .map(|shown| (&shown.key, shown.alg, &shown.imported))
    }
}

impl KnownKey {
    /// The remembered key as the proven one, after a proof by it verified.
    pub(crate) fn proven(&self) -> Option<ProvenKey> {
        self.0.get().cloned().map(ProvenKey)
    }

    /// The remembered key, when there is one.
    fn remembered(&self) -> Option<&RememberedKey> {
        self.0.get().map(|known| &**known)
    }

    /// The `alg` and key of a proof whose encoded protected header is `header`, when it is the
    /// header this token's key showed first (public bytes: compared as such) and its `alg` is in
    /// `allowed`; [`Proof::parse_knowing`] then does not read it.
    pub(crate) fn kept_header(
        &self,
        header: &[u8],
        allowed: &[Algorithm],
    ) -> Option<(Algorithm, &PublicJwk<'static>)> {
        self.remembered()?.header(header, allowed)
    }

    /// RFC 9449 §4.3 step 12 (second bullet) and step 6 for a proof sent with the token this
    /// key belongs to: its key's thumbprint is `cnf_jkt` (hashed and compared in constant time,
    /// RFC 9449 §6.1, unless the key is the remembered one), then its signature verifies (with
    /// the key as imported before, when one was kept for its `alg`). The binding comes first, so
    /// a thief's key costs no signature check. A key that matched and signed is remembered.
    pub(crate) fn verify(&self, proof: &mut Proof<'_>, cnf_jkt: &str) -> Result<(), PopErrorKind> {
        self.verify_within(&SHOWN, proof, cnf_jkt)
    }

    fn verify_within(
        &self,
        budget: &'static ShownBudget,
        proof: &mut Proof<'_>,
        cnf_jkt: &str,
    ) -> Result<(), PopErrorKind> {
        if let Some(remembered) = self.remembered().filter(|r| r.is_key_of(proof)) {
            if let Some(imported) = remembered.imported_for(proof.alg) {
                return proof.check_signature_with(imported);
            }
            let imported = proof.check_signature()?;
            // Nothing kept for this `alg` yet (the budget was full): offer this proof's.
            remembered.offer_within(budget, Showing::of(proof, imported));
            return Ok(());
        }
        proof.check_key_binding(cnf_jkt)?;
        let imported = proof.check_signature()?;
        // The key matched `cnf.jkt` and signed: later proofs by it skip the hash and the import.
        self.remember_within(budget, Showing::of(proof, imported));
        Ok(())
    }

    /// Remember the key a proof `showed`, whose thumbprint the caller has found equal to
    /// `cnf.jkt` and whose signature verified.
    fn remember_within(&self, budget: &'static ShownBudget, showed: Showing<'_>) {
        let key = showed.key;
        if self.0.get().is_none() {
            let form = key.canonical_form();
            if form.len() <= KNOWN_KEY_MAX_BYTES {
                // Another thread may have set it first; then this one is dropped.
                let _ = self.0.set(Arc::new(RememberedKey {
                    form,
                    shown: OnceLock::new(),
                }));
            }
        }
        if let Some(remembered) = self
            .remembered()
            .filter(|known| key.has_canonical_form(&known.form))
        {
            remembered.offer_within(budget, showed);
        }
    }
}

// Key material stays out of logs even though it is public.
impl std::fmt::Debug for KnownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownKey")
            .field("known", &self.0.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpop::proof::ProofBytes;
    use crate::jose::json::parse_json_object;

    fn key(json: &str) -> Option<PublicJwk<'static>> {
        Some(PublicJwk::from_json(&parse_json_object(json.as_bytes())?)?.into_owned())
    }

    fn showing<'k>(
        key: &'k PublicJwk<'k>,
        alg: Algorithm,
        header: &'k [u8],
        imported: ParsedPublicKey,
    ) -> Showing<'k> {
        Showing {
            key,
            alg,
            header,
            imported,
        }
    }

    /// The remembered key, when `key` is it.
    fn matching<'k>(known: &'k KnownKey, key: &PublicJwk<'_>) -> Option<&'k RememberedKey> {
        known
            .remembered()
            .filter(|remembered| key.has_canonical_form(&remembered.form))
    }

    /// Whether `remembered` is `known`'s very own (not an equal one).
    fn own(known: &KnownKey, remembered: &RememberedKey) -> bool {
        known
            .remembered()
            .is_some_and(|own| std::ptr::eq(own, remembered))
    }

    /// RFC 9449 Figure 13 (TV-4).
    const P13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    const OTHER_JKT: &str = "1ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    /// P13 read knowing `known`'s kept header, checked by `known`'s door.
    fn verify(known: &KnownKey, proof: &str, jkt: &str) -> Result<bool, PopErrorKind> {
        let mut bytes = ProofBytes::default();
        let allowed = [Algorithm::ES256];
        let mut proof = Proof::parse_knowing(proof.as_bytes(), &allowed, &mut bytes, |header| {
            known.kept_header(header, &allowed)
        })?;
        let kept = matches!(proof.key, std::borrow::Cow::Borrowed(_));
        known.verify(&mut proof, jkt).map(|()| kept)
    }

    /// DPOP-16: a key that matched `cnf.jkt` and signed is remembered, with the header its proof
    /// showed; later proofs bind to it and verify with its import, and every signature counts.
    #[test]
    fn a_remembered_key_binds_and_verifies_as_the_full_checks_do_dpop_16() {
        let known = KnownKey::default();
        assert_eq!(
            verify(&known, P13, OTHER_JKT),
            Err(PopErrorKind::KeyBindingMismatch)
        );
        assert!(known.remembered().is_none(), "a key that did not match");
        let (input, signature) = P13.rsplit_once('.').expect("compact");
        let mut signature = crate::jose::b64url_decode(signature).expect("b64");
        signature[5] ^= 1;
        let forged = format!("{input}.{}", crate::jose::b64url(&signature));
        assert_eq!(
            verify(&known, &forged, JKT),
            Err(PopErrorKind::BadSignature)
        );
        assert!(known.remembered().is_none(), "a key that did not sign");
        assert_eq!(
            verify(&known, P13, JKT),
            Ok(false),
            "hashed, then remembered"
        );
        let remembered = known.remembered().expect("remembered");
        assert!(remembered.imported_for(Algorithm::ES256).is_some());
        // The kept header: not read again, bound without the thumbprint, verified with the
        // kept import; a forged signature is still refused.
        assert_eq!(verify(&known, P13, "not consulted"), Ok(true));
        assert_eq!(
            verify(&known, &forged, "not consulted"),
            Err(PopErrorKind::BadSignature)
        );
        // Not another token's memory of the same key: that one hashes and compares.
        let elsewhere = KnownKey::default();
        assert_eq!(
            verify(&elsewhere, P13, OTHER_JKT),
            Err(PopErrorKind::KeyBindingMismatch)
        );
        // A kept header whose alg is no longer allowed is read, and refused.
        let mut bytes = ProofBytes::default();
        assert_eq!(
            Proof::parse_knowing(P13.as_bytes(), &[Algorithm::EdDSA], &mut bytes, |header| {
                known.kept_header(header, &[Algorithm::EdDSA])
            })
            .err(),
            Some(PopErrorKind::UnsupportedAlgorithm)
        );
        // Another key with the remembered key's token: hashed, refused.
        let other = crate::dpop::signer::ProofSigner::generate(Algorithm::ES256).expect("key");
        let other = other
            .proof_at("GET", "https://a.example/", None, None, 1)
            .expect("proof");
        assert_eq!(
            verify(&known, &other, JKT),
            Err(PopErrorKind::KeyBindingMismatch)
        );
    }

    #[test]
    fn what_a_first_proof_showed_verifies_and_stays_within_its_budget() {
        use crate::dpop::signer::ProofSigner;
        use serde_json::json;
        let signer = ProofSigner::generate(Algorithm::PS256).expect("key");
        let key = key(&signer.public_jwk()).expect("RSA key");
        let header = crate::jose::b64url(signer.proof_header().to_string().as_bytes());
        let header = header.as_bytes();
        let cost = shown_bytes(header, &key);
        // Room for one, not two.
        let budget: &'static ShownBudget = Box::leak(Box::new(ShownBudget::new(cost + cost / 2)));
        let held = || budget.held.load(Ordering::Relaxed);
        let import = || key.import(Algorithm::PS256).expect("imports");
        let (first, second) = (KnownKey::default(), KnownKey::default());
        first.remember_within(budget, showing(&key, Algorithm::PS256, header, import()));
        second.remember_within(budget, showing(&key, Algorithm::PS256, header, import()));
        assert_eq!(held(), cost);
        let remembered = matching(&first, &key).expect("remembered");
        assert!(own(&first, remembered) && !own(&second, remembered));
        let imported = remembered.imported_for(Algorithm::PS256).expect("kept");
        assert!(remembered.imported_for(Algorithm::RS256).is_none());
        let (alg, shown) = remembered
            .header(header, &[Algorithm::PS256])
            .expect("the header shown");
        assert!(alg == Algorithm::PS256 && shown.has_canonical_form(&key.canonical_form()));
        assert!(
            remembered.header(header, &[Algorithm::ES256]).is_none(),
            "alg not allowed"
        );
        assert!(
            remembered
                .header(&header[1..], &[Algorithm::PS256])
                .is_none()
        );
        let over = matching(&second, &key).expect("the form is remembered anyway");
        assert!(over.imported_for(Algorithm::PS256).is_none(), "over budget");
        assert!(
            over.header(header, &[Algorithm::PS256]).is_none(),
            "over budget"
        );

        let jws = signer
            .sign_compact(
                &json!({"typ": "dpop+jwt", "alg": "PS256"}),
                &json!({"n": 1}),
            )
            .expect("signs");
        let (input, signature) = jws.rsplit_once('.').expect("compact");
        let mut signature = crate::jose::b64url_decode(signature).expect("b64");
        let input = input.as_bytes();
        assert!(key.verify_imported(imported, Algorithm::PS256, input, &signature));
        assert!(!key.verify_imported(imported, Algorithm::ES256, input, &signature));
        signature[7] ^= 1;
        assert!(!key.verify_imported(imported, Algorithm::PS256, input, &signature));

        drop(first);
        assert_eq!(held(), 0, "given back with the token's entry");
        // A later proof by the second token's key offers again, and now finds room.
        let over = second.remembered().expect("remembered");
        over.offer_within(budget, showing(&key, Algorithm::PS256, header, import()));
        assert!(over.imported_for(Algorithm::PS256).is_some(), "room again");
        assert_eq!(held(), cost);
        // Kept once: another offer (say RS256 by the same key) changes nothing.
        let rs256 = key.import(Algorithm::RS256).expect("imports");
        over.offer_within(budget, showing(&key, Algorithm::RS256, header, rs256));
        assert!(over.imported_for(Algorithm::RS256).is_none());
        assert_eq!(held(), cost);
        // A header longer than any honest one is never kept.
        let padded = vec![b'A'; SHOWN_HEADER_MAX_BYTES + 1];
        let third = KnownKey::default();
        third.remember_within(budget, showing(&key, Algorithm::PS256, &padded, import()));
        let third = third.remembered().expect("the form");
        assert!(third.header(&padded, &[Algorithm::PS256]).is_none());
        drop(second);
        assert_eq!(held(), 0);
    }

    /// Of proofs racing to remember a key for one token, one is kept and the others' bytes are
    /// given back.
    #[test]
    fn racing_first_proofs_keep_one_and_count_one() {
        let signer = crate::dpop::signer::ProofSigner::generate(Algorithm::ES256).expect("key");
        let key = key(&signer.public_jwk()).expect("EC key");
        let header = crate::jose::b64url(signer.proof_header().to_string().as_bytes());
        let cost = shown_bytes(header.as_bytes(), &key);
        let budget: &'static ShownBudget = Box::leak(Box::new(ShownBudget::new(100 * cost)));
        let known = KnownKey::default();
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let imported = key.import(Algorithm::ES256).expect("imports");
                    start.wait();
                    known.remember_within(
                        budget,
                        showing(&key, Algorithm::ES256, header.as_bytes(), imported),
                    );
                });
            }
        });
        assert_eq!(budget.held.load(Ordering::Relaxed), cost);
        let remembered = known.remembered().expect("remembered");
        assert!(remembered.imported_for(Algorithm::ES256).is_some());
        drop(known);
        assert_eq!(budget.held.load(Ordering::Relaxed), 0);
    }
}
