//! One table of cases (see `src/lib.rs`) through the bare tower layer, axum (`axum-pop`) and
//! actix-web (`actix-pop`): every case must get the expected answer, and all three must give
//! identical status, `WWW-Authenticate` and `DPoP-Nonce`.

use actix_web::{App, test as actix_test, web};
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::Request;
use tower::ServiceExt;
use tower_pop::PolicyBuilder as _;
use tower_pop_conformance::run::{answer_of, run_table, run_table_noting_nonces, run_tower};
use tower_pop_conformance::{Case, Fixture};

mod cors;

#[actix_web::test]
async fn tower_axum_and_actix_answer_every_case_identically() {
    let fixture = Fixture::new();
    let cases = fixture.cases();
    assert!(cases.len() >= 30);
    let failures = run_table(&cases, || fixture.verifier()).await;
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[actix_web::test]
async fn mtls_cases_answer_identically() {
    let fixture = Fixture::new();
    let cases = fixture.mtls_cases();
    let failures = run_table(&cases, || fixture.proxy_verifier()).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[actix_web::test]
async fn proof_key_quota_cases_answer_identically() {
    let fixture = Fixture::new();
    let cases = fixture.quota_cases();
    let failures = run_table(&cases, || fixture.quota_verifier()).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[actix_web::test]
async fn fapi2_cases_answer_identically_with_an_interaction_id() {
    let fixture = Fixture::new();
    let (cases, ids): (Vec<Case>, Vec<_>) = fixture.fapi_cases().into_iter().unzip();
    let failures = run_table(&cases, || fixture.fapi_verifier()).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every answer carries the interaction id: the one sent, or one the server made.
    for (case, id) in cases.iter().zip(ids) {
        let answers = run_tower(fixture.fapi_verifier(), case).await;
        let last = answers.last().expect("an answer");
        assert_eq!(last.interaction_id.as_deref(), id, "{}", case.name);
    }
    // Without the profile, none.
    let plain = run_tower(fixture.verifier(), &cases[0]).await;
    assert_eq!(plain[0].interaction_id, None);
}

#[actix_web::test]
async fn nonce_cases_answer_identically() {
    let fixture = Fixture::new();
    let cases = fixture.nonce_cases();
    let failures = run_table(&cases, || fixture.nonce_verifier()).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What an extractor answers on a route whose layer or middleware is missing or lets anonymous
/// requests through: status, `WWW-Authenticate` and body, identical on axum and actix.
type ExtractorAnswer = (u16, Option<String>, String);

async fn axum_extractors(fixture: &Fixture) -> Vec<ExtractorAnswer> {
    use axum_pop::{MaybePopAuth, PopAuth, RequirePopLayer};
    let maybe = |MaybePopAuth(auth): MaybePopAuth| async move {
        if auth.is_some() { "user" } else { "anonymous" }
    };
    let anonymous = RequirePopLayer::new(fixture.verifier()).allow_anonymous();
    let app = Router::new()
        .route("/bare/required", any(|_: PopAuth| async { "user" }))
        .route("/bare/optional", any(maybe))
        .nest(
            "/anon",
            Router::new()
                .route("/required", any(|_: PopAuth| async { "user" }))
                .route("/optional", any(maybe))
                .route_layer(anonymous),
        );
    let mut answers = Vec::new();
    for path in EXTRACTOR_PATHS {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let answer = answer_of(&response);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        answers.push((
            answer.status,
            answer.www_authenticate,
            String::from_utf8_lossy(&body).into_owned(),
        ));
    }
    answers
}

async fn actix_extractors(fixture: &Fixture) -> Vec<ExtractorAnswer> {
    use actix_pop::{MaybePopAuth, PopAuth, RequirePop};
    async fn required(_: PopAuth) -> &'static str {
        "user"
    }
    async fn optional(MaybePopAuth(auth): MaybePopAuth) -> &'static str {
        if auth.is_some() { "user" } else { "anonymous" }
    }
    let anonymous = RequirePop::new(fixture.verifier()).allow_anonymous();
    let app = actix_test::init_service(
        App::new()
            .route("/bare/required", web::get().to(required))
            .route("/bare/optional", web::get().to(optional))
            .service(
                web::scope("/anon")
                    .wrap(anonymous)
                    .route("/required", web::get().to(required))
                    .route("/optional", web::get().to(optional)),
            ),
    )
    .await;
    let mut answers = Vec::new();
    for path in EXTRACTOR_PATHS {
        let response =
            actix_test::call_service(&app, actix_test::TestRequest::get().uri(path).to_request())
                .await;
        let status = response.status().as_u16();
        let www = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("ASCII").to_owned());
        let body = actix_test::read_body(response).await;
        answers.push((status, www, String::from_utf8_lossy(&body).into_owned()));
    }
    answers
}

const EXTRACTOR_PATHS: [&str; 4] = [
    "/bare/required",
    "/bare/optional",
    "/anon/required",
    "/anon/optional",
];

/// A route that forgot the layer is a 500 with the fixed body for both extractors, never
/// anonymous access (on actix too, where `Option<PopAuth>` would have yielded `None`); with
/// anonymous requests allowed, `MaybePopAuth` is `None` and `PopAuth` answers the challenge.
#[actix_web::test]
async fn missing_middleware_fails_closed_identically_on_axum_and_actix() {
    let fixture = Fixture::new();
    let axum = axum_extractors(&fixture).await;
    let actix = actix_extractors(&fixture).await;
    assert_eq!(axum, actix);
    let missing = tower_pop::AuthRejection::MISSING_LAYER_BODY.to_owned();
    let challenge = Some(format!("DPoP algs=\"{}\"", "ES256 PS256 EdDSA Ed25519"));
    assert_eq!(
        axum,
        vec![
            (500, None, missing.clone()),
            (500, None, missing),
            (401, challenge, String::new()),
            (200, None, "anonymous".to_owned()),
        ]
    );
}

/// No secret in any log line, at any level: the whole table (every case, the certificate,
/// quota and nonce tables) through the three stacks with every event captured at `trace`, then
/// searched for each token, proof (whole and by part), certificate, nonce and the nonce secret.
#[actix_web::test]
async fn no_token_proof_or_nonce_is_ever_logged() {
    let (_guard, logs) = tower_pop_test_support::logs::capture();
    let fixture = Fixture::new();
    let tables = fixture.tables();
    let mut secrets: Vec<String> = Vec::new();
    for (cases, verifier) in &tables {
        let failures = run_table_noting_nonces(cases, verifier, &mut secrets).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        for request in cases.iter().flat_map(|c| &c.requests) {
            for (name, value) in &request.headers {
                if matches!(
                    *name,
                    "authorization"
                        | "dpop"
                        | "client-cert"
                        | "x-forwarded-client-cert"
                        | "ssl-client-cert"
                ) {
                    secrets.push(value.clone());
                    let credential = value.split_once(' ').map_or(value.as_str(), |(_, t)| t);
                    secrets.extend(credential.split(['.', ',', ':']).map(str::to_owned));
                }
            }
        }
    }
    {
        use base64::Engine as _;
        let secret = tower_pop_conformance::NONCE_SECRET;
        secrets.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
        secrets.push(base64::engine::general_purpose::STANDARD.encode(secret));
        secrets.push(secret.iter().map(|b| format!("{b:02x}")).collect());
        secrets.push(format!("{secret:?}"));
    }
    let logged = logs.text();
    assert!(
        logged.contains("tower_pop::verify"),
        "captured at trace: {} bytes, {:?}",
        logged.len(),
        logged.lines().take(3).collect::<Vec<_>>()
    );
    let mut checked = 0;
    for secret in secrets.iter().filter(|s| s.len() >= 12) {
        checked += 1;
        assert!(
            !logged.contains(secret.as_str()),
            "logged: a secret of {} bytes starting {:?}",
            secret.len(),
            &secret[..12]
        );
    }
    assert!(checked > 100, "searched for {checked} secrets");
}
