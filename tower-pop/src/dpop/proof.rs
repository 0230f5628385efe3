//! Parsing a DPoP proof and the checks of RFC 9449 §4.3, one small function per check.
//!
//! [`Proof::parse`] does the structural checks (1-7: one well-formed compact JWS, `typ`, an
//! allowed asymmetric `alg`, a public `jwk` that fits it, required claims with the right types);
//! the request-bound checks (8-12: `htm`, `htu`, `iat`, `ath`, signature, key binding) run in
//! [`crate::verifier`], which knows the request and the token. The key binding and the
//! signature of a proof sent with a cached token go through [`super::known_key`] first, which
//! may answer them without hashing or importing the key again.

use std::borrow::Cow;

use aws_lc_rs::signature::ParsedPublicKey;

use super::nonce::{NonceInfo, Nonces};
use crate::error::PopErrorKind;
use crate::jose::digest::is_b64url_of;
use crate::jose::json::{Member, parse_json_members};
use crate::jose::jwk::PublicJwk;
use crate::jose::jws::{CompactJws, HeaderError, HeaderRules, read_header};
use crate::jose::{Algorithm, b64url_decode_slice, b64url_decoded_room, numeric_date};

/// Longest `DPoP` header value accepted (RFC 9449 §11.1): enough for an RSA-8192 key, bounded.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest `jti` accepted (RFC 9449 §11.1).
pub(crate) const MAX_JTI_LEN: usize = 256;

/// A structurally valid proof whose signature is not yet checked. No `Debug`: it holds the
/// proof's bytes. Its claims and key members borrow from the proof and its [`ProofBytes`].
pub(crate) struct Proof<'a> {
    pub(crate) alg: Algorithm,
    /// Read from the header, or the key a token remembered when the header is the one it kept.
    pub(crate) key: Cow<'a, PublicJwk<'a>>,
    /// The encoded protected header, as sent.
    pub(crate) header: &'a [u8],
    /// The key as imported when the header was read (not when it was the kept one).
    imported: Option<ParsedPublicKey>,
    pub(crate) jti: Cow<'a, str>,
    pub(crate) htm: Cow<'a, str>,
    pub(crate) htu: Cow<'a, str>,
    pub(crate) iat: u64,
    pub(crate) ath: Option<Cow<'a, str>>,
    pub(crate) nonce: Option<Cow<'a, str>>,
    signing_input: &'a [u8],
    signature: &'a [u8],
}

/// Where a proof's three parts are decoded: one allocation per proof rather than one per part,
/// kept by the caller so the parsed [`Proof`] can borrow from it.
#[derive(Default)]
pub(crate) struct ProofBytes(Vec<u8>);

/// A required string claim.
fn string_claim(member: Option<Member<'_>>) -> Result<Cow<'_, str>, PopErrorKind> {
    match member {
        Some(Member::Str(s)) => Ok(s),
        _ => Err(PopErrorKind::MalformedProof),
    }
}

/// An optional claim that is a string when present.
fn optional_string_claim(member: Option<Member<'_>>) -> Result<Option<Cow<'_, str>>, PopErrorKind> {
    match member {
        None => Ok(None),
        Some(Member::Str(s)) => Ok(Some(s)),
        Some(Member::Object(_) | Member::Other(_)) => Err(PopErrorKind::MalformedProof),
    }
}

/// Checks 5 and 7: `jwk` is a public key of the type and curve `alg` needs (RFC 9449 §4.3 step 5,
/// §4.2), cheap to verify (RSA: 2048-4096 bits, exponent below 2^32), and one aws-lc imports (an
/// EC point on its curve, RFC 8725 §3.4); the key and its import for `alg`.
/// The key comes only from `jwk`; `kid`, `jku`, `x5u`, `x5c` are never used (RFC 9449 §4.2).
fn check_jwk<'a>(
    jwk: Option<&Member<'a>>,
    alg: Algorithm,
) -> Result<(PublicJwk<'a>, ParsedPublicKey), PopErrorKind> {
    let Some(Member::Object(jwk)) = jwk else {
        return Err(PopErrorKind::MalformedProof);
    };
    let key = PublicJwk::from_proof_json(jwk.as_slice()).ok_or(PopErrorKind::InvalidProofKey)?;
    if !(key.fits(alg) && key.fits_proof_bounds()) {
        return Err(PopErrorKind::InvalidProofKey);
    }
    let imported = key.import(alg).ok_or(PopErrorKind::InvalidProofKey)?;
    Ok((key, imported))
}

/// `iat` is a JSON number (RFC 9449 §4.2).
fn iat_claim(iat: Option<&Member<'_>>) -> Result<u64, PopErrorKind> {
    match iat {
        Some(Member::Other(value)) => numeric_date(value).ok_or(PopErrorKind::MalformedProof),
        _ => Err(PopErrorKind::MalformedProof),
    }
}

/// The claims a proof may carry (RFC 9449 §4.2); others are checked as JSON and ignored.
const CLAIMS: [&str; 6] = ["jti", "htm", "htu", "iat", "ath", "nonce"];

/// Checks 2-5 and 7 on the encoded protected header, decoded into `room` (RFC 9449 §4.3): the
/// JOSE header rules shared with access tokens (`typ` `dpop+jwt`, no `crit`, `b64` or `cty`, an
/// allowed `alg`), then a `jwk` that fits `alg`, with its import.
fn read_proof_header<'a>(
    encoded: &[u8],
    room: &'a mut [u8],
    allowed: &[Algorithm],
) -> Result<(Algorithm, PublicJwk<'a>, ParsedPublicKey), PopErrorKind> {
    let json = b64url_decode_slice(encoded, room).ok_or(PopErrorKind::MalformedProof)?;
    let rules = HeaderRules {
        typ: Some("dpop+jwt"),
        algorithms: allowed,
    };
    let header = read_header(json, &rules).map_err(|e| match e {
        HeaderError::Malformed => PopErrorKind::MalformedProof,
        HeaderError::UnsupportedAlgorithm => PopErrorKind::UnsupportedAlgorithm,
    })?;
    let (key, imported) = check_jwk(header.jwk.as_ref(), header.alg)?;
    Ok((header.alg, key, imported))
}

impl<'a> Proof<'a> {
    /// Checks 2-7 of RFC 9449 §4.3 on one `DPoP` header value, decoding into `bytes`.
    pub(crate) fn parse(
        value: &'a [u8],
        allowed: &[Algorithm],
        bytes: &'a mut ProofBytes,
    ) -> Result<Self, PopErrorKind> {
        Self::parse_knowing(value, allowed, bytes, |_| None)
    }

    /// [`parse`](Self::parse), for a proof whose header may be one already read: `kept` is asked
    /// about the encoded protected header and, when it answers with the `alg` and key that very
    /// header was read as before (the remembered key's room, [`super::known_key`]), the header is
    /// not decoded or read again.
    pub(crate) fn parse_knowing(
        value: &'a [u8],
        allowed: &[Algorithm],
        bytes: &'a mut ProofBytes,
        kept: impl FnOnce(&[u8]) -> Option<(Algorithm, &'a PublicJwk<'static>)>,
    ) -> Result<Self, PopErrorKind> {
        if value.len() > MAX_PROOF_LEN {
            return Err(PopErrorKind::MalformedProof);
        }
        let jws = CompactJws::split(value).ok_or(PopErrorKind::MalformedProof)?;
        let shown = kept(jws.header);
        let header_room = match shown {
            Some(_) => 0,
            None => b64url_decoded_room(jws.header.len()),
        };
        let room = [jws.payload, jws.signature].map(|part| b64url_decoded_room(part.len()));
        bytes.0.clear();
        bytes.0.resize(header_room + room.iter().sum::<usize>(), 0);
        let (header, rest) = bytes.0.split_at_mut(header_room);
        let (payload, signature) = rest.split_at_mut(room[0]);
        let (alg, key, imported) = match shown {
            Some((alg, key)) => (alg, Cow::Borrowed(key), None),
            None => {
                let (alg, key, imported) = read_proof_header(jws.header, header, allowed)?;
                (alg, Cow::Owned(key), Some(imported))
            }
        };
        let payload =
            b64url_decode_slice(jws.payload, payload).ok_or(PopErrorKind::MalformedProof)?;
        let [jti, htm, htu, iat, ath, nonce] =
            parse_json_members(payload, &CLAIMS).ok_or(PopErrorKind::MalformedProof)?;
        let jti = string_claim(jti)?;
        if jti.is_empty() || jti.len() > MAX_JTI_LEN {
            return Err(PopErrorKind::MalformedProof);
        }
        let signature =
            b64url_decode_slice(jws.signature, signature).ok_or(PopErrorKind::MalformedProof)?;
        Ok(Self {
            alg,
            key,
            header: jws.header,
            imported,
            jti,
            htm: string_claim(htm)?,
            htu: string_claim(htu)?,
            iat: iat_claim(iat.as_ref())?,
            ath: optional_string_claim(ath)?,
            nonce: optional_string_claim(nonce)?,
            signing_input: jws.signing_input,
            signature,
        })
    }

    /// Check 8: `htm` equals the request method, case-sensitively (RFC 9449 §4.3 step 8).
    pub(crate) fn check_htm(&self, method: &str) -> Result<(), PopErrorKind> {
        if self.htm == method {
            Ok(())
        } else {
            Err(PopErrorKind::HtmMismatch)
        }
    }

    /// Check 9: `htu` equals the normalised request target (RFC 9449 §4.3 step 9).
    pub(crate) fn check_htu(&self, normalized_target: &str) -> Result<(), PopErrorKind> {
        match super::htu::normalize(&self.htu) {
            Some(htu) if htu == normalized_target => Ok(()),
            _ => Err(PopErrorKind::HtuMismatch),
        }
    }

    /// Check 10: when the server requires nonces, `nonce` is present and is one this server
    /// (or an instance sharing its secret) supplied and still live (RFC 9449 §4.3 step 10, §9).
    pub(crate) fn check_nonce(&self, nonces: &Nonces, now: u64) -> Result<NonceInfo, PopErrorKind> {
        let nonce = self.nonce.as_deref().ok_or(PopErrorKind::NonceRequired)?;
        nonces
            .check(nonce, now)
            .map_err(|_| PopErrorKind::InvalidNonce)
    }

    /// Check 11: `now - max_age <= iat <= now + future_skew` (RFC 9449 §4.3 step 11, FAPI 2.0 §5.3.2.1 item 13).
    pub(crate) fn check_iat(
        &self,
        now: u64,
        max_age: u64,
        future_skew: u64,
    ) -> Result<(), PopErrorKind> {
        if self.iat <= now.saturating_add(future_skew) && now <= self.iat.saturating_add(max_age) {
            Ok(())
        } else {
            Err(PopErrorKind::IatOutOfWindow)
        }
    }

    /// Check 12, first bullet: `ath` is the hash of the presented token, present and exact
    /// (RFC 9449 §4.2). Decoded and compared with `token_hash`: strict base64url has one
    /// spelling per value, so this is the string compare without building the string.
    /// Constant time although neither side is secret, as a habit.
    pub(crate) fn check_ath(&self, token_hash: &[u8; 32]) -> Result<(), PopErrorKind> {
        match &self.ath {
            Some(ath) if is_b64url_of(ath, token_hash) => Ok(()),
            _ => Err(PopErrorKind::AthMismatch),
        }
    }

    /// Check 6: the signature verifies with `jwk` under `alg` (RFC 9449 §4.3 step 6), by the key
    /// as imported when the header was read (or, for a kept header, imported now); the import is
    /// handed back, for the token to remember.
    pub(crate) fn check_signature(&mut self) -> Result<ParsedPublicKey, PopErrorKind> {
        let imported = match self.imported.take() {
            Some(imported) => imported,
            None => self
                .key
                .import(self.alg)
                .ok_or(PopErrorKind::InvalidProofKey)?,
        };
        self.check_signature_with(&imported)?;
        Ok(imported)
    }

    /// Check 6 with the key as imported before (the same key, so the same answer).
    pub(crate) fn check_signature_with(
        &self,
        imported: &ParsedPublicKey,
    ) -> Result<(), PopErrorKind> {
        if self
            .key
            .verify_imported(imported, self.alg, self.signing_input, self.signature)
        {
            Ok(())
        } else {
            Err(PopErrorKind::BadSignature)
        }
    }

    /// The RFC 7638 thumbprint of the proof key.
    pub(crate) fn thumbprint(&self) -> String {
        self.key.thumbprint()
    }

    /// Check 12, second bullet: the proof key's thumbprint equals `cnf.jkt`, compared in
    /// constant time (RFC 9449 §4.3 step 12 second bullet, RFC 9449 §6.1), as digests: `cnf.jkt`
    /// is strict base64url, so one spelling per digest.
    pub(crate) fn check_key_binding(&self, cnf_jkt: &str) -> Result<(), PopErrorKind> {
        if is_b64url_of(cnf_jkt, &self.key.thumbprint_digest()) {
            Ok(())
        } else {
            Err(PopErrorKind::KeyBindingMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9449 Figure 13 (TV-4).
    pub(crate) const P13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";

    #[test]
    fn rfc9449_figure_13_parses_and_verifies() {
        let mut bytes = ProofBytes::default();
        let mut p =
            Proof::parse(P13.as_bytes(), &[Algorithm::ES256], &mut bytes).expect("P13 parses");
        assert_eq!(p.htm, "GET");
        assert_eq!(p.iat, 1_562_262_618);
        assert_eq!(p.jti, "e1j3V_bKic8-LAEB");
        p.check_signature().expect("P13 signature");
        // The token of RFC 9449 Figure 13; its hash is the proof's `ath` (TV-4).
        let token_hash =
            crate::jose::digest::sha256(b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU");
        p.check_ath(&token_hash).expect("ath");
        let mut other = token_hash;
        other[31] ^= 1;
        assert_eq!(p.check_ath(&other), Err(PopErrorKind::AthMismatch));
        p.check_key_binding("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
            .expect("jkt");
        assert_eq!(
            p.check_key_binding("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4J")
                .err(),
            Some(PopErrorKind::KeyBindingMismatch),
            "a non-canonical spelling of the same digest is refused"
        );
        assert_eq!(
            p.check_key_binding("1ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
                .err(),
            Some(PopErrorKind::KeyBindingMismatch)
        );
    }

    /// JKT-06: a key that is not on its curve is refused when the header is read, before any
    /// token work (the key is imported there).
    #[test]
    fn off_curve_keys_are_refused_when_read_jkt_06() {
        let signer = crate::dpop::signer::ProofSigner::generate(Algorithm::ES256).expect("key");
        let mut header = signer.proof_header();
        let y = header["jwk"]["y"].as_str().expect("y").to_owned();
        let other = if y.starts_with('A') { "B" } else { "A" };
        header["jwk"]["y"] = format!("{other}{}", &y[1..]).into();
        let claims =
            serde_json::json!({"jti": "j", "htm": "GET", "htu": "https://a.example/", "iat": 1});
        let proof = signer.sign_compact(&header, &claims).expect("signs");
        let mut bytes = ProofBytes::default();
        assert_eq!(
            Proof::parse(proof.as_bytes(), &[Algorithm::ES256], &mut bytes).err(),
            Some(PopErrorKind::InvalidProofKey)
        );
    }

    #[test]
    fn alg_outside_allow_list_is_refused_dpop_06() {
        assert_eq!(
            Proof::parse(
                P13.as_bytes(),
                &[Algorithm::PS256],
                &mut ProofBytes::default()
            )
            .err(),
            Some(PopErrorKind::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn tampered_signature_fails_dpop_08() {
        let mut bad = P13.to_owned();
        bad.pop();
        bad.push('B');
        // Last char change may break canonical base64 (trailing bits) or the signature; both refuse.
        let r = Proof::parse(
            bad.as_bytes(),
            &[Algorithm::ES256],
            &mut ProofBytes::default(),
        )
        .and_then(|mut p| p.check_signature());
        assert!(r.is_err());
    }

    #[test]
    fn iat_window_dpop_14() {
        let mut bytes = ProofBytes::default();
        let p = Proof::parse(P13.as_bytes(), &[Algorithm::ES256], &mut bytes).expect("parses");
        let iat = 1_562_262_618;
        assert!(p.check_iat(iat, 60, 10).is_ok());
        assert!(p.check_iat(iat + 60, 60, 10).is_ok());
        assert_eq!(
            p.check_iat(iat + 61, 60, 10),
            Err(PopErrorKind::IatOutOfWindow)
        );
        assert!(p.check_iat(iat - 5, 60, 10).is_ok());
        assert_eq!(
            p.check_iat(iat - 11, 60, 10),
            Err(PopErrorKind::IatOutOfWindow)
        );
        assert_eq!(
            p.check_iat(iat + 600, 60, 10),
            Err(PopErrorKind::IatOutOfWindow)
        );
    }

    #[test]
    fn oversized_proof_is_malformed_rpl_03() {
        let huge = "a".repeat(MAX_PROOF_LEN + 1);
        assert_eq!(
            Proof::parse(huge.as_bytes(), &Algorithm::ALL, &mut ProofBytes::default()).err(),
            Some(PopErrorKind::MalformedProof)
        );
    }
}
