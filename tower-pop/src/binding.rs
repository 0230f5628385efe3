//! The binding policy: which proof of possession a token's confirmation (`cnf`, RFC 7800 §3)
//! requires, given the `Authorization` scheme the client used.
//!
//! | scheme | token's `cnf` | requirement |
//! |---|---|---|
//! | `DPoP` | `jkt` | a DPoP proof by that key, plus the client certificate if `x5t#S256` is also there (RFC 9449 §7.1) |
//! | `DPoP` | none, or only `x5t#S256` | refused: `invalid_token` (RFC 9449 §7.1) |
//! | `Bearer` | `jkt` | refused: `invalid_token`, a downgrade (RFC 9449 §7.2) |
//! | `Bearer` | `x5t#S256` | the client certificate it names (RFC 8705 §3: certificate-bound tokens use `Bearer`) |
//! | `Bearer` | none | nothing, only when bearer tokens are allowed; otherwise `invalid_token` |
//! | `Bearer` with a `DPoP` proof | no `jkt` | refused: `invalid_token`, even where bearer tokens are allowed (RFC 9449 §7.2) |
//!
//! A `cnf` that is present but names no method this crate can check never gets here: reading
//! the token refuses it (RFC 7800 §3.1), so an unusable binding never degrades to bearer.

use crate::error::{AuthScheme, PopErrorKind};
use crate::token::Confirmation;

/// What the request must prove for its token to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requirement<'a> {
    /// A DPoP proof signed by the key with this RFC 7638 thumbprint, and, when the token is also
    /// certificate-bound, the client certificate with this `x5t#S256`.
    Dpop {
        jkt: &'a str,
        certificate: Option<&'a str>,
    },
    /// The client certificate with this `x5t#S256`.
    Certificate { x5t_s256: &'a str },
    /// Nothing: an unbound bearer token, allowed by configuration.
    Bearer,
}

/// The requirement for a token confirmed by `cnf`, presented with `scheme`; `proof_sent`
/// says whether the request carries a `DPoP` field (it matters for the `Bearer` scheme only:
/// the `DPoP` scheme always needs one).
pub(crate) fn requirement(
    scheme: AuthScheme,
    cnf: &Confirmation,
    allow_bearer: bool,
    proof_sent: bool,
) -> Result<Requirement<'_>, PopErrorKind> {
    let jkt = cnf.jkt.as_deref();
    let x5t_s256 = cnf.x5t_s256.as_deref();
    match (scheme, jkt, x5t_s256) {
        (AuthScheme::Dpop, Some(jkt), certificate) => Ok(Requirement::Dpop { jkt, certificate }),
        (AuthScheme::Dpop, None, _) => Err(PopErrorKind::TokenNotDpopBound),
        (AuthScheme::Bearer, Some(_), _) => Err(PopErrorKind::BoundTokenAsBearer),
        (AuthScheme::Bearer, None, None) if !allow_bearer => Err(PopErrorKind::BearerNotAllowed),
        (AuthScheme::Bearer, None, _) if proof_sent => Err(PopErrorKind::TokenNotDpopBound),
        (AuthScheme::Bearer, None, Some(x5t_s256)) => Ok(Requirement::Certificate { x5t_s256 }),
        (AuthScheme::Bearer, None, None) => Ok(Requirement::Bearer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    const X5T: &str = "v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes";

    fn cnf(jkt: bool, x5t: bool) -> Confirmation {
        Confirmation {
            jkt: jkt.then(|| JKT.to_owned()),
            x5t_s256: x5t.then(|| X5T.to_owned()),
            jkt_owner: [0; 32],
            jkt_key: crate::dpop::known_key::KnownKey::default(),
        }
    }

    /// scheme, `cnf.jkt` present, `cnf["x5t#S256"]` present, `allow_bearer`, a `DPoP` field
    /// sent, requirement.
    type Row<'a> = (
        AuthScheme,
        bool,
        bool,
        bool,
        bool,
        Result<Requirement<'a>, PopErrorKind>,
    );

    /// Every scheme x `cnf` x `allow_bearer` x proof combination (DPOP-18..21,
    /// CNF-04, MTLS-01, PRM-05).
    #[test]
    fn scheme_by_confirmation_table() {
        use AuthScheme::{Bearer, Dpop};
        use PopErrorKind::*;
        let dpop = |certificate| {
            Ok(Requirement::Dpop {
                jkt: JKT,
                certificate,
            })
        };
        let cert = Ok(Requirement::Certificate { x5t_s256: X5T });
        #[rustfmt::skip]
        let table: [Row<'_>; 24] = [
            // scheme, jkt,  x5t,   allow_bearer, proof, requirement
            (Dpop,   true,  false, false, true,  dpop(None)),
            (Dpop,   true,  false, true,  true,  dpop(None)),
            (Dpop,   true,  true,  false, true,  dpop(Some(X5T))),
            (Dpop,   true,  true,  true,  true,  dpop(Some(X5T))),
            (Dpop,   false, true,  false, true,  Err(TokenNotDpopBound)),
            (Dpop,   false, true,  true,  true,  Err(TokenNotDpopBound)),
            (Dpop,   false, false, false, true,  Err(TokenNotDpopBound)),
            (Dpop,   false, false, true,  true,  Err(TokenNotDpopBound)),
            (Bearer, true,  false, false, false, Err(BoundTokenAsBearer)),
            (Bearer, true,  false, true,  false, Err(BoundTokenAsBearer)),
            (Bearer, true,  true,  false, false, Err(BoundTokenAsBearer)),
            (Bearer, true,  true,  true,  false, Err(BoundTokenAsBearer)),
            (Bearer, false, true,  false, false, cert),
            (Bearer, false, true,  true,  false, cert),
            (Bearer, false, false, false, false, Err(BearerNotAllowed)),
            (Bearer, false, false, true,  false, Ok(Requirement::Bearer)),
            // RFC 9449 §7.2: a proof with a token that is not DPoP-bound, even as Bearer.
            (Bearer, true,  false, false, true,  Err(BoundTokenAsBearer)),
            (Bearer, true,  false, true,  true,  Err(BoundTokenAsBearer)),
            (Bearer, true,  true,  false, true,  Err(BoundTokenAsBearer)),
            (Bearer, true,  true,  true,  true,  Err(BoundTokenAsBearer)),
            (Bearer, false, true,  false, true,  Err(TokenNotDpopBound)),
            (Bearer, false, true,  true,  true,  Err(TokenNotDpopBound)),
            (Bearer, false, false, false, true,  Err(BearerNotAllowed)),
            (Bearer, false, false, true,  true,  Err(TokenNotDpopBound)),
        ];
        for (scheme, jkt, x5t, allow_bearer, proof, expected) in table {
            let confirmation = cnf(jkt, x5t);
            assert_eq!(
                requirement(scheme, &confirmation, allow_bearer, proof),
                expected,
                "{scheme:?} jkt={jkt} x5t={x5t} allow_bearer={allow_bearer} proof={proof}"
            );
        }
    }
}
