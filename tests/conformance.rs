//! One table of cases (see `src/lib.rs`) through the bare tower layer, axum (`axum-pop`) and
//! actix-web (`actix-pop`): every case must get the expected answer, and all three must give
//! identical status, `WWW-Authenticate` and `DPoP-Nonce`.

use std::convert::Infallible;
use std::sync::Arc;

use actix_web::{App, HttpResponse, test as actix_test, web};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::any;
use http::{Request, Response};
use tower::ServiceExt;
use tower_pop::request::PeerAddr;
use tower_pop::{PeerCertificate, PolicyBuilder as _, RequirePopLayer, Verifier};
use tower_pop_conformance::{Answer, Case, Fixture, check};

mod cors;

fn http_request<B>(req: &tower_pop_conformance::Req, body: B) -> Request<B> {
    let mut builder = Request::builder().method(req.method).uri(&req.path);
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    let mut request = builder.body(body).expect("valid request");
    if let Some(der) = &req.peer_certificate {
        request
            .extensions_mut()
            .insert(PeerCertificate::new(der.clone()));
    }
    request
}

fn answer_of<B>(response: &Response<B>) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    };
    assert!(
        response.headers().get_all("dpop-nonce").iter().count() <= 1,
        "NONCE-04"
    );
    Answer {
        status: response.status().as_u16(),
        www_authenticate: header("www-authenticate"),
        dpop_nonce: header("dpop-nonce"),
        cache_control: header("cache-control"),
        retry_after: header("retry-after"),
        interaction_id: Answer::interaction(header("x-fapi-interaction-id").as_deref()),
    }
}

async fn run_tower(verifier: Arc<Verifier>, case: &Case) -> Vec<Answer> {
    let service = tower::ServiceBuilder::new()
        .layer(RequirePopLayer::new(verifier))
        .service(tower::service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::from("ok")))
        }));
    let mut answers = Vec::new();
    for req in &case.requests {
        let mut request = http_request(req, String::new());
        request.extensions_mut().insert(PeerAddr(req.peer));
        let response = service.clone().oneshot(request).await.expect("infallible");
        answers.push(answer_of(&response));
    }
    answers
}

async fn run_axum(verifier: Arc<Verifier>, case: &Case) -> Vec<Answer> {
    let app = Router::new()
        .route("/whoami", any(|_auth: axum_pop::PopAuth| async { "ok" }))
        .route_layer(axum_pop::RequirePopLayer::new(verifier));
    let mut answers = Vec::new();
    for req in &case.requests {
        let mut request = http_request(req, Body::empty());
        request.extensions_mut().insert(ConnectInfo(req.peer));
        let response = app.clone().oneshot(request).await.expect("infallible");
        answers.push(answer_of(&response));
    }
    answers
}

async fn run_actix(verifier: Arc<Verifier>, case: &Case) -> Vec<Answer> {
    let app = actix_test::init_service(
        App::new().service(
            web::resource("/whoami")
                .wrap(actix_pop::RequirePop::new(verifier))
                .to(|_auth: actix_pop::PopAuth| async { HttpResponse::Ok().body("ok") }),
        ),
    )
    .await;
    let mut answers = Vec::new();
    for req in &case.requests {
        let mut test_request = actix_test::TestRequest::default()
            .method(req.method.parse().expect("method"))
            .uri(&req.path);
        for (name, value) in &req.headers {
            // append_header keeps repeated fields as separate lines.
            test_request = test_request.append_header((*name, value.as_str()));
        }
        let request = test_request.peer_addr(req.peer).to_request();
        if let Some(der) = &req.peer_certificate {
            actix_web::HttpMessage::extensions_mut(&request)
                .insert(PeerCertificate::new(der.clone()));
        }
        let response = actix_test::call_service(&app, request).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ASCII header").to_owned())
        };
        answers.push(Answer {
            status: response.status().as_u16(),
            www_authenticate: header("www-authenticate"),
            dpop_nonce: header("dpop-nonce"),
            cache_control: header("cache-control"),
            retry_after: header("retry-after"),
            interaction_id: Answer::interaction(header("x-fapi-interaction-id").as_deref()),
        });
    }
    answers
}

/// Run `cases` through the three stacks, each with a fresh verifier from `verifier`; the
/// failures. Nonce values differ between verifiers (each mints its own), so only whether a
/// `DPoP-Nonce` was sent is compared.
async fn run_table(cases: &[Case], verifier: impl Fn() -> Arc<Verifier>) -> Vec<String> {
    run_table_noting_nonces(cases, verifier, &mut Vec::new()).await
}

/// [`run_table`], noting every `DPoP-Nonce` value sent in `nonces`.
async fn run_table_noting_nonces(
    cases: &[Case],
    verifier: impl Fn() -> Arc<Verifier>,
    nonces: &mut Vec<String>,
) -> Vec<String> {
    let mut presence = |mut answers: Vec<Answer>| {
        for a in &mut answers {
            nonces.extend(a.dpop_nonce.clone());
            a.dpop_nonce = a.dpop_nonce.as_ref().map(|_| "(present)".to_owned());
        }
        answers
    };
    let mut failures = Vec::new();
    for case in cases {
        let tower = presence(run_tower(verifier(), case).await);
        let axum = presence(run_axum(verifier(), case).await);
        let actix = presence(run_actix(verifier(), case).await);
        if tower != axum || tower != actix {
            failures.push(format!(
                "{}: tower {tower:?}\n  axum {axum:?}\n  actix {actix:?}",
                case.name
            ));
            continue;
        }
        let last = tower.last().expect("one answer per request");
        if let Err(e) = check(last, case.expect) {
            failures.push(format!("{}: {e}", case.name));
        }
        // RFC 9440 §2.4: a decision made from a forwarded certificate is not cacheable.
        let forwarded = case.requests.last().is_some_and(|r| {
            r.peer.ip() == std::net::Ipv4Addr::new(127, 0, 0, 2)
                && r.headers.iter().any(|(n, _)| *n == "client-cert")
        });
        if forwarded && last.cache_control.as_deref() != Some("no-store") {
            failures.push(format!(
                "{}: forwarded certificate without no-store",
                case.name
            ));
        }
        // RFC 9449 §9: a use_dpop_nonce challenge carries a nonce, and a nonce goes with
        // Cache-Control: no-store (NONCE-04, NONCE-07).
        let nonce_expected = matches!(case.expect.error, Some((_, "use_dpop_nonce")));
        if nonce_expected != last.dpop_nonce.is_some()
            || (last.dpop_nonce.is_some() && last.cache_control.as_deref() != Some("no-store"))
            || (!forwarded && last.dpop_nonce.is_none() && last.cache_control.is_some())
        {
            failures.push(format!("{}: DPoP-Nonce/Cache-Control {last:?}", case.name));
        }
    }
    failures
}

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

/// A fresh verifier for each stack.
type VerifierFn<'a> = Box<dyn Fn() -> Arc<Verifier> + 'a>;

/// No secret in any log line, at any level: the whole table (every case, the certificate,
/// quota and nonce tables) through the three stacks with every event captured at `trace`, then
/// searched for each token, proof (whole and by part), certificate, nonce and the nonce secret.
#[actix_web::test]
async fn no_token_proof_or_nonce_is_ever_logged() {
    let (_guard, logs) = tower_pop_test_support::logs::capture();
    let fixture = Fixture::new();
    let tables: [(Vec<Case>, VerifierFn<'_>); 4] = [
        (fixture.cases(), Box::new(|| fixture.verifier())),
        (fixture.mtls_cases(), Box::new(|| fixture.proxy_verifier())),
        (fixture.quota_cases(), Box::new(|| fixture.quota_verifier())),
        (fixture.nonce_cases(), Box::new(|| fixture.nonce_verifier())),
    ];
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
