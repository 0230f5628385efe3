//! Public keys carried as JWKs (RFC 7517/7518 §6, RFC 8037 §2): strict parsing, the
//! algorithm-to-key match, and signature verification with aws-lc-rs.
//!
//! A key has exactly one spelling: members are strict base64url, EC coordinates have the full
//! curve length, RSA integers have no leading zero octet (RFC 7518 §6.2.1.2, §6.3.1.1), so one key
//! cannot produce two thumbprints (RFC 7638 §7). Private members are refused outright (RFC 9449 §4.2).

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use sha2::{Digest, Sha256};

use crate::digest::ct_eq;
use crate::jose::{Algorithm, Member, b64url, b64url_decode, b64url_decode_slice};

/// Members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Smallest RSA modulus accepted, in bits (FAPI 2.0 §5.4.1, RFC 8725 §3.5 guidance).
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits: bounds the work an attacker's key can cost us.
const MAX_RSA_BITS: usize = 8192;

/// Largest RSA modulus accepted for a DPoP proof key: a client's key is the attacker's choice,
/// and an RSA-8192 verification costs ~30 times an RSA-2048 one.
pub(crate) const MAX_PROOF_RSA_BITS: usize = 4096;

/// Elliptic curves for ECDSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// The ECDSA algorithm of this curve (RFC 7518 §3.4).
    fn algorithm(self) -> Algorithm {
        match self {
            Self::P256 => Algorithm::ES256,
            Self::P384 => Algorithm::ES384,
            Self::P521 => Algorithm::ES512,
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }
}

/// A validated public key. Its base64url members borrow from where it was read (a proof's
/// decoded header) or are owned ([`PublicJwk::into_owned`], a JWK Set's keys).
#[derive(Clone)]
pub(crate) enum PublicJwk<'a> {
    Ec {
        curve: Curve,
        x: Cow<'a, str>,
        y: Cow<'a, str>,
        /// `04 || x || y`, decoded.
        point: EcPoint,
    },
    Rsa {
        n: Cow<'a, str>,
        e: Cow<'a, str>,
        n_bytes: Vec<u8>,
        e_bytes: Vec<u8>,
    },
    Ed25519 {
        x: Cow<'a, str>,
        /// `x`, decoded.
        bytes: [u8; 32],
    },
}

/// An uncompressed EC point, `04 || x || y`, of up to P-521's size.
#[derive(Clone, Copy)]
pub(crate) struct EcPoint {
    bytes: [u8; 1 + 2 * 66],
    len: usize,
}

impl EcPoint {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

// Key material stays out of logs even though it is public: Debug names only the type.
impl std::fmt::Debug for PublicJwk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Ec { curve, .. } => curve.name(),
            Self::Rsa { .. } => "RSA",
            Self::Ed25519 { .. } => "Ed25519",
        };
        write!(f, "PublicJwk({kind})")
    }
}

/// A JSON object a key is read from: a parsed map (JWK Sets) or the members of a proof's `jwk`
/// as read without a map ([`crate::jose::parse_json_members`]); one reading rule for both.
pub(crate) trait JwkMembers<'a> {
    /// Whether the member is present, whatever its value.
    fn has(&self, name: &str) -> bool;
    /// The member's value when it is a string, borrowed for `'a` where the reader allows.
    fn string(&self, name: &str) -> Option<Cow<'a, str>>;
}

impl<'a> JwkMembers<'a> for &'a Map<String, Value> {
    fn has(&self, name: &str) -> bool {
        self.contains_key(name)
    }

    fn string(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name)?.as_str().map(Cow::Borrowed)
    }
}

impl<'a> JwkMembers<'a> for &[(Cow<'a, str>, Member<'a>)] {
    fn has(&self, name: &str) -> bool {
        self.iter().any(|(k, _)| k == name)
    }

    fn string(&self, name: &str) -> Option<Cow<'a, str>> {
        match &self.iter().find(|(k, _)| k == name)?.1 {
            Member::Str(Cow::Borrowed(s)) => Some(Cow::Borrowed(s)),
            // A member spelled with escapes: rare, copied.
            Member::Str(Cow::Owned(s)) => Some(Cow::Owned(s.clone())),
            Member::Object(_) | Member::Other(_) => None,
        }
    }
}

impl<'a> PublicJwk<'a> {
    /// Parse a JWK object as a public key; `None` if it is private, symmetric, unknown, not
    /// canonically encoded, or an EC point not on its curve (JKT-06).
    pub(crate) fn from_json(jwk: impl JwkMembers<'a>) -> Option<Self> {
        let key = Self::from_proof_json(jwk)?;
        let imports = match &key {
            Self::Ec { curve, .. } => key.import(curve.algorithm()).is_some(),
            Self::Ed25519 { .. } => key.import(Algorithm::EdDSA).is_some(),
            Self::Rsa { .. } => true,
        };
        imports.then_some(key)
    }

    /// [`from_json`](Self::from_json) without importing the key: an EC point is checked on its
    /// curve when [`import`](Self::import)ed, which a proof's parse does right after (and the
    /// import is then used for its signature).
    pub(crate) fn from_proof_json(jwk: impl JwkMembers<'a>) -> Option<Self> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.has(m)) {
            return None;
        }
        match &*jwk.string("kty")? {
            "EC" => {
                let curve = match &*jwk.string("crv")? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    "P-521" => Curve::P521,
                    _ => return None,
                };
                let (x, y) = (jwk.string("x")?, jwk.string("y")?);
                // `04 || x || y`, each coordinate decoded in place and of the curve's length.
                let len = curve.coordinate_len();
                // Three bytes of room past the end: base64url decodes in groups of three.
                let mut room = [0u8; 1 + 2 * 66 + 3];
                room[0] = 0x04;
                for (i, coordinate) in [&x, &y].into_iter().enumerate() {
                    let at = 1 + i * len;
                    if b64url_decode_slice(coordinate.as_bytes(), &mut room[at..])?.len() != len {
                        return None;
                    }
                }
                let mut point = [0u8; 1 + 2 * 66];
                point.copy_from_slice(&room[..1 + 2 * 66]);
                let point = EcPoint {
                    bytes: point,
                    len: 1 + 2 * len,
                };
                Some(Self::Ec { curve, x, y, point })
            }
            "RSA" => {
                let (n, e) = (jwk.string("n")?, jwk.string("e")?);
                let (n_bytes, e_bytes) =
                    (b64url_decode(n.as_bytes())?, b64url_decode(e.as_bytes())?);
                let first = *n_bytes.first()?;
                if first == 0 || *e_bytes.first()? == 0 || e_bytes.len() > 8 {
                    return None;
                }
                let bits = (n_bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return None;
                }
                Some(Self::Rsa {
                    n,
                    e,
                    n_bytes,
                    e_bytes,
                })
            }
            "OKP" => {
                if jwk.string("crv")? != "Ed25519" {
                    return None;
                }
                let x = jwk.string("x")?;
                let mut room = [0u8; 33];
                let bytes = b64url_decode_slice(x.as_bytes(), &mut room)?;
                let bytes = <[u8; 32]>::try_from(bytes).ok()?;
                Some(Self::Ed25519 { x, bytes })
            }
            _ => None,
        }
    }

    /// Whether `alg` is meant for this key type and curve (RFC 9449 §4.3 step 5, RFC 8725 §3.1).
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Ec { curve, .. } => matches!(
                (alg, curve),
                (ES256, Curve::P256) | (ES384, Curve::P384) | (ES512, Curve::P521)
            ),
            Self::Rsa { .. } => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::Ed25519 { .. } => matches!(alg, EdDSA | Algorithm::Ed25519),
        }
    }

    /// The key imported into aws-lc for `alg` (which it must [`fit`](Self::fits)); `None`
    /// when aws-lc refuses it, as it does an EC point that is not on its curve (RFC 8725 §3.4).
    /// This is the work of a key import per proof that a remembered key saves (about 1.4 us for
    /// P-256, measured; an RSA key's Montgomery context is computed at its first verification
    /// and kept with it).
    pub(crate) fn import(&self, alg: Algorithm) -> Option<ParsedPublicKey> {
        match self {
            Self::Ec { curve, point, .. } => {
                ParsedPublicKey::new(curve_verifier(*curve), point.as_slice()).ok()
            }
            Self::Rsa {
                n_bytes, e_bytes, ..
            } => RsaPublicKeyComponents {
                n: n_bytes.as_slice(),
                e: e_bytes.as_slice(),
            }
            .to_parsed_public_key(rsa_params(alg))
            .ok(),
            Self::Ed25519 { bytes, .. } => ParsedPublicKey::new(&sig::ED25519, bytes).ok(),
        }
    }

    /// Verify `signature` over `message` with `alg` by `imported`, this key as imported for
    /// `alg`. ECDSA signatures must be the fixed `R || S` form of RFC 7518 §3.4; a DER signature
    /// or `r = s = 0` fails (RFC 9449 §4.3 step 6).
    pub(crate) fn verify_imported(
        &self,
        imported: &ParsedPublicKey,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let length_fits = match self {
            Self::Ec { curve, .. } => signature.len() == 2 * curve.coordinate_len(),
            Self::Rsa { .. } | Self::Ed25519 { .. } => true,
        };
        self.fits(alg) && length_fits && imported.verify_sig(message, signature).is_ok()
    }

    /// Import and verify: [`import`](Self::import), then
    /// [`verify_imported`](Self::verify_imported); `false` when the key does not import.
    #[cfg(test)]
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.fits(alg)
            && self
                .import(alg)
                .is_some_and(|key| self.verify_imported(&key, alg, message, signature))
    }

    /// The same key for `jsonwebtoken`, which verifies access tokens; `None` for P-521, which
    /// it does not support.
    pub(crate) fn decoding_key(&self) -> Option<jsonwebtoken::DecodingKey> {
        match self {
            Self::Ec {
                curve: Curve::P521, ..
            } => None,
            Self::Ec { x, y, .. } => jsonwebtoken::DecodingKey::from_ec_components(x, y).ok(),
            Self::Rsa {
                n_bytes, e_bytes, ..
            } => Some(jsonwebtoken::DecodingKey::from_rsa_raw_components(
                n_bytes, e_bytes,
            )),
            Self::Ed25519 { x, .. } => jsonwebtoken::DecodingKey::from_ed_components(x).ok(),
        }
    }

    /// Whether the key is cheap enough to verify for a DPoP proof: RSA moduli of 2048-4096 bits
    /// and public exponents below 2^32; every EC and Ed25519 key.
    pub(crate) fn fits_proof_bounds(&self) -> bool {
        match self {
            Self::Rsa {
                n_bytes, e_bytes, ..
            } => {
                let bits =
                    n_bytes.len() * 8 - n_bytes.first().map_or(8, |b| b.leading_zeros() as usize);
                bits <= MAX_PROOF_RSA_BITS && e_bytes.len() <= 4
            }
            _ => true,
        }
    }

    /// The same key, owning its members.
    pub(crate) fn into_owned(self) -> PublicJwk<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        match self {
            Self::Ec { curve, x, y, point } => PublicJwk::Ec {
                curve,
                x: own(x),
                y: own(y),
                point,
            },
            Self::Rsa {
                n,
                e,
                n_bytes,
                e_bytes,
            } => PublicJwk::Rsa {
                n: own(n),
                e: own(e),
                n_bytes,
                e_bytes,
            },
            Self::Ed25519 { x, bytes } => PublicJwk::Ed25519 { x: own(x), bytes },
        }
    }

    /// RFC 7638 SHA-256 thumbprint, base64url without padding.
    pub(crate) fn thumbprint(&self) -> String {
        b64url(&self.thumbprint_digest())
    }

    /// RFC 7638 SHA-256 thumbprint, as the digest.
    pub(crate) fn thumbprint_digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for piece in self.canonical_pieces() {
            hash.update(piece.as_bytes());
        }
        hash.finalize().into()
    }

    /// Whether this key's canonical form (RFC 7638 §3.3) is `known`, byte for byte (so its
    /// thumbprint is that of `known`), compared piece by piece in constant time.
    pub(crate) fn has_canonical_form(&self, known: &[u8]) -> bool {
        let mut rest = known;
        let mut equal = true;
        for piece in self.canonical_pieces() {
            match rest.split_at_checked(piece.len()) {
                Some((head, tail)) => {
                    equal &= ct_eq(head, piece.as_bytes());
                    rest = tail;
                }
                None => return false,
            }
        }
        equal && rest.is_empty()
    }

    /// The canonical form (RFC 7638 §3.3), built.
    pub(crate) fn canonical_form(&self) -> Box<[u8]> {
        self.canonical_pieces()
            .concat()
            .into_bytes()
            .into_boxed_slice()
    }

    /// The canonical form (RFC 7638 §3.3) in pieces. Every value is base64url or a fixed name,
    /// so no JSON escaping is ever needed and the form can be hashed or compared piece by
    /// piece, without building it.
    fn canonical_pieces(&self) -> [&str; 7] {
        match self {
            Self::Ec { curve, x, y, .. } => [
                r#"{"crv":""#,
                curve.name(),
                r#"","kty":"EC","x":""#,
                x.as_ref(),
                r#"","y":""#,
                y.as_ref(),
                r#""}"#,
            ],
            Self::Rsa { n, e, .. } => [
                r#"{"e":""#,
                e.as_ref(),
                r#"","kty":"RSA","n":""#,
                n.as_ref(),
                r#""}"#,
                "",
                "",
            ],
            Self::Ed25519 { x, .. } => [
                r#"{"crv":"Ed25519","kty":"OKP","x":""#,
                x.as_ref(),
                r#""}"#,
                "",
                "",
                "",
                "",
            ],
        }
    }
}

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
pub(crate) struct ShownBudget {
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
pub(crate) struct Showing<'k> {
    pub(crate) key: &'k PublicJwk<'k>,
    pub(crate) alg: Algorithm,
    pub(crate) header: &'k [u8],
    pub(crate) imported: ParsedPublicKey,
}

/// A remembered key: see [`KnownKey`].
pub(crate) struct RememberedKey {
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
    pub(crate) fn imported_for(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        self.shown
            .get()
            .filter(|shown| shown.alg == alg)
            .map(|shown| &shown.imported)
    }

    /// The `alg` and key of a proof whose encoded protected header is `header`, when it is the
    /// header kept (public bytes: compared as such), and its `alg` is in `allowed`.
    pub(crate) fn header(
        &self,
        header: &[u8],
        allowed: &[Algorithm],
    ) -> Option<(Algorithm, &PublicJwk<'static>)> {
        self.shown
            .get()
            .filter(|shown| *shown.header == *header && allowed.contains(&shown.alg))
            .map(|shown| (shown.alg, &shown.key))
    }

    /// Keep what a proof by this key `showed`, unless something is kept already, its header is
    /// longer than any honest one, or the budget has no room; a later proof may offer again.
    pub(crate) fn offer(&self, showed: Showing<'_>) {
        self.offer_within(&SHOWN, showed);
    }

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
}

impl KnownKey {
    /// The remembered key, when `key` is it.
    pub(crate) fn matching(&self, key: &PublicJwk<'_>) -> Option<&RememberedKey> {
        self.0
            .get()
            .filter(|known| key.has_canonical_form(&known.form))
            .map(|known| &**known)
    }

    /// The remembered key, when there is one.
    pub(crate) fn remembered(&self) -> Option<&RememberedKey> {
        self.0.get().map(|known| &**known)
    }

    /// This token's remembered key, when `remembered` is it (the very one, not an equal one).
    pub(crate) fn own(&self, remembered: &RememberedKey) -> Option<&RememberedKey> {
        self.remembered()
            .filter(|known| std::ptr::eq(*known, remembered))
    }

    /// Whether `key` is the remembered key.
    #[cfg(test)]
    pub(crate) fn is(&self, key: &PublicJwk<'_>) -> bool {
        self.matching(key).is_some()
    }

    /// Remember the key a proof `showed`, whose thumbprint the caller has found equal to
    /// `cnf.jkt` and whose signature verified.
    pub(crate) fn remember(&self, showed: Showing<'_>) {
        self.remember_within(&SHOWN, showed);
    }

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
        if let Some(remembered) = self.matching(key) {
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

fn curve_verifier(curve: Curve) -> &'static sig::EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &sig::ECDSA_P521_SHA512_FIXED,
    }
}

fn rsa_params(alg: Algorithm) -> &'static RsaParameters {
    match alg {
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        // `fits` admits only RSA algorithms here; RS256 is the remaining one.
        _ => &sig::RSA_PKCS1_2048_8192_SHA256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::parse_json_object;

    const RFC9449_JWK: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;

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

    fn key(json: &str) -> Option<PublicJwk<'static>> {
        Some(PublicJwk::from_json(&parse_json_object(json.as_bytes())?)?.into_owned())
    }

    #[test]
    fn rfc8037_a4_ed25519_signature_verifies() {
        // TV-10, RFC 8037 Appendix A.4.
        let k = key(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .expect("valid key");
        let sig = b64url_decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg").expect("b64");
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        assert!(k.verify(Algorithm::EdDSA, input, &sig));
        assert!(!k.verify(
            Algorithm::EdDSA,
            b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmd",
            &sig
        ));
        assert!(!k.verify(Algorithm::ES256, input, &sig));
        // RFC 9864's fully-specified name verifies the same signature.
        assert!(k.verify(Algorithm::Ed25519, input, &sig));
    }

    #[test]
    fn rejects_private_and_symmetric_keys_dpop_09() {
        assert!(key(r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#).is_none());
        assert!(key(r#"{"kty":"oct","k":"c2VjcmV0"}"#).is_none());
    }

    #[test]
    fn rejects_non_canonical_ec_coordinates_jkt_04() {
        assert!(key(RFC9449_JWK).is_some());
        // 33-byte x (leading zero added) and 31-byte x (first byte dropped).
        let x33 = crate::jose::b64url(
            &[
                &[0u8][..],
                &b64url_decode("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs").expect("b64"),
            ]
            .concat(),
        );
        assert!(
            key(&RFC9449_JWK.replace("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", &x33))
                .is_none()
        );
        let x31 = crate::jose::b64url(
            &b64url_decode("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs").expect("b64")[1..],
        );
        assert!(
            key(&RFC9449_JWK.replace("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", &x31))
                .is_none()
        );
        // Padding and the standard alphabet are refused (JKT-05).
        assert!(key(&RFC9449_JWK.replace("BFs\"", "BFs=\"")).is_none());
        assert!(key(&RFC9449_JWK.replace("x-34", "x+34")).is_none());
    }

    #[test]
    fn rejects_missing_members_unknown_curves_and_points_off_curve_jkt_06() {
        assert!(
            key(r#"{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"}"#)
                .is_none()
        );
        assert!(key(&RFC9449_JWK.replace("P-256", "secp256k1")).is_none());
        // Change the first y character: canonical still, but (x, y') is not on P-256.
        let off_curve = RFC9449_JWK.replace("9VE4", "8VE4");
        let map = parse_json_object(off_curve.as_bytes()).expect("JSON");
        assert!(PublicJwk::from_proof_json(&map).is_some(), "well formed");
        assert!(key(&off_curve).is_none());
        assert!(key(r#"{"kty":"EC","crv":"P-256","x":1,"y":2}"#).is_none());
    }

    #[test]
    fn rejects_small_and_zero_padded_rsa_moduli() {
        let n1024 = crate::jose::b64url(&[0xC5; 128]);
        assert!(key(&format!(r#"{{"kty":"RSA","n":"{n1024}","e":"AQAB"}}"#)).is_none());
        let n2048 = crate::jose::b64url(&[0xC5; 256]);
        assert!(key(&format!(r#"{{"kty":"RSA","n":"{n2048}","e":"AQAB"}}"#)).is_some());
        let padded = crate::jose::b64url(&[&[0u8][..], &[0xC5; 256]].concat());
        assert!(key(&format!(r#"{{"kty":"RSA","n":"{padded}","e":"AQAB"}}"#)).is_none());
    }

    /// `from_proof_json` reads a key without importing it; the import (which the proof's parse
    /// makes right after, unless the header is one a token kept) refuses a point off the curve
    /// (JKT-06).
    #[test]
    fn proof_keys_are_imported_at_the_signature_check_jkt_06() {
        let off_curve = RFC9449_JWK.replace("9VE4", "8VE4");
        let map = parse_json_object(off_curve.as_bytes()).expect("JSON");
        let key = PublicJwk::from_proof_json(&map).expect("read, not imported");
        assert!(key.import(Algorithm::ES256).is_none());
        let map = parse_json_object(RFC9449_JWK.as_bytes()).expect("JSON");
        let key = PublicJwk::from_proof_json(&map).expect("read");
        assert!(key.import(Algorithm::ES256).is_some());
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
        let remembered = first.matching(&key).expect("remembered");
        assert!(first.own(remembered).is_some() && second.own(remembered).is_none());
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
        let over = second
            .matching(&key)
            .expect("the form is remembered anyway");
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
        let mut signature = b64url_decode(signature).expect("b64");
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
