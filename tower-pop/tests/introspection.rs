//! RFC 7662 introspection against a real authorization server on loopback HTTPS: what is sent
//! (only the token and the hint, our credentials form-urlencoded before base64), which answers
//! count as active, which failures are ours (503), and the cache.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tower_pop::ManualClock;
use tower_pop::introspection::{
    ClientAuthMethod, IntrospectionError, IntrospectionOptions, Introspector,
};

use crate::auth_server::{AuthServer, Reply, STEP, pki};

const NOW: u64 = 1_562_262_618;
const PATH: &str = "/introspect";
const ISSUER: &str = "https://server.example.com";
const AUDIENCE: &str = "https://resource.example.org";
const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
/// RFC 9449 Figure 10's opaque access token.
const AT0: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

/// RFC 9449 Figure 11 with our audience and an `exp` ten minutes ahead.
fn active() -> Value {
    json!({"active": true, "sub": "someone@example.com", "iss": ISSUER, "aud": AUDIENCE,
        "scope": "read", "nbf": NOW - 7, "exp": NOW + 600, "cnf": {"jkt": JKT}})
}

struct Setup {
    server: AuthServer,
    clock: ManualClock,
    introspector: Arc<Introspector>,
}

async fn setup_with(
    answer: Reply,
    configure: impl FnOnce(IntrospectionOptions) -> IntrospectionOptions,
) -> Setup {
    setup_as("rs", "secret", answer, configure).await
}

/// A server answering `answer`, and an introspector with credentials `id` / `secret`.
async fn setup_as(
    id: &str,
    secret: &str,
    answer: Reply,
    configure: impl FnOnce(IntrospectionOptions) -> IntrospectionOptions,
) -> Setup {
    let server = AuthServer::https().await;
    server.set(PATH, answer);
    let clock = ManualClock::new(NOW);
    let options = IntrospectionOptions::new(server.url(PATH), id, secret)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .leeway(Duration::ZERO)
        .root_ca_pem(pki().ca_pem.clone())
        .timeout(Duration::from_secs(3))
        .clock(Arc::new(clock.clone()));
    let introspector = Arc::new(Introspector::new(configure(options)).unwrap());
    Setup {
        server,
        clock,
        introspector,
    }
}

async fn setup(answer: Value) -> Setup {
    setup_with(Reply::json(&answer), |o| o).await
}

impl Setup {
    async fn introspect(
        &self,
        token: &str,
    ) -> Result<tower_pop::introspection::IntrospectedToken, IntrospectionError> {
        tokio::time::timeout(STEP, self.introspector.introspect(token))
            .await
            .unwrap()
    }

    fn hits(&self) -> usize {
        self.server.hits(PATH)
    }
}

#[tokio::test]
async fn active_token_is_accepted_with_its_binding() {
    let s = setup(active()).await;
    let token = s.introspect(AT0).await.unwrap();
    assert_eq!(token.jkt(), Some(JKT));
    assert_eq!(token.x5t_s256(), None);
    assert_eq!(token.claims()["sub"], "someone@example.com");
    // Debug shows no claims.
    assert!(!format!("{token:?}").contains("someone"));
    assert_eq!(s.hits(), 1);
}

#[tokio::test]
async fn certificate_bound_answer_carries_x5t_cnf_05() {
    let x5t = "v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes";
    let mut answer = active();
    answer["cnf"] = json!({"x5t#S256": x5t});
    let s = setup(answer).await;
    let token = s.introspect(AT0).await.unwrap();
    assert_eq!((token.jkt(), token.x5t_s256()), (None, Some(x5t)));
}

#[tokio::test]
async fn only_json_true_is_active_intro_02() {
    for active_member in [json!(false), Value::Null, json!("true"), json!(1)] {
        let mut answer = active();
        if active_member.is_null() {
            answer.as_object_mut().unwrap().remove("active");
        } else {
            answer["active"] = active_member.clone();
        }
        let s = setup(answer).await;
        assert_eq!(
            s.introspect(AT0).await.unwrap_err(),
            IntrospectionError::Inactive,
            "{active_member}"
        );
    }
    let s = setup(json!({"active": false})).await;
    let err = s.introspect(AT0).await.unwrap_err();
    assert_eq!(err, IntrospectionError::Inactive);
    assert!(!err.is_server_fault());
}

/// A verifier (the shared fixture) whose introspection call takes 300 ms and is never cached,
/// and whose replay store forgets entries as soon as any clock passes them.
struct SlowIntrospection {
    server: AuthServer,
    store: Arc<crate::support::ForgetfulStore>,
    f: crate::support::Fixture,
}

impl SlowIntrospection {
    /// Introspection answers active for AT0, bound to the fixture's client key, until `exp`.
    async fn new(exp: u64) -> Self {
        let server = AuthServer::https().await;
        let store = Arc::new(crate::support::ForgetfulStore::default());
        let f = crate::support::Fixture::with(|b| {
            b.introspection(
                IntrospectionOptions::new(server.url(PATH), "rs", "secret")
                    .root_ca_pem(pki().ca_pem.clone())
                    .cache_ttl(Duration::ZERO)
                    .timeout(STEP),
            )
            .replay_cache(store.clone())
        });
        let mut answer = active();
        answer["cnf"] = json!({"jkt": f.client.thumbprint()});
        answer["exp"] = json!(exp);
        server.set(PATH, Reply::json(&answer).delay(Duration::from_millis(300)));
        Self { server, store, f }
    }

    /// Send AT0 with `proof` at `start`; once its introspection call is in flight, the time
    /// becomes `then` (and the store forgets what expired by it).
    async fn send_across(&self, proof: String, start: u64, then: u64) -> http::Response<String> {
        use crate::support::{PATH as RESOURCE, req, service};
        self.f.clock.set(start);
        let calls = self.server.hits(PATH);
        let mut svc = service(Arc::clone(&self.f.verifier));
        let request = tokio::spawn(async move {
            let request = req("GET", RESOURCE, &[&format!("DPoP {AT0}")], &[&proof]);
            tower::ServiceExt::oneshot(&mut svc, request).await.unwrap()
        });
        for _ in 0..200 {
            if self.server.hits(PATH) > calls {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            self.server.hits(PATH),
            calls + 1,
            "waiting on introspection"
        );
        self.f.clock.set(then);
        self.store.time_passes(then);
        tokio::time::timeout(STEP, request).await.unwrap().unwrap()
    }
}

fn refusal(response: &http::Response<String>) -> tower_pop::PopErrorKind {
    assert_eq!(response.status(), 401, "{:?}", response.headers());
    response
        .extensions()
        .get::<tower_pop::PopError>()
        .unwrap()
        .kind()
}

/// RFC 9449 §11.1 at the edge of the window: a replay whose token step waits (a slow
/// introspection call) is judged by the clock after the wait. Before, the `iat` check and the
/// replay entry used the time read before it, when the proof was still young enough, while the
/// entry its first use left had been let go meanwhile: the replay got a 200.
#[tokio::test]
async fn a_replay_waiting_on_introspection_is_judged_after_the_wait_rpl_04() {
    let s = SlowIntrospection::new(NOW + 3600).await;
    let proof = s.f.proof(AT0);
    let first = s.send_across(proof.clone(), NOW, NOW).await;
    crate::support::assert_ok(&first, "dpop");
    // In the last second of the proof's window its replay waits on introspection, while time
    // passes and the entry of its first use is let go.
    let replay = s.send_across(proof, NOW + 60, NOW + 61 + 5 + 1).await;
    assert_eq!(refusal(&replay), tower_pop::PopErrorKind::IatOutOfWindow);
}

/// The same for the token: one that expires while its introspection call is in flight is
/// refused (RFC 7519 §4.1.4), not accepted by the time read before the call.
#[tokio::test]
async fn a_token_expiring_during_introspection_is_refused_intro_03() {
    // `exp` NOW + 100, with the verifier's 30 s leeway: valid until NOW + 130 (exclusive).
    let s = SlowIntrospection::new(NOW + 100).await;
    let at = |t| {
        s.f.client
            .proof_at("GET", crate::support::URL, Some(AT0), None, t)
            .unwrap()
    };
    crate::support::assert_ok(
        &s.send_across(at(NOW + 129), NOW + 129, NOW + 129).await,
        "dpop",
    );
    let late = s.send_across(at(NOW + 129), NOW + 129, NOW + 130).await;
    assert_eq!(refusal(&late), tower_pop::PopErrorKind::TokenInvalid);
}

#[tokio::test]
async fn expired_or_foreign_answers_are_refused_intro_03() {
    for (member, value) in [
        ("exp", json!(NOW - 10)),
        // `exp` is the first instant the token is no longer valid (leeway 0 here).
        ("exp", json!(NOW)),
        ("nbf", json!(NOW + 600)),
        ("aud", json!("https://other.example")),
        ("iss", json!("https://other.example")),
    ] {
        let mut answer = active();
        answer[member] = value;
        let s = setup(answer).await;
        assert_eq!(
            s.introspect(AT0).await.unwrap_err(),
            IntrospectionError::TokenInvalid,
            "{member}"
        );
    }
}

#[tokio::test]
async fn server_errors_are_unavailable_intro_08() {
    let cases = [
        Reply::status(500),
        Reply::status(503).body("busy"),
        Reply::status(200).body("<html>ok</html>"),
        Reply::status(200).body("[true]"),
        Reply::status(200).body(r#"{"active":true,"active":false}"#),
        Reply::status(200).body(format!(
            r#"{{"active":true,"x":"{}"}}"#,
            "y".repeat(64 * 1024)
        )),
        Reply::status(302).header("location", "/elsewhere"),
    ];
    for reply in cases {
        let s = setup_with(reply.clone(), |o| o).await;
        s.server.set("/elsewhere", Reply::json(&active()));
        let err = s.introspect(AT0).await.unwrap_err();
        assert_eq!(err, IntrospectionError::Unavailable, "{reply:?}");
        assert!(err.is_server_fault());
        // Redirects are not followed.
        assert_eq!(s.server.hits("/elsewhere"), 0);
    }
}

#[tokio::test]
async fn flood_settings_are_checked() {
    let new = |o: IntrospectionOptions| Introspector::new(o).map(|_| ());
    let base = || IntrospectionOptions::new("https://as.example/i", "rs", "s");
    assert!(new(base().max_concurrent_per_peer(0)).is_err());
    assert!(new(base().permit_wait(Duration::from_secs(6))).is_err());
    assert!(
        new(base()
            .timeout(Duration::from_secs(10))
            .permit_wait(Duration::from_secs(6)))
        .is_ok()
    );
}

#[tokio::test]
async fn refused_credentials_are_unavailable_not_inactive() {
    for status in [401, 403] {
        let reply = Reply::status(status)
            .header("content-type", "application/json")
            .header("www-authenticate", "Basic")
            .body(r#"{"error":"invalid_client"}"#);
        let s = setup_with(reply, |o| o).await;
        assert_eq!(
            s.introspect(AT0).await.unwrap_err(),
            IntrospectionError::Unavailable,
            "{status}"
        );
    }
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let s = setup(active()).await;
    s.server.stop().await;
    assert_eq!(
        s.introspect(AT0).await.unwrap_err(),
        IntrospectionError::Unavailable
    );
}

#[tokio::test]
async fn sends_only_token_and_hint_with_form_urlencoded_basic_credentials() {
    let id = "rs:1 é";
    let secret = "p@ss w+rd/ü&=%:";
    let s = setup_as(id, secret, Reply::json(&active()), |o| o).await;
    s.introspect(AT0).await.unwrap();
    let seen = s.server.seen(PATH);
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    // RFC 6749 §2.3.1: each form-urlencoded, then joined by ':' and base64-encoded.
    let basic = request.headers["authorization"].to_str().unwrap();
    let decoded = STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "rs%3A1+%C3%A9:p%40ss+w%2Brd%2F%C3%BC%26%3D%25%3A"
    );
    // The body is the token and the hint, nothing else (INTRO-01, INTRO-05).
    assert_eq!(
        request.body,
        "token=Kz%7E8mXK1EalYznwH-LC-1fBAo.4Ljp%7EzsPE_NeO.gxU&token_type_hint=access_token"
    );
    let pairs: Vec<(String, String)> = form_urlencoded::parse(request.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        pairs,
        [
            ("token".to_owned(), AT0.to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned())
        ]
    );
    assert!(request.headers.get("dpop").is_none());
    assert!(request.headers.get("cookie").is_none());
}

#[tokio::test]
async fn client_secret_post_sends_credentials_in_the_body() {
    let s = setup_with(Reply::json(&active()), |o| {
        o.auth_method(ClientAuthMethod::ClientSecretPost)
    })
    .await;
    s.introspect("opaque token+1").await.unwrap();
    let request = &s.server.seen(PATH)[0];
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(
        request.body,
        "token=opaque+token%2B1&token_type_hint=access_token&client_id=rs&client_secret=secret"
    );
}

#[tokio::test]
async fn cache_hit_does_not_call_the_server_again() {
    let s = setup(active()).await;
    s.introspect(AT0).await.unwrap();
    s.clock.advance(30);
    let token = s.introspect(AT0).await.unwrap();
    assert_eq!(token.jkt(), Some(JKT));
    assert_eq!(s.hits(), 1);
    // Another token is another entry.
    s.introspect("another-token").await.unwrap();
    assert_eq!(s.hits(), 2);
}

#[tokio::test]
async fn cache_ttl_bounds_revocation_latency_intro_06() {
    let s = setup(active()).await;
    s.introspect(AT0).await.unwrap();
    // The AS revokes the token; the cached answer holds for the TTL (60 s), not longer.
    s.server.set(PATH, Reply::json(&json!({"active": false})));
    s.clock.advance(59);
    assert!(s.introspect(AT0).await.is_ok());
    assert_eq!(s.hits(), 1);
    s.clock.advance(1);
    assert_eq!(
        s.introspect(AT0).await.unwrap_err(),
        IntrospectionError::Inactive
    );
    assert_eq!(s.hits(), 2);
}

#[tokio::test]
async fn cache_never_outlives_exp() {
    let mut answer = active();
    answer["exp"] = json!(NOW + 20);
    let s = setup(answer).await;
    s.introspect(AT0).await.unwrap();
    s.clock.advance(19);
    s.introspect(AT0).await.unwrap();
    assert_eq!(s.hits(), 1);
    // At `exp` the entry is gone although the TTL is 60 s: the server is asked again, and its
    // answer is expired (`exp` is the first instant of invalidity, as for JWTs).
    s.clock.advance(1);
    assert_eq!(
        s.introspect(AT0).await.unwrap_err(),
        IntrospectionError::TokenInvalid
    );
    assert_eq!(s.hits(), 2);
}

#[tokio::test]
async fn inactive_answers_are_remembered_briefly() {
    let s = setup(json!({"active": false})).await;
    for _ in 0..3 {
        let err = s.introspect(AT0).await.unwrap_err();
        assert_eq!(err, IntrospectionError::Inactive);
    }
    assert_eq!(s.hits(), 1, "a retried inactive token costs one call");
    // Another token is asked about.
    assert!(s.introspect("another").await.is_err());
    assert_eq!(s.hits(), 2);
    // After the negative TTL (30 s), the server is asked again.
    s.clock.advance(30);
    assert!(s.introspect(AT0).await.is_err());
    assert_eq!(s.hits(), 3);
    // Off: every retry is a call.
    let off = setup_with(Reply::json(&json!({"active": false})), |o| {
        o.negative_cache_ttl(Duration::ZERO)
    })
    .await;
    for hits in 1..=3 {
        assert!(off.introspect(AT0).await.is_err());
        assert_eq!(off.hits(), hits);
    }
}

/// Start `count` introspections of distinct tokens from `peer` and return once the server has
/// seen `hits` calls in all (they are then in flight: the server answers slowly).
async fn start_calls(
    s: &Setup,
    peer: Option<&str>,
    count: usize,
    hits: usize,
) -> Vec<tokio::task::JoinHandle<Result<(), IntrospectionError>>> {
    let handles = (0..count)
        .map(|n| {
            let introspector = Arc::clone(&s.introspector);
            let peer = peer.map(|p| p.parse().unwrap());
            tokio::spawn(async move {
                let token = format!("held-{n}-{peer:?}");
                introspector.introspect_for(&token, peer).await.map(|_| ())
            })
        })
        .collect();
    for _ in 0..400 {
        if s.hits() >= hits {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.hits(), hits, "calls in flight");
    handles
}

#[tokio::test]
async fn one_peer_holds_at_most_its_share_of_the_call_slots() {
    // 8 slots, a quarter (2) per peer; the server answers after 1 s.
    let slow = Reply::json(&active()).delay(Duration::from_secs(1));
    let s = setup_with(slow, |o| o.max_concurrent(8)).await;
    let flood = start_calls(&s, Some("127.0.0.2"), 2, 2).await;
    // The flooding peer's next token is refused at once, without a call ...
    let refused = s
        .introspector
        .introspect_for("one-more", Some("127.0.0.2".parse().unwrap()))
        .await;
    assert_eq!(refused.unwrap_err(), IntrospectionError::Unavailable);
    assert_eq!(s.hits(), 2);
    assert!(
        flood.iter().all(|h| !h.is_finished()),
        "refused before the held calls end"
    );
    // ... and other peers still get slots.
    let honest = s
        .introspector
        .introspect_for(AT0, Some("127.0.0.3".parse().unwrap()))
        .await;
    assert!(honest.is_ok());
    for handle in flood {
        assert!(handle.await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn every_slot_busy_answers_unavailable_after_the_permit_wait() {
    let slow = Reply::json(&active()).delay(Duration::from_secs(2));
    let s = setup_with(slow, |o| {
        o.max_concurrent(2)
            .max_concurrent_per_peer(2)
            .permit_wait(Duration::from_millis(50))
    })
    .await;
    let held = start_calls(&s, None, 2, 2).await;
    let err = s.introspect("third").await.unwrap_err();
    assert_eq!(err, IntrospectionError::Unavailable);
    assert!(err.is_server_fault(), "503 with Retry-After");
    // Refused while both calls were still in flight: it did not wait for a slot to free.
    assert!(held.iter().all(|h| !h.is_finished()));
    assert_eq!(s.hits(), 2);
    for handle in held {
        assert!(handle.await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn failures_are_logged_once_per_burst_not_per_token() {
    let (_guard, logs) = tower_pop_test_support::logs::capture();
    let s = setup_with(Reply::status(500), |o| o).await;
    for n in 0..20 {
        let token = format!("token-{n}");
        assert_eq!(
            s.introspect(&token).await.unwrap_err(),
            IntrospectionError::Unavailable
        );
    }
    assert_eq!(
        logs.lines_with("introspection failing").len(),
        1,
        "{}",
        logs.text()
    );
    // Ten seconds on, one line counts the failures since.
    s.clock.advance(10);
    assert!(s.introspect("later").await.is_err());
    let lines = logs.lines_with("introspection failing");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("failures=20"), "{lines:?}");
    // The recovery, once.
    s.server.set(PATH, Reply::json(&active()));
    s.introspect(AT0).await.unwrap();
    s.introspect("again").await.unwrap();
    assert_eq!(logs.lines_with("introspection answering again").len(), 1);

    // Our credentials refused: `error`, once per burst too.
    s.server.set(PATH, Reply::status(401));
    for n in 0..20 {
        assert!(s.introspect(&format!("refused-{n}")).await.is_err());
    }
    assert_eq!(logs.lines_with("refused our client credentials").len(), 1);
    assert_eq!(logs.at("ERROR").len(), 1, "{}", logs.text());
}

#[tokio::test]
async fn bounded_cache_evicts_when_full() {
    let s = setup_with(Reply::json(&active()), |o| o.cache_capacity(2)).await;
    let tokens: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    for token in &tokens {
        s.introspect(token).await.unwrap();
    }
    assert_eq!(s.hits(), 10);
    // A full cache evicts instead of refusing: the newest answer got in.
    s.introspect("t9").await.unwrap();
    assert_eq!(s.hits(), 10);
    // A token used again is answered from the cache from then on, whatever else was cached.
    s.introspect("t0").await.unwrap();
    let asked = s.hits();
    assert!(asked <= 11, "{asked}");
    for _ in 0..3 {
        s.introspect("t0").await.unwrap();
    }
    assert_eq!(s.hits(), asked);
}

/// The [`Verified`](tower_pop::Verified) the layer hands its service for `token`, with a fresh
/// proof.
#[cfg(feature = "lifetime")]
async fn verified(f: &crate::support::Fixture, token: &str) -> tower_pop::Verified {
    use crate::support::{PATH as RESOURCE, req};
    let seen = Arc::new(std::sync::Mutex::new(None));
    let inner = {
        let seen = Arc::clone(&seen);
        tower::service_fn(move |request: http::Request<String>| {
            let verified = request.extensions().get::<tower_pop::Verified>().cloned();
            *seen.lock().unwrap() = verified;
            async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
        })
    };
    let service = tower::Layer::layer(
        &tower_pop::RequirePopLayer::new(Arc::clone(&f.verifier)),
        inner,
    );
    let request = req(
        "GET",
        RESOURCE,
        &[&format!("DPoP {token}")],
        &[&f.proof(token)],
    );
    let response = tower::ServiceExt::oneshot(service, request).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    let verified = seen.lock().unwrap().take();
    verified.expect("verified")
}

/// Issue #26 item 2: a stream opened with an introspected token ends when a recheck finds the
/// token revoked (`active: false`), long before `exp`; the token is refused from then on; an
/// authorization server that cannot answer ends it too (fail closed).
#[cfg(feature = "lifetime")]
#[tokio::test]
async fn a_recheck_ends_the_authorization_of_a_revoked_token() {
    use tower_pop::lifetime::End;
    let server = AuthServer::https().await;
    let f = crate::support::Fixture::with(|b| {
        b.introspection(
            IntrospectionOptions::new(server.url(PATH), "rs", "secret")
                .root_ca_pem(pki().ca_pem.clone())
                .timeout(STEP)
                .recheck_every(Duration::from_secs(1)),
        )
    });
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let mut answer = active();
    answer["cnf"] = json!({"jkt": f.client.thumbprint()});
    answer["exp"] = json!(in_an_hour);
    server.set(PATH, Reply::json(&answer));

    let lifetime = verified(&f, AT0).await.lifetime();
    assert_eq!(lifetime.expires_at(), in_an_hour);
    assert_eq!(lifetime.recheck_every(), Some(Duration::from_secs(1)));
    assert!(!format!("{lifetime:?}").contains(AT0), "{lifetime:?}");
    let calls = server.hits(PATH);
    let ended = lifetime.ended();
    tokio::pin!(ended);
    // Still active: rechecked, no end.
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), &mut ended)
            .await
            .is_err()
    );
    assert!(server.hits(PATH) > calls, "rechecked");
    // Revoked: the next recheck ends it, and the token no longer passes.
    server.set(PATH, Reply::json(&json!({"active": false})));
    let end = tokio::time::timeout(STEP, &mut ended).await.unwrap();
    assert_eq!(end, End::Revoked);
    let refused = f.dpop(AT0, &f.proof(AT0)).await;
    assert_eq!(refusal(&refused), tower_pop::PopErrorKind::TokenInvalid);

    // Another token, then the authorization server fails: the authorization ends.
    let other = "another-opaque-token";
    server.set(PATH, Reply::json(&answer));
    let lifetime = verified(&f, other).await.lifetime();
    server.set(PATH, Reply::status(500));
    let end = tokio::time::timeout(STEP, lifetime.ended()).await.unwrap();
    assert_eq!(end, End::Unconfirmed);

    // Without a recheck interval, only `exp` ends it.
    let lifetime = tower_pop::lifetime::Lifetime::until(in_an_hour);
    assert_eq!(lifetime.recheck_every(), None);
    assert!(
        Introspector::new(
            IntrospectionOptions::new("https://as.example/i", "rs", "s")
                .recheck_every(Duration::from_millis(500))
        )
        .is_err(),
        "a recheck more often than once a second"
    );
}
