//! The three stacks the table runs through: the bare tower layer, axum (`axum-pop`) and
//! actix-web (`actix-pop`), and the comparison of their answers with each other and with what
//! the case expects.

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
use tower_pop::{PeerCertificate, RequirePopLayer, Verifier};

use crate::{Answer, Case, check};

/// The HTTP request of `req`, with `body`.
///
/// # Panics
/// If `req` is not a valid request.
pub fn http_request<B>(req: &crate::Req, body: B) -> Request<B> {
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

/// What is compared of a response.
///
/// # Panics
/// On a header value that is not ASCII.
pub fn answer_of<B>(response: &Response<B>) -> Answer {
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
    Answer::read(response.status().as_u16(), header)
}

/// `case` through the bare tower layer: the answer to each request.
///
/// # Panics
/// If a request cannot be built.
pub async fn run_tower(verifier: Arc<Verifier>, case: &Case) -> Vec<Answer> {
    let service = tower::ServiceBuilder::new()
        .layer(RequirePopLayer::new(verifier))
        .service(tower::service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::from("ok")))
        }));
    run_service(service, case, String::new, |request, peer| {
        request.extensions_mut().insert(PeerAddr(peer));
    })
    .await
}

/// Each request of `case` to `service` (a body from `body`, the peer set by `peer`): the answers.
async fn run_service<S, B, R>(
    service: S,
    case: &Case,
    body: impl Fn() -> B,
    peer: impl Fn(&mut Request<B>, std::net::SocketAddr),
) -> Vec<Answer>
where
    S: tower::Service<Request<B>, Response = Response<R>, Error = Infallible> + Clone,
{
    let mut answers = Vec::new();
    for req in &case.requests {
        let mut request = http_request(req, body());
        peer(&mut request, req.peer);
        let response = service.clone().oneshot(request).await.expect("infallible");
        answers.push(answer_of(&response));
    }
    answers
}

/// `case` through axum with `axum_pop`.
///
/// # Panics
/// If a request cannot be built.
pub async fn run_axum(verifier: Arc<Verifier>, case: &Case) -> Vec<Answer> {
    let app = Router::new()
        .route("/whoami", any(|_auth: axum_pop::PopAuth| async { "ok" }))
        .route_layer(axum_pop::RequirePopLayer::new(verifier));
    run_service(app, case, Body::empty, |request, peer| {
        request.extensions_mut().insert(ConnectInfo(peer));
    })
    .await
}

/// `case` through actix-web with `actix_pop` (inside an actix runtime).
///
/// # Panics
/// If a request cannot be built.
pub async fn run_actix(verifier: Arc<Verifier>, case: &Case) -> Vec<Answer> {
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
        answers.push(Answer::read(response.status().as_u16(), header));
    }
    answers
}

/// Run `cases` through the three stacks, each with a fresh verifier from `verifier`; the
/// failures. Nonce values differ between verifiers (each mints its own), so only whether a
/// `DPoP-Nonce` was sent is compared.
pub async fn run_table(cases: &[Case], verifier: impl Fn() -> Arc<Verifier>) -> Vec<String> {
    run_table_noting_nonces(cases, verifier, &mut Vec::new()).await
}

/// [`run_table`], noting every `DPoP-Nonce` value sent in `nonces`.
pub async fn run_table_noting_nonces(
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
