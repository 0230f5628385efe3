//! The conformance table: requests that every adapter must answer identically, each with the
//! answer the RFCs call for (SPEC-CHECKLIST table 0.3). `conformance.rs` runs the table through
//! the bare tower layer, axum (`axum-pop`) and actix-web (`actix-pop`).

pub mod report;
pub mod run;

use std::sync::Arc;

use serde_json::{Value, json};
use std::net::SocketAddr;
use tower_pop::dpop::signer::ProofSigner;

use base64::Engine as _;
use tower_pop::mtls::proxy::{ClientCertHeader, ForwardedCertConfig, TrustedProxies};
use tower_pop::nonce::{NonceSecret, Nonces};
use tower_pop::test_util::{TestIssuer, patch};
use tower_pop::{Algorithm, ManualClock, PopConfig, Verifier};

/// The public origin every runner is configured with.
pub const ORIGIN: &str = "https://api.conformance.test";
/// The protected path.
pub const PATH: &str = "/whoami";
/// The target URI clients sign.
pub const URL: &str = "https://api.conformance.test/whoami";
const ISSUER: &str = "https://as.conformance.test";
/// The nonce secret of [`Fixture::nonce_verifier`].
pub const NONCE_SECRET: [u8; 32] = [7; 32];

fn nonces() -> Nonces {
    Nonces::new(NonceSecret::new(NONCE_SECRET.to_vec()).expect("secret"))
}

/// A fresh verifier for each stack a table runs through.
pub type VerifierFn<'a> = Box<dyn Fn() -> Arc<Verifier> + 'a>;

/// The pinned time (RFC 9449 Figure 14's `iat`).
pub const NOW: u64 = 1_562_262_618;

/// One HTTP request, framework-neutral.
#[derive(Debug, Clone)]
pub struct Req {
    /// Method.
    pub method: &'static str,
    /// Path.
    pub path: String,
    /// Header fields, in order, repeats allowed.
    pub headers: Vec<(&'static str, String)>,
    /// The TLS client certificate (DER) of the connection, if any.
    pub peer_certificate: Option<Vec<u8>>,
    /// The TCP peer (default 127.0.0.1).
    pub peer: SocketAddr,
}

/// What the answers are compared on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `WWW-Authenticate`, if any.
    pub www_authenticate: Option<String>,
    /// `DPoP-Nonce`, if any.
    pub dpop_nonce: Option<String>,
    /// `Cache-Control`, if any.
    pub cache_control: Option<String>,
    /// `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// `x-fapi-interaction-id`, if any: [`ECHOED`] when it is the one the request sent
    /// ([`INTERACTION_ID`]), [`GENERATED`] for another UUID (each stack makes its own).
    pub interaction_id: Option<String>,
}

/// The `x-fapi-interaction-id` the FAPI cases send.
pub const INTERACTION_ID: &str = "c770aef3-6784-41f7-8e0e-ff5f97bddb3a";
/// [`Answer::interaction_id`] when the response echoed [`INTERACTION_ID`].
pub const ECHOED: &str = "(echoed)";
/// [`Answer::interaction_id`] when the response carried a UUID of its own.
pub const GENERATED: &str = "(generated)";

impl Answer {
    /// What is compared of a response with this status, reading its header fields through
    /// `header` (each stack has its own header types).
    pub fn read(status: u16, header: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            status,
            www_authenticate: header("www-authenticate"),
            dpop_nonce: header("dpop-nonce"),
            cache_control: header("cache-control"),
            retry_after: header("retry-after"),
            interaction_id: Self::interaction(header("x-fapi-interaction-id").as_deref()),
        }
    }

    /// How an `x-fapi-interaction-id` value is compared: echoed, generated (a UUID of the
    /// server's), or anything else as it is.
    #[must_use]
    pub fn interaction(value: Option<&str>) -> Option<String> {
        let uuid = |v: &str| {
            v.len() == 36
                && v.bytes().enumerate().all(|(i, b)| {
                    if matches!(i, 8 | 13 | 18 | 23) {
                        b == b'-'
                    } else {
                        b.is_ascii_hexdigit()
                    }
                })
        };
        value.map(|v| match v {
            INTERACTION_ID => ECHOED.to_owned(),
            v if uuid(v) => GENERATED.to_owned(),
            v => v.to_owned(),
        })
    }
}

/// What a case must get: the status, and the `error` code in the challenge of a scheme.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Status code.
    pub status: u16,
    /// `(scheme, error)`: the challenge of `scheme` (`"Bearer"`, `"DPoP"` or `"both"`)
    /// carries `error`; `None`: no challenge carries an error.
    pub error: Option<(&'static str, &'static str)>,
}

/// A named sequence of requests; `expect` applies to the last one.
#[derive(Debug, Clone)]
pub struct Case {
    /// Name.
    pub name: &'static str,
    /// Requests sent in order to one fresh server.
    pub requests: Vec<Req>,
    /// The answer to the last request.
    pub expect: Expect,
}

/// Keys and tokens shared by every runner, so the same bytes go to each.
#[derive(Debug)]
pub struct Fixture {
    issuer: TestIssuer,
    client: ProofSigner,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Fixture {
    /// Fresh issuer and client keys.
    ///
    /// # Panics
    /// If key generation fails.
    #[must_use]
    pub fn new() -> Self {
        Self {
            issuer: TestIssuer::new(ISSUER, ORIGIN),
            client: ProofSigner::generate(Algorithm::ES256).expect("client key"),
        }
    }

    /// A fresh verifier for the fixture's issuer at the pinned time, with `configure`'s
    /// settings on top.
    fn build_verifier(
        &self,
        configure: impl FnOnce(tower_pop::PopConfigBuilder) -> tower_pop::PopConfigBuilder,
    ) -> Arc<Verifier> {
        let builder = PopConfig::builder()
            .public_origin(ORIGIN)
            .issuer(ISSUER)
            .audience(ORIGIN)
            .jwks_json(self.issuer.jwks_json())
            .clock(Arc::new(ManualClock::new(NOW)));
        Arc::new(Verifier::new(
            configure(builder).build().expect("valid configuration"),
        ))
    }

    /// A fresh verifier (its own replay store) at the pinned time.
    ///
    /// # Panics
    /// If the configuration is refused.
    #[must_use]
    pub fn verifier(&self) -> Arc<Verifier> {
        self.build_verifier(|b| b)
    }

    /// A fresh verifier like [`verifier`](Self::verifier) that also requires nonces minted
    /// under [`NONCE_SECRET`].
    ///
    /// # Panics
    /// If the configuration is refused.
    #[must_use]
    pub fn nonce_verifier(&self) -> Arc<Verifier> {
        self.build_verifier(|b| b.require_nonce(nonces()))
    }

    /// A fresh verifier with the FAPI 2.0 profile ([`PopConfigBuilder::fapi2`]).
    ///
    /// # Panics
    /// If the configuration is refused.
    ///
    /// [`PopConfigBuilder::fapi2`]: tower_pop::PopConfigBuilder::fapi2
    #[must_use]
    pub fn fapi_verifier(&self) -> Arc<Verifier> {
        self.build_verifier(|b| b.fapi2())
    }

    /// Cases for the FAPI 2.0 profile (SPEC-CHECKLIST FAPI-*), run with
    /// [`fapi_verifier`](Self::fapi_verifier); each also checks `x-fapi-interaction-id`
    /// (the second of each pair: the `x-fapi-interaction-id` the last answer must carry).
    #[must_use]
    pub fn fapi_cases(&self) -> Vec<(Case, Option<&'static str>)> {
        let t = self.token(json!({}));
        let auth = format!("DPoP {t}");
        let id = ("x-fapi-interaction-id", INTERACTION_ID.to_owned());
        let dpop = |changes: Value, with_id: bool| {
            let mut headers = vec![
                ("authorization", auth.clone()),
                ("dpop", self.proof(&t, json!({}), changes)),
            ];
            if with_id {
                headers.push(id.clone());
            }
            Self::get(headers)
        };
        let case = |name, req: Req, status, error| Case {
            name,
            requests: vec![req],
            expect: Expect { status, error },
        };
        let unbound = self.token(json!({"cnf": null}));
        let rsa = ProofSigner::generate(Algorithm::RS256).expect("RSA key");
        let rsa_token = self.token(json!({"cnf": {"jkt": rsa.thumbprint()}}));
        let rsa_proof = rsa
            .proof_at("GET", URL, Some(&rsa_token), None, NOW)
            .expect("signing");
        vec![
            (
                case(
                    "FAPI-01: a bound token with its proof, the id echoed",
                    dpop(json!({}), true),
                    200,
                    None,
                ),
                Some(ECHOED),
            ),
            (
                case(
                    "FAPI-01: no interaction id sent, one made",
                    dpop(json!({}), false),
                    200,
                    None,
                ),
                Some(GENERATED),
            ),
            (
                case(
                    "FAPI-05: an unbound token is refused, the id echoed",
                    Self::get(vec![
                        ("authorization", format!("Bearer {unbound}")),
                        id.clone(),
                    ]),
                    401,
                    Some(("Bearer", "invalid_token")),
                ),
                Some(ECHOED),
            ),
            (
                case(
                    "FAPI-06: an RS256 proof is refused",
                    Self::get(vec![
                        ("authorization", format!("DPoP {rsa_token}")),
                        ("dpop", rsa_proof),
                    ]),
                    401,
                    Some(("DPoP", "invalid_dpop_proof")),
                ),
                Some(GENERATED),
            ),
            (
                case(
                    "FAPI-07: a proof 9 s ahead passes",
                    dpop(json!({"iat": NOW + 9}), true),
                    200,
                    None,
                ),
                Some(ECHOED),
            ),
            (
                case(
                    "FAPI-07: a proof 61 s ahead is refused",
                    dpop(json!({"iat": NOW + 61}), true),
                    401,
                    Some(("DPoP", "invalid_dpop_proof")),
                ),
                Some(ECHOED),
            ),
            (
                case(
                    "FAPI: a malformed interaction id is never echoed",
                    Self::get(vec![
                        ("authorization", auth.clone()),
                        ("dpop", self.proof(&t, json!({}), json!({}))),
                        ("x-fapi-interaction-id", "<script>".to_owned()),
                    ]),
                    200,
                    None,
                ),
                Some(GENERATED),
            ),
        ]
    }

    /// Every table, each with the verifier it runs against: the main cases, nonces, quotas,
    /// certificates, FAPI 2.0.
    #[must_use]
    pub fn tables(&self) -> Vec<(Vec<Case>, VerifierFn<'_>)> {
        let fapi = self
            .fapi_cases()
            .into_iter()
            .map(|(case, _)| case)
            .collect();
        vec![
            (self.cases(), Box::new(|| self.verifier())),
            (self.nonce_cases(), Box::new(|| self.nonce_verifier())),
            (self.quota_cases(), Box::new(|| self.quota_verifier())),
            (self.mtls_cases(), Box::new(|| self.proxy_verifier())),
            (fapi, Box::new(|| self.fapi_verifier())),
        ]
    }

    /// The per-key proof quota of [`quota_verifier`](Self::quota_verifier).
    pub const QUOTA: u64 = 2;

    /// A fresh verifier like [`verifier`](Self::verifier) with a per-key proof quota of
    /// [`QUOTA`](Self::QUOTA).
    ///
    /// # Panics
    /// If the configuration is refused.
    #[must_use]
    pub fn quota_verifier(&self) -> Arc<Verifier> {
        self.build_verifier(|b| b.proof_key_quota(Self::QUOTA))
    }

    /// Cases for the per-key proof quota (RFC 9449 §11.1 store sizing), run with
    /// [`quota_verifier`](Self::quota_verifier): one key past its quota gets 429 with
    /// `Retry-After` and no challenge, while another key still gets 200.
    #[must_use]
    pub fn quota_cases(&self) -> Vec<Case> {
        let t = self.token(json!({}));
        let other = ProofSigner::generate(Algorithm::ES256).expect("other client key");
        let t2 = self.token(json!({"jti": "at-2", "cnf": {"jkt": other.thumbprint()}}));
        let a = || {
            Self::get(vec![
                ("authorization", format!("DPoP {t}")),
                ("dpop", self.proof(&t, json!({}), json!({}))),
            ])
        };
        let b = || {
            Self::get(vec![
                ("authorization", format!("DPoP {t2}")),
                (
                    "dpop",
                    other
                        .proof_at("GET", URL, Some(&t2), None, NOW)
                        .expect("signing"),
                ),
            ])
        };
        let case = |name, requests, status| Case {
            name,
            requests,
            expect: Expect {
                status,
                error: None,
            },
        };
        vec![
            case("one key at its proof quota", vec![a(), a()], 200),
            case("one key over its proof quota", vec![a(), a(), a()], 429),
            case(
                "one key over its proof quota, then another key",
                vec![a(), a(), a(), b()],
                200,
            ),
            case(
                "one key over its proof quota stays refused",
                vec![a(), a(), a(), b(), a()],
                429,
            ),
        ]
    }

    /// Cases for a server that requires nonces (RFC 9449 §9), run with
    /// [`nonce_verifier`](Self::nonce_verifier).
    #[must_use]
    pub fn nonce_cases(&self) -> Vec<Case> {
        let t = self.token(json!({}));
        let auth = format!("DPoP {t}");
        let with_nonce = |nonce: Option<&str>| {
            Self::get(vec![
                ("authorization", auth.clone()),
                (
                    "dpop",
                    self.client
                        .proof_at("GET", URL, Some(&t), nonce, NOW)
                        .expect("signing"),
                ),
            ])
        };
        let case = |name, req: Req, status, error| Case {
            name,
            requests: vec![req],
            expect: Expect { status, error },
        };
        let live = nonces().issue(NOW);
        let foreign = Nonces::new(NonceSecret::new(vec![9; 32]).expect("secret")).issue(NOW);
        vec![
            case(
                "nonce missing",
                with_nonce(None),
                401,
                Some(("DPoP", "use_dpop_nonce")),
            ),
            case("nonce valid", with_nonce(Some(&live)), 200, None),
            case(
                "nonce from another secret",
                with_nonce(Some(&foreign)),
                401,
                Some(("DPoP", "use_dpop_nonce")),
            ),
            case(
                "nonce malformed",
                with_nonce(Some("x")),
                401,
                Some(("DPoP", "use_dpop_nonce")),
            ),
            case(
                "nonce valid, proof key stolen",
                Self::get(vec![
                    ("authorization", auth.clone()),
                    (
                        "dpop",
                        ProofSigner::generate(Algorithm::ES256)
                            .expect("key")
                            .proof_at("GET", URL, Some(&t), Some(&live), NOW)
                            .expect("signing"),
                    ),
                ]),
                401,
                Some(("DPoP", "invalid_token")),
            ),
        ]
    }

    fn token(&self, changes: Value) -> String {
        let claims = json!({
            "iss": ISSUER, "aud": ORIGIN, "sub": "alice", "client_id": "c1",
            "iat": NOW, "exp": NOW + 600, "jti": "at-1",
            "cnf": { "jkt": self.client.thumbprint() },
        });
        self.issuer
            .sign(&self.issuer.header(), &patch(claims, changes))
    }

    fn proof(&self, token: &str, header: Value, changes: Value) -> String {
        let claims = json!({
            "jti": self.client.random_jti().expect("signing"), "htm": "GET", "htu": URL, "iat": NOW,
            "ath": tower_pop::thumbprint::ath(token),
        });
        self.client
            .sign_compact(
                &patch(self.client.proof_header(), header),
                &patch(claims, changes),
            )
            .expect("signing")
    }

    fn get(headers: Vec<(&'static str, String)>) -> Req {
        Req {
            method: "GET",
            path: PATH.to_owned(),
            headers,
            peer_certificate: None,
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        }
    }

    /// A fresh verifier like [`verifier`](Self::verifier) that also trusts RFC 9440
    /// `Client-Cert` headers from 127.0.0.2.
    ///
    /// # Panics
    /// If the configuration is refused.
    #[must_use]
    pub fn proxy_verifier(&self) -> Arc<Verifier> {
        let proxies = TrustedProxies::new(["127.0.0.2/32"]).expect("CIDR");
        self.build_verifier(|b| {
            b.forwarded_certificates(ForwardedCertConfig::new(proxies, ClientCertHeader::Rfc9440))
        })
    }

    /// Certificate-bound tokens (RFC 8705 §3): over TLS and forwarded by a proxy (RFC 9440),
    /// run with [`proxy_verifier`](Self::proxy_verifier).
    #[must_use]
    pub fn mtls_cases(&self) -> Vec<Case> {
        let pki = tower_pop_test_support::pki();
        let (a, b) = (pki.client_a.der(), pki.client_b.der());
        let token = self.token(json!({"cnf": {"x5t#S256": pki.client_a.x5t()}}));
        let bearer = ("authorization", format!("Bearer {token}"));
        let tls = |cert: Option<&Vec<u8>>| {
            let mut req = Self::get(vec![bearer.clone()]);
            req.peer_certificate = cert.cloned();
            req
        };
        let forwarded = |cert: &[u8], peer: [u8; 4]| {
            let value = format!(
                ":{}:",
                base64::engine::general_purpose::STANDARD.encode(cert)
            );
            let mut req = Self::get(vec![bearer.clone(), ("client-cert", value)]);
            req.peer = SocketAddr::from((peer, 40000));
            req
        };
        let case = |name, req: Req, status, error| Case {
            name,
            requests: vec![req],
            expect: Expect { status, error },
        };
        let invalid = Some(("Bearer", "invalid_token"));
        vec![
            case("mTLS: the bound certificate", tls(Some(&a)), 200, None),
            case("mTLS: another certificate", tls(Some(&b)), 401, invalid),
            case("mTLS: no certificate", tls(None), 401, invalid),
            case(
                "proxy: bound certificate from the trusted proxy",
                forwarded(&a, [127, 0, 0, 2]),
                200,
                None,
            ),
            case(
                "proxy: another certificate from the trusted proxy",
                forwarded(&b, [127, 0, 0, 2]),
                401,
                invalid,
            ),
            case(
                "proxy: bound certificate from an untrusted peer",
                forwarded(&a, [127, 0, 0, 1]),
                401,
                invalid,
            ),
            {
                // On the proxy's connection the TLS certificate is the proxy's: never used.
                let mut req = tls(Some(&a));
                req.peer = SocketAddr::from(([127, 0, 0, 2], 40000));
                case(
                    "proxy: no header, TLS certificate of the proxy's connection",
                    req,
                    401,
                    invalid,
                )
            },
        ]
    }

    /// The table.
    #[must_use]
    pub fn cases(&self) -> Vec<Case> {
        let t = self.token(json!({}));
        let auth = format!("DPoP {t}");
        let good = || self.proof(&t, json!({}), json!({}));
        let dpop =
            |proof: String| Self::get(vec![("authorization", auth.clone()), ("dpop", proof)]);
        let case = |name, req: Req, status, error| Case {
            name,
            requests: vec![req],
            expect: Expect { status, error },
        };
        let bad_proof = |name, proof: String| {
            case(name, dpop(proof), 401, Some(("DPoP", "invalid_dpop_proof")))
        };
        let unsigned_none = {
            let header = patch(self.client.proof_header(), json!({"alg": "none"}));
            let payload = json!({"jti": "n", "htm": "GET", "htu": URL, "iat": NOW, "ath": tower_pop::thumbprint::ath(&t)});
            format!(
                "{}.{}.",
                b64(header.to_string().as_bytes()),
                b64(payload.to_string().as_bytes())
            )
        };
        let zero_signature = {
            let p = good();
            let (input, _) = p.rsplit_once('.').unwrap_or_default();
            format!("{input}.{}", b64(&[0; 64]))
        };
        let rsa = ProofSigner::generate(Algorithm::PS256).expect("rsa key");
        let thief = ProofSigner::generate(Algorithm::ES256).expect("thief key");
        let unbound = self.token(json!({"cnf": null}));
        let replayed = good();
        vec![
            case("valid DPoP request", dpop(good()), 200, None),
            case("no credentials", Self::get(vec![]), 401, None),
            case("unsupported scheme", Self::get(vec![("authorization", "Basic dXNlcjpwdw==".into())]), 401, None),
            case("proof without token", Self::get(vec![("dpop", good())]), 401, None),
            case(
                "two Authorization fields",
                Self::get(vec![("authorization", auth.clone()), ("authorization", format!("Bearer {t}")), ("dpop", good())]),
                400,
                Some(("both", "invalid_request")),
            ),
            case("folded Authorization", Self::get(vec![("authorization", format!("{auth}, Bearer {t}"))]), 400, Some(("both", "invalid_request"))),
            case("scheme without token", Self::get(vec![("authorization", "DPoP".into())]), 400, Some(("DPoP", "invalid_request"))),
            case("missing proof", Self::get(vec![("authorization", auth.clone())]), 401, Some(("DPoP", "invalid_dpop_proof"))),
            case(
                "two proofs",
                Self::get(vec![("authorization", auth.clone()), ("dpop", good()), ("dpop", good())]),
                401,
                Some(("DPoP", "invalid_dpop_proof")),
            ),
            bad_proof("not a JWS", "a.b".into()),
            bad_proof("typ JWT", self.proof(&t, json!({"typ": "JWT"}), json!({}))),
            bad_proof("alg none", unsigned_none),
            bad_proof("alg outside allow-list", {
                let mut h = rsa.proof_header();
                h["alg"] = json!("RS256");
                rsa.sign_compact(&h, &json!({"jti": "r", "htm": "GET", "htu": URL, "iat": NOW, "ath": tower_pop::thumbprint::ath(&t)})).expect("signing")
            }),
            bad_proof("alg does not fit the key", self.proof(&t, json!({"alg": "ES384"}), json!({}))),
            bad_proof("private key in jwk", self.proof(&t, json!({"jwk": patch(self.client.proof_header()["jwk"].clone(), json!({"d": "AAAA"}))}), json!({}))),
            bad_proof("crit header", self.proof(&t, json!({"crit": ["x"]}), json!({}))),
            bad_proof("zero signature", zero_signature),
            bad_proof("htm mismatch", self.proof(&t, json!({}), json!({"htm": "POST"}))),
            bad_proof("htu mismatch", self.proof(&t, json!({}), json!({"htu": format!("{ORIGIN}/other")}))),
            bad_proof("iat too old", self.proof(&t, json!({}), json!({"iat": NOW - 600}))),
            bad_proof("iat in the future", self.proof(&t, json!({}), json!({"iat": NOW + 600}))),
            bad_proof("ath of another token", self.proof(&t, json!({}), json!({"ath": tower_pop::thumbprint::ath("other")}))),
            case("stolen token, thief's key", dpop(thief.proof_at("GET", URL, Some(&t), None, NOW).expect("signing")), 401, Some(("DPoP", "invalid_token"))),
            case(
                "DPoP scheme, unbound token",
                Self::get(vec![("authorization", format!("DPoP {unbound}")), ("dpop", self.proof(&unbound, json!({}), json!({})))]),
                401,
                Some(("DPoP", "invalid_token")),
            ),
            case("downgrade to Bearer", Self::get(vec![("authorization", format!("Bearer {t}")), ("dpop", good())]), 401, Some(("Bearer", "invalid_token"))),
            case("unbound Bearer token, PoP required", Self::get(vec![("authorization", format!("Bearer {unbound}"))]), 401, Some(("Bearer", "invalid_token"))),
            {
                let expired = self.token(json!({"exp": NOW - 3600}));
                case(
                    "expired token",
                    Self::get(vec![("authorization", format!("DPoP {expired}")), ("dpop", self.proof(&expired, json!({}), json!({})))]),
                    401,
                    Some(("DPoP", "invalid_token")),
                )
            },
            {
                let both = self.token(json!({"cnf": {"jkt": self.client.thumbprint(), "jwk": {"kty": "EC"}}}));
                case(
                    "cnf with jkt and an unverifiable jwk",
                    Self::get(vec![("authorization", format!("DPoP {both}")), ("dpop", self.proof(&both, json!({}), json!({})))]),
                    401,
                    Some(("DPoP", "invalid_token")),
                )
            },
            {
                let header = json!({"typ": "at+jwt", "alg": "ES256"});
                let claims = json!({"iss": ISSUER, "aud": ORIGIN, "sub": "alice", "client_id": "c1",
                    "iat": NOW, "exp": NOW + 600, "jti": "at-2", "cnf": {"jkt": self.client.thumbprint()}});
                let no_kid = self.issuer.sign(&header, &claims);
                case(
                    "token without kid (RFC 9068 profile)",
                    Self::get(vec![("authorization", format!("DPoP {no_kid}")), ("dpop", self.proof(&no_kid, json!({}), json!({})))]),
                    401,
                    Some(("DPoP", "invalid_token")),
                )
            },
            {
                let no_client_id = self.token(json!({"client_id": null}));
                case(
                    "token without client_id (RFC 9068 profile)",
                    Self::get(vec![("authorization", format!("DPoP {no_client_id}")), ("dpop", self.proof(&no_client_id, json!({}), json!({})))]),
                    401,
                    Some(("DPoP", "invalid_token")),
                )
            },
            bad_proof("proof key off the curve (JKT-06)", {
                let mut jwk = self.client.proof_header()["jwk"].clone();
                let y = jwk["y"].as_str().unwrap_or_default().to_owned();
                // Another first character keeps y canonical but moves the point off P-256.
                let other = if y.starts_with('A') { "B" } else { "A" };
                jwk["y"] = json!(format!("{other}{}", &y[1..]));
                self.proof(&t, json!({"jwk": jwk}), json!({}))
            }),
            bad_proof("RSA proof key above 4096 bits", {
                let n = b64(&[0xc5; 1024]);
                self.proof(&t, json!({"alg": "PS256", "jwk": {"kty": "RSA", "n": n, "e": "AQAB"}}), json!({}))
            }),
            Case {
                name: "replayed proof",
                requests: vec![dpop(replayed.clone()), dpop(replayed)],
                expect: Expect { status: 401, error: Some(("DPoP", "invalid_dpop_proof")) },
            },
        ]
    }
}

/// Check an answer against what the case expects.
///
/// # Errors
/// A description of the difference.
pub fn check(answer: &Answer, expect: Expect) -> Result<(), String> {
    if answer.status != expect.status {
        return Err(format!(
            "status {} (expected {})",
            answer.status, expect.status
        ));
    }
    if expect.status == 200 {
        return Ok(());
    }
    // RFC 6585 §4: a rate refusal, no authentication challenge, and when to come back.
    if expect.status == 429 {
        return match (&answer.www_authenticate, &answer.retry_after) {
            (None, Some(_)) => Ok(()),
            _ => Err(format!(
                "429 needs Retry-After and no challenge: {answer:?}"
            )),
        };
    }
    let value = answer
        .www_authenticate
        .as_deref()
        .ok_or("no WWW-Authenticate")?;
    let challenges = tower_pop_test_support::www_authenticate::challenges(value);
    let of = |scheme: &str| {
        challenges
            .iter()
            .find(|(s, _)| s == scheme)
            .map(|(_, p)| p.as_str())
    };
    let dpop = of("DPoP").ok_or("no DPoP challenge")?;
    let bearer = of("Bearer").unwrap_or_default();
    if !dpop.contains("algs=\"") {
        return Err(format!("DPoP challenge without algs: {value}"));
    }
    // The challenge of the scheme used comes first and carries the error; DPoP otherwise.
    let first = challenges[0].0.as_str();
    let ok = match expect.error {
        None => !value.contains("error=") && first == "DPoP",
        Some((scheme, code)) => {
            let e = format!("error=\"{code}\"");
            match scheme {
                "Bearer" => first == "Bearer" && bearer.contains(&e) && !dpop.contains("error="),
                "DPoP" => first == "DPoP" && dpop.contains(&e) && !bearer.contains("error="),
                _ => first == "DPoP" && bearer.contains(&e) && dpop.contains(&e),
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("challenge {value}"))
    }
}
