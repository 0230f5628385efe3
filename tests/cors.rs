//! The CORS presets (`axum_pop::cors`, `actix_pop::cors`) around each adapter's verifier: the
//! same requests get the same status, challenge and CORS headers on axum and actix
//! (SPEC-CHECKLIST BRR-09), and the wrong order (CORS inside the verifier) breaks preflights on
//! both, which is why the docs insist on it.

use std::sync::Arc;

use actix_web::{App, HttpResponse, test as actix_test, web};
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::Request;
use tower::ServiceExt;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::nonce::Nonces;
use tower_pop::test_util::TestIssuer;
use tower_pop::{Algorithm, ManualClock, PopConfig, Verifier};

const API: &str = "https://api.cors.test";
const ISSUER: &str = "https://as.cors.test";
const APP: &str = "https://app.cors.test";
const NOW: u64 = 1_700_000_000;

type Headers = Vec<(&'static str, String)>;

/// What a browser acts on, header lists sorted (actix-cors does not keep the configured order).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    allow_origin: Option<String>,
    expose: Vec<String>,
    allow_headers: Vec<String>,
    allow_methods: Vec<String>,
    max_age: Option<String>,
    credentials: Option<String>,
    vary: Vec<String>,
    www_authenticate: Option<String>,
    dpop_nonce: bool,
}

fn seen(status: u16, header: impl Fn(&str) -> Option<String>) -> Seen {
    let list = |name: &str| {
        let mut items: Vec<String> = header(name)
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        items.sort();
        items
    };
    Seen {
        status,
        allow_origin: header("access-control-allow-origin"),
        expose: list("access-control-expose-headers"),
        allow_headers: list("access-control-allow-headers"),
        allow_methods: list("access-control-allow-methods"),
        max_age: header("access-control-max-age"),
        credentials: header("access-control-allow-credentials"),
        vary: list("vary"),
        www_authenticate: header("www-authenticate"),
        dpop_nonce: header("dpop-nonce").is_some(),
    }
}

struct Setup {
    issuer: TestIssuer,
    client: ProofSigner,
}

impl Setup {
    fn new() -> Self {
        Self {
            issuer: TestIssuer::new(ISSUER, API),
            client: ProofSigner::generate(Algorithm::ES256).expect("key"),
        }
    }

    fn verifier(&self) -> Arc<Verifier> {
        Arc::new(Verifier::new(
            PopConfig::builder()
                .public_origin(API)
                .issuer(ISSUER)
                .audience(API)
                .jwks_json(self.issuer.jwks_json())
                .require_nonce(Nonces::random().expect("nonces"))
                .clock(Arc::new(ManualClock::new(NOW)))
                .build()
                .expect("valid configuration"),
        ))
    }

    /// The requests: preflights, a refusal, a nonce challenge, no Origin, another origin.
    fn requests(&self) -> Vec<(&'static str, Headers)> {
        let token = self.issuer.dpop_token(NOW, self.client.thumbprint());
        let proof = self
            .client
            .proof_at("GET", &format!("{API}/whoami"), Some(&token), None, NOW)
            .expect("signing");
        let preflight = |origin: &str, headers: &str| {
            vec![
                ("origin", origin.to_owned()),
                ("access-control-request-method", "POST".to_owned()),
                ("access-control-request-headers", headers.to_owned()),
            ]
        };
        vec![
            ("OPTIONS", preflight(APP, "authorization,dpop")),
            ("OPTIONS", preflight(APP, "authorization,content-type,dpop")),
            ("GET", vec![("origin", APP.to_owned())]),
            (
                "GET",
                vec![
                    ("origin", APP.to_owned()),
                    ("authorization", format!("DPoP {token}")),
                    ("dpop", proof),
                ],
            ),
            ("GET", vec![]),
            ("GET", vec![("origin", "https://evil.cors.test".to_owned())]),
        ]
    }
}

async fn axum_answers(app: Router, requests: &[(&'static str, Headers)]) -> Vec<Seen> {
    let mut answers = Vec::new();
    for (method, headers) in requests {
        let mut request = Request::builder().method(*method).uri("/whoami");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Body::empty()).expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let h = response.headers();
        answers.push(seen(response.status().as_u16(), |name| {
            h.get(name).map(|v| v.to_str().expect("ASCII").to_owned())
        }));
    }
    answers
}

/// The answers of an initialised actix test service (a macro: its service type is unnameable).
macro_rules! actix_answers {
    ($app:expr, $requests:expr) => {{
        let mut answers = Vec::new();
        for (method, headers) in $requests {
            let mut request = actix_test::TestRequest::default()
                .method(method.parse().expect("method"))
                .uri("/whoami");
            for (name, value) in headers {
                request = request.insert_header((*name, value.as_str()));
            }
            let response = actix_test::call_service($app, request.to_request()).await;
            let h = response.headers();
            answers.push(seen(response.status().as_u16(), |name| {
                h.get(name).map(|v| v.to_str().expect("ASCII").to_owned())
            }));
        }
        answers
    }};
}

fn axum_app(verifier: Arc<Verifier>) -> Router {
    Router::new()
        .route("/whoami", any(|_auth: axum_pop::PopAuth| async { "ok" }))
        .route_layer(axum_pop::RequirePopLayer::new(verifier))
        .layer(axum_pop::cors::dpop_cors([APP]).expect("origin"))
}

async fn whoami(_auth: actix_pop::PopAuth) -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

#[actix_web::test]
async fn cors_presets_answer_identically_on_axum_and_actix() {
    let setup = Setup::new();
    let requests = setup.requests();
    let axum = axum_answers(axum_app(setup.verifier()), &requests).await;
    let app = actix_test::init_service(
        App::new()
            .wrap(actix_pop::cors::dpop_cors([APP]).expect("origin"))
            .service(
                web::resource("/whoami")
                    .wrap(actix_pop::RequirePop::new(setup.verifier()))
                    .to(whoami),
            ),
    )
    .await;
    let actix = actix_answers!(&app, &requests);

    // The preflights: answered by the CORS layer, without a challenge.
    for preflight in &axum[..2] {
        assert_eq!(preflight.status, 200, "{preflight:?}");
        assert_eq!(preflight.allow_origin.as_deref(), Some(APP));
        assert_eq!(
            preflight.allow_headers,
            ["authorization", "content-type", "dpop"]
        );
        assert_eq!(
            preflight.allow_methods,
            ["delete", "get", "head", "patch", "post", "put"]
        );
        assert_eq!(preflight.max_age.as_deref(), Some("600"));
        assert_eq!(preflight.credentials, None);
        assert_eq!(preflight.www_authenticate, None);
    }
    // The refusal and the nonce challenge: readable by the page.
    // A cross-origin 401 exposes WWW-Authenticate and DPoP-Nonce (BRR-09).
    let exposed = ["dpop-nonce", "retry-after", "www-authenticate"];
    for refusal in &axum[2..4] {
        assert_eq!(refusal.status, 401);
        assert_eq!(refusal.allow_origin.as_deref(), Some(APP));
        assert_eq!(refusal.expose, exposed);
        assert!(refusal.www_authenticate.is_some());
    }
    assert!(axum[3].dpop_nonce);
    assert!(
        axum[3]
            .www_authenticate
            .as_deref()
            .is_some_and(|c| c.contains("use_dpop_nonce"))
    );
    // No Origin, or another origin: no Access-Control-Allow-Origin.
    assert_eq!(axum[4].allow_origin, None);
    assert_eq!(axum[5].allow_origin, None);

    for (i, (a, b)) in axum.iter().zip(&actix).enumerate() {
        assert_eq!(a, b, "request {i}: {:?}", requests[i]);
    }
}

#[actix_web::test]
async fn cors_inside_the_verifier_breaks_preflights_on_both() {
    let setup = Setup::new();
    let requests = setup.requests();
    // axum: `layer` first, then `route_layer`: the verifier ends up outside.
    let wrong = Router::new()
        .route("/whoami", any(|_auth: axum_pop::PopAuth| async { "ok" }))
        .layer(axum_pop::cors::dpop_cors([APP]).expect("origin"))
        .route_layer(axum_pop::RequirePopLayer::new(setup.verifier()));
    let axum = axum_answers(wrong, &requests[..1]).await;
    // actix: on one resource the last `.wrap` is outermost.
    let app = actix_test::init_service(
        App::new().service(
            web::resource("/whoami")
                .wrap(actix_pop::cors::dpop_cors([APP]).expect("origin"))
                .wrap(actix_pop::RequirePop::new(setup.verifier()))
                .to(whoami),
        ),
    )
    .await;
    let actix = actix_answers!(&app, &requests[..1]);
    for preflight in [&axum[0], &actix[0]] {
        assert_eq!(preflight.status, 401, "{preflight:?}");
        assert_eq!(preflight.allow_origin, None);
    }
}
