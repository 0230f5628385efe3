//! Shared fixture: an authorization-server key, a client key, a pinned clock, and the layer.

#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::{
    Algorithm, ManualClock, PopConfig, PopConfigBuilder, RequirePopLayer, Verified, Verifier,
};

pub const ORIGIN: &str = "https://resource.example.org";
pub const PATH: &str = "/protectedresource";
pub const URL: &str = "https://resource.example.org/protectedresource";
pub const ISSUER: &str = "https://server.example.com";
pub const AUDIENCE: &str = "https://resource.example.org";
/// RFC 9449 Figure 14's `iat`.
pub const NOW: u64 = 1_562_262_618;
pub const ALGS: &str = r#"algs="ES256 PS256 EdDSA Ed25519""#;

pub struct Fixture {
    pub issuer_key: ProofSigner,
    pub client: ProofSigner,
    pub clock: ManualClock,
    pub verifier: Arc<Verifier>,
}

pub use tower_pop::test_util::{jwks_for, patch};

impl Fixture {
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    pub fn with(configure: impl FnOnce(PopConfigBuilder) -> PopConfigBuilder) -> Self {
        let issuer_key = ProofSigner::generate(Algorithm::ES256).unwrap();
        let client = ProofSigner::generate(Algorithm::ES256).unwrap();
        let clock = ManualClock::new(NOW);
        let builder = PopConfig::builder()
            .public_origin(ORIGIN)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks_json(jwks_for(&issuer_key, "as-1"))
            .clock(Arc::new(clock.clone()));
        let verifier = Arc::new(Verifier::new(configure(builder).build().unwrap()));
        Self {
            issuer_key,
            client,
            clock,
            verifier,
        }
    }

    /// Default RFC 9068 claims bound to the client key; `patch` members replace them, `null`
    /// removes one.
    pub fn claims(&self, changes: Value) -> Value {
        let claims = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "someone@example.com",
            "client_id": "s6BhdRkqt3",
            "iat": NOW,
            "exp": NOW + 600,
            "jti": "at-1",
            "scope": "read",
            "cnf": { "jkt": self.client.thumbprint() },
        });
        patch(claims, changes)
    }

    pub fn token_with(&self, header: Value, claims: Value) -> String {
        self.issuer_key.sign_compact(&header, &claims).unwrap()
    }

    pub fn at_header() -> Value {
        json!({"typ": "at+jwt", "alg": "ES256", "kid": "as-1"})
    }

    /// A DPoP-bound access token.
    pub fn token(&self) -> String {
        self.token_with(Self::at_header(), self.claims(json!({})))
    }

    pub fn token_patched(&self, patch: Value) -> String {
        self.token_with(Self::at_header(), self.claims(patch))
    }

    pub fn unbound_token(&self) -> String {
        self.token_patched(json!({"cnf": null}))
    }

    /// A valid proof for GET on the resource, bound to `token`.
    pub fn proof(&self, token: &str) -> String {
        self.client
            .proof_at("GET", URL, Some(token), None, NOW)
            .unwrap()
    }

    /// A proof with `claims` patched into the defaults and `header` as given.
    pub fn proof_custom(&self, header: Value, changes: Value, token: &str) -> String {
        let claims = json!({
            "jti": self.client.random_jti().unwrap(),
            "htm": "GET",
            "htu": URL,
            "iat": NOW,
            "ath": tower_pop::thumbprint::ath(token),
        });
        self.client
            .sign_compact(&header, &patch(claims, changes))
            .unwrap()
    }

    pub async fn send(&self, request: Request<String>) -> Response<String> {
        let mut service = service(Arc::clone(&self.verifier));
        service.ready().await.unwrap().call(request).await.unwrap()
    }

    pub async fn dpop(&self, token: &str, proof: &str) -> Response<String> {
        self.send(req("GET", PATH, &[&format!("DPoP {token}")], &[proof]))
            .await
    }
}

/// The layer around a handler that echoes the verified subject and binding.
pub fn service(
    verifier: Arc<Verifier>,
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .layer(RequirePopLayer::new(verifier))
        .service(service_fn(|req: Request<String>| async move {
            let verified = req.extensions().get::<Verified>().cloned();
            let body = match verified {
                Some(v) => {
                    json!({"sub": v.subject(), "binding": v.binding().as_str(), "jkt": v.jkt()})
                        .to_string()
                }
                None => "handler reached without verification".to_owned(),
            };
            Ok::<_, Infallible>(Response::new(body))
        }))
}

pub fn req(method: &str, path: &str, authorization: &[&str], dpop: &[&str]) -> Request<String> {
    let mut builder = Request::builder().method(method).uri(path);
    for a in authorization {
        builder = builder.header("authorization", *a);
    }
    for d in dpop {
        builder = builder.header("dpop", *d);
    }
    builder.body(String::new()).unwrap()
}

/// The challenges of the one `WWW-Authenticate` field, in order: `(scheme, parameters)`.
pub fn challenges(response: &Response<String>) -> Vec<(String, String)> {
    let fields = response.headers().get_all("www-authenticate");
    assert_eq!(fields.iter().count(), 1, "one WWW-Authenticate field");
    let value = fields.iter().next().unwrap().to_str().unwrap();
    tower_pop_test_support::www_authenticate::challenges(value)
}

/// The parameters of the challenge of `scheme` (empty when there is none).
pub fn challenge_params(response: &Response<String>, scheme: &str) -> String {
    challenges(response)
        .into_iter()
        .find(|(s, _)| s == scheme)
        .map(|(_, p)| p)
        .unwrap_or_default()
}

/// Assert a refusal: status, and `error="code"` in exactly the challenge of `scheme`
/// (`"both"`: in both; `None`: in none), which comes first (`DPoP` first for `both` and `None`).
/// The `DPoP` challenge is always there with `algs`; `Bearer` only where the rule offers it.
pub fn assert_refused(response: &Response<String>, status: u16, scheme: Option<&str>, code: &str) {
    assert_eq!(
        response.status().as_u16(),
        status,
        "body: {}",
        response.body()
    );
    assert!(response.body().is_empty());
    let challenges = challenges(response);
    let of = |name: &str| {
        challenges
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, p)| p.clone())
    };
    let dpop = of("DPoP").expect("a DPoP challenge");
    assert!(dpop.contains("algs=\""), "{dpop}");
    let bearer = of("Bearer").unwrap_or_default();
    let error = format!("error=\"{code}\"");
    let first = challenges[0].0.as_str();
    match scheme {
        Some("DPoP") => {
            assert!(dpop.contains(&error) && first == "DPoP", "{challenges:?}");
            assert!(!bearer.contains("error="), "{bearer}");
        }
        Some("Bearer") => {
            assert!(
                bearer.contains(&error) && first == "Bearer",
                "{challenges:?}"
            );
            assert!(!dpop.contains("error="), "{dpop}");
        }
        Some("both") => {
            assert!(
                bearer.contains(&error) && dpop.contains(&error) && first == "DPoP",
                "{challenges:?}"
            );
        }
        _ => assert!(
            !bearer.contains("error=") && !dpop.contains("error=") && first == "DPoP",
            "{challenges:?}"
        ),
    }
    assert!(response.extensions().get::<tower_pop::PopError>().is_some());
}

pub fn assert_ok(response: &Response<String>, binding: &str) {
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.headers()
    );
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["binding"], binding);
    assert_eq!(body["sub"], "someone@example.com");
}

/// A replay store that forgets every entry as soon as any caller's clock reaches its
/// `expires_at`, as the [`ReplayCache`](tower_pop::replay::ReplayCache) contract allows (Redis
/// does, by its own clock): what a slow request meets when other requests, or other instances,
/// have moved on.
#[derive(Debug, Default)]
pub struct ForgetfulStore {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], u64>>,
}

impl ForgetfulStore {
    /// Another caller's clock reads `now`: entries that expired by it are gone.
    pub fn time_passes(&self, now: u64) {
        self.entries
            .lock()
            .unwrap()
            .retain(|_, expiry| *expiry > now);
    }
}

impl tower_pop::replay::ReplayCache for ForgetfulStore {
    fn insert_if_absent(
        &self,
        entry: tower_pop::replay::ReplayEntry,
    ) -> tower_pop::replay::BoxFuture<
        '_,
        Result<tower_pop::replay::ReplayOutcome, tower_pop::replay::ReplayError>,
    > {
        use tower_pop::replay::ReplayOutcome;
        self.time_passes(entry.now());
        let mut entries = self.entries.lock().unwrap();
        let outcome = if entries.contains_key(entry.key()) {
            ReplayOutcome::Replayed
        } else {
            entries.insert(*entry.key(), entry.expires_at());
            ReplayOutcome::Fresh
        };
        Box::pin(async move { Ok(outcome) })
    }
}
