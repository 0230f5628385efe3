//! The example servers over real HTTP on loopback (EXAMPLE-SERVERS.md contract): every test
//! runs against both `axum_resource_server` and `actix_resource_server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;

use examples_common::http::{Reply, send, send_raw};

pub(crate) const ISSUER: &str = "https://as.example.test";
pub(crate) const AUDIENCE: &str = "https://api.example.test";

pub(crate) fn example_binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    /// `http` or `https`.
    pub(crate) scheme: String,
    pub(crate) issuer: Arc<TestIssuer>,
    _child: Child,
}

static FILES: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// That something ended at `at` (Unix seconds, as a client's clock read it) for a token expiring
/// at `exp`: from a little before it (the clocks' rounding) to 2 s after.
pub(crate) fn assert_at_exp(at: f64, exp: u64, what: &str) {
    #[allow(clippy::cast_precision_loss)]
    let exp = exp as f64;
    assert!(
        (exp - 0.05..=exp + 2.0).contains(&at),
        "{what}: ended at {at} for exp {exp}"
    );
}

impl Server {
    pub(crate) async fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_with(name, extra, Arc::new(TestIssuer::new(ISSUER, AUDIENCE))).await
    }

    /// A server trusting `issuer`'s keys: several servers can share one issuer.
    pub(crate) async fn start_with(name: &str, extra: &[&str], issuer: Arc<TestIssuer>) -> Self {
        let path = crate::scratch::file(&format!(
            "jwks-{}.json",
            FILES.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, issuer.jwks_json()).unwrap();
        let path = path.to_string_lossy().into_owned();
        let mut args = vec!["--issuer", ISSUER, "--jwks-file", &path];
        args.extend_from_slice(extra);
        Self::spawn(name, &args, issuer).await
    }

    /// A server given only `args` (besides its address and audience): e.g. issuers whose keys
    /// it discovers.
    pub(crate) async fn launch_discovering(name: &str, args: &[&str]) -> Self {
        Self::spawn(name, args, Arc::new(TestIssuer::new(ISSUER, AUDIENCE))).await
    }

    async fn spawn(name: &str, extra: &[&str], issuer: Arc<TestIssuer>) -> Self {
        Self::spawn_logging(name, extra, issuer, None).await
    }

    /// A server given only `args`, logging at `trace` (`RUST_LOG=trace`) into the file `log`.
    pub(crate) async fn launch_logging(name: &str, args: &[&str], log: &std::path::Path) -> Self {
        let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
        Self::spawn_logging(name, args, issuer, Some(log)).await
    }

    async fn spawn_logging(
        name: &str,
        extra: &[&str],
        issuer: Arc<TestIssuer>,
        log: Option<&std::path::Path>,
    ) -> Self {
        let mut command = Command::new(example_binary(name));
        command
            .args(["--listen", "127.0.0.1:0", "--audience", AUDIENCE])
            .args(extra)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        match log {
            Some(path) => {
                let file = std::fs::File::create(path).unwrap();
                command.env("RUST_LOG", "trace").stderr(Stdio::from(file));
            }
            None => {
                command.stderr(Stdio::null());
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (built by cargo test?): {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("server starts within 30 s")
            .unwrap()
            .expect("a first line");
        let (scheme, addr) = line
            .strip_prefix("listening on ")
            .and_then(|l| l.split_once("://"))
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        Self {
            addr: addr.parse().unwrap(),
            scheme: scheme.to_owned(),
            issuer,
            _child: child,
        }
    }

    /// The server process's id.
    pub(crate) fn pid(&self) -> u32 {
        self._child.id().unwrap_or_default()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub(crate) fn token(&self, cnf_jkt: Option<&str>) -> String {
        let cnf = cnf_jkt.map_or(json!(null), |jkt| json!({"jkt": jkt}));
        self.issuer.token(now(), json!({"cnf": cnf}))
    }
}

/// `GET /whoami` with `Authorization: Bearer token`.
pub(crate) async fn bearer_get(s: &Server, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    send(s.addr, "GET", "/whoami", &[("Authorization", &auth)]).await
}

/// `GET /whoami` with `Authorization: DPoP token` and the proof.
/// `challenge` with its realms replaced by `*`: servers on other ports name other realms.
pub(crate) fn any_realm(challenge: &str) -> String {
    let mut out = String::new();
    let mut rest = challenge;
    while let Some(at) = rest.find("realm=\"") {
        out.push_str(&rest[..at + 7]);
        rest = &rest[at + 7..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push('*');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

pub(crate) async fn dpop_get(s: &Server, token: &str, proof: &str) -> Reply {
    let auth = format!("DPoP {token}");
    send(
        s.addr,
        "GET",
        "/whoami",
        &[("Authorization", &auth), ("DPoP", proof)],
    )
    .await
}

/// Whether `code` is in the challenge of `scheme` only, and that challenge comes first.
pub(crate) fn error_in(challenge: &str, scheme: &str, code: &str) -> bool {
    let challenges = tower_pop_test_support::www_authenticate::challenges(challenge);
    let wanted = format!("error=\"{code}\"");
    challenges[0].0 == scheme
        && challenges[0].1.contains(&wanted)
        && challenges[1..].iter().all(|(_, p)| !p.contains("error="))
}

/// `r` has `status` and `code` in the challenge of `scheme` only.
#[track_caller]
fn assert_refused(r: &Reply, status: u16, scheme: &str, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    let challenge = r.header("www-authenticate").expect("a challenge");
    assert!(error_in(challenge, scheme, code), "{challenge}");
}

pub(crate) const SERVERS: [&str; 2] = ["axum_resource_server", "actix_resource_server"];

/// A test that runs `$check(name)` against both servers, one after the other.
macro_rules! on_both_servers {
    ($test:ident, $check:ident) => {
        #[tokio::test]
        async fn $test() {
            for name in SERVERS {
                $check(name).await;
            }
        }
    };
}

/// A server, a client key, and a token bound to that key.
async fn bound_setup(name: &str) -> (Server, ProofSigner, String) {
    let s = Server::start(name, &[]).await;
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = s.token(Some(client.thumbprint()));
    (s, client, token)
}

on_both_servers!(
    servers_accept_a_bound_request_and_refuse_the_rest,
    accepts_a_bound_request_and_refuses_the_rest
);

async fn accepts_a_bound_request_and_refuses_the_rest(name: &str) {
    let (s, client, token) = bound_setup(name).await;
    let auth = format!("DPoP {token}");

    let health = send(s.addr, "GET", "/health", &[]).await;
    assert_eq!(health.status, 200);

    // A valid DPoP request, any method.
    for method in ["GET", "POST"] {
        let proof = client
            .proof(method, &s.url("/whoami"), Some(&token), None)
            .unwrap();
        let r = send(
            s.addr,
            method,
            "/whoami",
            &[("Authorization", &auth), ("DPoP", &proof)],
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        let body = r.json();
        assert_eq!(body["sub"], "alice");
        assert_eq!(body["binding"], "dpop");
        assert_eq!(body["jkt"], client.thumbprint());
        assert_eq!(body["claims"]["client_id"], "c1");
    }

    // No credentials: the DPoP challenge, no error (RFC 9449 Fig. 17); no Bearer challenge,
    // which could not succeed here.
    let r = send(s.addr, "GET", "/whoami", &[]).await;
    assert_eq!(r.status, 401);
    let realm = format!(
        r#"DPoP realm="{}", algs="ES256 PS256 EdDSA Ed25519""#,
        s.url("")
    );
    assert_eq!(r.header("www-authenticate"), Some(realm.as_str()));

    // The same proof twice: replay.
    let proof = client
        .proof("GET", &s.url("/whoami"), Some(&token), None)
        .unwrap();
    let headers = [("Authorization", auth.as_str()), ("DPoP", proof.as_str())];
    assert_eq!(send(s.addr, "GET", "/whoami", &headers).await.status, 200);
    let r = send(s.addr, "GET", "/whoami", &headers).await;
    assert_refused(&r, 401, "DPoP", "invalid_dpop_proof");

    // Stolen token without the key: the thief's proof does not match cnf.jkt.
    let thief = ProofSigner::generate(Algorithm::ES256).unwrap();
    let proof = thief
        .proof("GET", &s.url("/whoami"), Some(&token), None)
        .unwrap();
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[("Authorization", &auth), ("DPoP", &proof)],
    )
    .await;
    assert_refused(&r, 401, "DPoP", "invalid_token");

    // Downgrade to Bearer.
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_refused(&r, 401, "Bearer", "invalid_token");

    // Proof for another URL, another method, and a client-chosen Host do not help (HTU-07).
    let proof = client
        .proof("GET", "http://evil.example/whoami", Some(&token), None)
        .unwrap();
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[
            ("Authorization", &auth),
            ("DPoP", &proof),
            ("X-Forwarded-Host", "evil.example"),
        ],
    )
    .await;
    assert!(error_in(
        r.header("www-authenticate").unwrap(),
        "DPoP",
        "invalid_dpop_proof"
    ));
    let proof = client
        .proof("PUT", &s.url("/whoami"), Some(&token), None)
        .unwrap();
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[("Authorization", &auth), ("DPoP", &proof)],
    )
    .await;
    assert_eq!(r.status, 401);

    // Two Authorization fields: 400 invalid_request.
    let proof = client
        .proof("GET", &s.url("/whoami"), Some(&token), None)
        .unwrap();
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[
            ("Authorization", &auth),
            ("Authorization", &format!("Bearer {token}")),
            ("DPoP", &proof),
        ],
    )
    .await;
    assert_eq!(r.status, 400);

    // An unbound token is refused unless --allow-bearer.
    let unbound = s.token(None);
    let r = bearer_get(&s, &unbound).await;
    assert_refused(&r, 401, "Bearer", "invalid_token");
}

on_both_servers!(fapi2_profile_flag, fapi2_profile);

/// `--profile fapi2`: a bound token with its proof passes and the `x-fapi-interaction-id` is
/// echoed (or made), and an unbound one is refused. (A flag that breaks the profile stops the
/// server at start-up: `refuses_bad_command_lines`.)
async fn fapi2_profile(name: &str) {
    let s = Server::start(name, &["--profile", "fapi2"]).await;
    let client = tower_pop::dpop::signer::ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = s.token(Some(client.thumbprint()));
    let proof = client
        .proof("GET", &s.url("/whoami"), Some(&token), None)
        .unwrap();
    let id = "c770aef3-6784-41f7-8e0e-ff5f97bddb3a";
    let auth = format!("DPoP {token}");
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[
            ("Authorization", &auth),
            ("DPoP", &proof),
            ("x-fapi-interaction-id", id),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{name}: {r:?}");
    assert_eq!(r.header("x-fapi-interaction-id"), Some(id));
    let unbound = s.token(None);
    let r = bearer_get(&s, &unbound).await;
    assert_eq!(r.status, 401);
    let made = r
        .header("x-fapi-interaction-id")
        .expect("an interaction id");
    assert_eq!(
        (made.len(), &made[14..15]),
        (36, "4"),
        "a fresh UUID: {made}"
    );
}

on_both_servers!(allow_bearer_flag_accepts_unbound_tokens_only, allow_bearer);

async fn allow_bearer(name: &str) {
    let s = Server::start(name, &["--allow-bearer"]).await;
    let unbound = s.token(None);
    let r = bearer_get(&s, &unbound).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["binding"], "bearer");
    let bound = s.token(Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[("Authorization", &format!("Bearer {bound}"))],
    )
    .await;
    assert_eq!(r.status, 401);
}

on_both_servers!(
    same_proof_20_times_at_once_over_http_gives_one_200,
    concurrent_replays
);

async fn concurrent_replays(name: &str) {
    let (s, client, token) = bound_setup(name).await;
    let auth = format!("DPoP {token}");
    let proof = client
        .proof("GET", &s.url("/whoami"), Some(&token), None)
        .unwrap();
    assert_exactly_one_200(&[s.addr], &auth, &proof).await;
}

/// 20 copies of one request at once, spread over `addrs`: exactly one 200, the rest 401.
pub(crate) async fn assert_exactly_one_200(addrs: &[SocketAddr], auth: &str, proof: &str) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let addr = addrs[i % addrs.len()];
        let (auth, proof) = (auth.to_owned(), proof.to_owned());
        tasks.push(tokio::spawn(async move {
            send(
                addr,
                "GET",
                "/whoami",
                &[("Authorization", &auth), ("DPoP", &proof)],
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

on_both_servers!(
    servers_keep_answering_after_garbage,
    keeps_answering_after_garbage
);

async fn keeps_answering_after_garbage(name: &str) {
    let s = Server::start(name, &[]).await;
    let garbage: [&[u8]; 5] = [
        b"\x00\x01\x02\xff\r\n\r\n",
        b"GET /whoami HTTP/1.1\r\nAuthorization: DPoP \xff\xfe\r\nDPoP: \x01\r\n\r\n",
        b"GET /whoami HTTP/1.1\r\nHost: x\r\nAuthorization: DPoP a.b.c\r\nDPoP: e30.e30.e30\r\nConnection: close\r\n\r\n",
        b"POST /whoami HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nabc",
        b"GET /whoami HTTP/9.9\r\n\r\n",
    ];
    for bytes in garbage {
        let r = send_raw(s.addr, bytes).await;
        assert_ne!(r.status, 200);
        assert!(r.status < 500, "{r:?}");
    }
    // Oversized token and proof, within the servers' head limits: our own bounds refuse them.
    let big = "A".repeat(40 * 1024);
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[("Authorization", &format!("DPoP {big}")), ("DPoP", &big)],
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    // Past the HTTP stack's head limit: refused (431) or the connection closed, never a 200.
    let huge = format!(
        "GET /whoami HTTP/1.1\r\nHost: x\r\nAuthorization: DPoP {}\r\nConnection: close\r\n\r\n",
        "A".repeat(256 * 1024)
    );
    let r = send_raw(s.addr, huge.as_bytes()).await;
    assert!(r.status != 200 && r.status < 500, "{r:?}");
    assert_eq!(send(s.addr, "GET", "/health", &[]).await.status, 200);
}

on_both_servers!(servers_refuse_bad_command_lines, refuses_bad_command_lines);

async fn refuses_bad_command_lines(name: &str) {
    // --help and --version: stdout, exit 0.
    for flag in ["--help", "--version"] {
        let out = Command::new(example_binary(name))
            .arg(flag)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name} {flag}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.is_empty() && out.stderr.is_empty(), "{name} {flag}");
        if flag == "--help" {
            for documented in [
                "--listen",
                "--issuer",
                "--audience",
                "--jwks-file",
                "--public-url",
                "--allow-bearer",
            ] {
                assert!(
                    stdout.contains(documented),
                    "{name} --help lacks {documented}"
                );
            }
        }
    }
    // A bad flag: exit 2 with an error that names it.
    let out = Command::new(example_binary(name))
        .args([
            "--listen",
            "nope",
            "--issuer",
            "i",
            "--audience",
            "a",
            "--jwks-file",
            "k",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let status = Command::new(example_binary(name))
        .args(["--bogus"])
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
    // A configuration that cannot work (an unreadable key set; a resource identifier with a
    // control character; a scope that is no scope-token): refused at start-up with a message
    // (exit 1), never a panic or a dropped challenge later.
    let jwks = crate::scratch::file("bad-start-jwks.json");
    std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
    let jwks = jwks.to_string_lossy().into_owned();
    let resource = ["--resource", "https://api.example/a\u{1}b"];
    for (jwks, args) in [
        ("/nonexistent.json", &["--scope", "read"][..]),
        (jwks.as_str(), &resource[..]),
        (jwks.as_str(), &["--scope", "read write"][..]),
        // The FAPI 2.0 profile forbids unbound tokens (§5.3.4 item 5).
        (jwks.as_str(), &["--profile", "fapi2", "--allow-bearer"][..]),
    ] {
        let out = Command::new(example_binary(name))
            .args(["--listen", "127.0.0.1:0", "--issuer", ISSUER])
            .args(["--audience", AUDIENCE, "--jwks-file", jwks])
            .args(args)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name} {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.lines().any(|l| l.starts_with("error:")) && !stderr.contains("panicked"),
            "{name} {args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{name} {args:?}: never listening");
    }
}

/// Method, path, headers.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

/// The same requests, made the same way, get the same status, challenge and JSON from both.
#[tokio::test]
async fn axum_and_actix_servers_answer_alike() {
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let mut answers = Vec::new();
    for name in SERVERS {
        let s = Server::start(name, &[]).await;
        let token = s.token(Some(client.thumbprint()));
        let auth = format!("DPoP {token}");
        let good = client
            .proof("GET", &s.url("/whoami"), Some(&token), None)
            .unwrap();
        let thief = ProofSigner::generate(Algorithm::ES256)
            .unwrap()
            .proof("GET", &s.url("/whoami"), Some(&token), None)
            .unwrap();
        let other_url = client
            .proof("GET", &s.url("/other"), Some(&token), None)
            .unwrap();
        let cases: Vec<Case<'_>> = vec![
            (
                "GET",
                "/whoami",
                vec![("Authorization", &auth), ("DPoP", &good)],
            ),
            (
                "GET",
                "/whoami",
                vec![("Authorization", &auth), ("DPoP", &good)],
            ),
            ("GET", "/whoami", vec![]),
            (
                "GET",
                "/whoami",
                vec![("Authorization", "Basic dXNlcjpwdw==")],
            ),
            ("GET", "/whoami", vec![("Authorization", &auth)]),
            (
                "GET",
                "/whoami",
                vec![("Authorization", &auth), ("DPoP", &thief)],
            ),
            (
                "GET",
                "/whoami",
                vec![("Authorization", &auth), ("DPoP", &other_url)],
            ),
            (
                "GET",
                "/whoami",
                vec![("Authorization", &auth), ("DPoP", "a.b")],
            ),
            ("GET", "/whoami", vec![("Authorization", "DPoP")]),
            ("GET", "/health", vec![]),
            ("GET", "/nowhere", vec![]),
        ];
        let mut replies = Vec::new();
        for (method, path, headers) in &cases {
            let r = send(s.addr, method, path, headers).await;
            let mut body = r.json();
            if let Some(claims) = body.get_mut("claims") {
                // Tokens differ per server (fresh iat, jti); compare the claim names.
                let names: Vec<String> = claims.as_object().unwrap().keys().cloned().collect();
                *claims = json!(names);
            }
            replies.push((
                r.status,
                r.header("www-authenticate").map(any_realm),
                r.header("dpop-nonce").map(str::to_owned),
                r.header("content-type").map(str::to_owned),
                body,
            ));
        }
        answers.push(replies);
    }
    assert_eq!(answers[0][0].0, 200);
    for (i, (axum, actix)) in answers[0].iter().zip(&answers[1]).enumerate() {
        assert_eq!(axum, actix, "case {i}");
    }
}

#[tokio::test]
async fn demo_shows_the_four_outcomes_and_exits_0() {
    let output = Command::new(example_binary("demo"))
        .stderr(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.matches("(expected 200: yes)").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("(expected 401: yes)").count(), 3, "{stdout}");
    assert!(stdout.contains("All four outcomes as expected"));
}

on_both_servers!(dpop_algs_flag_sets_the_allow_list, dpop_algs_flag);

async fn dpop_algs_flag(name: &str) {
    let s = Server::start(name, &["--dpop-algs", "ES256,EdDSA"]).await;
    let none = send(s.addr, "GET", "/whoami", &[]).await;
    let challenge = none.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"algs="ES256 EdDSA""#),
        "{name}: {challenge}"
    );
    let rsa = ProofSigner::generate(Algorithm::PS256).unwrap();
    let token = s.token(Some(rsa.thumbprint()));
    let proof = rsa
        .proof("GET", &s.url("/whoami"), Some(&token), None)
        .unwrap();
    let auth = format!("DPoP {token}");
    let r = send(
        s.addr,
        "GET",
        "/whoami",
        &[("Authorization", &auth), ("DPoP", &proof)],
    )
    .await;
    assert_refused(&r, 401, "DPoP", "invalid_dpop_proof");
}

on_both_servers!(
    plain_http_public_url_only_for_loopback,
    plain_http_only_for_loopback
);

async fn plain_http_only_for_loopback(name: &str) {
    let issuer = TestIssuer::new(ISSUER, AUDIENCE);
    let jwks = crate::scratch::file(&format!("http-{name}.json"));
    std::fs::write(&jwks, issuer.jwks_json()).unwrap();
    let run = |extra: &'static [&'static str]| {
        let jwks = jwks.clone();
        async move {
            let mut child = Command::new(example_binary(name))
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--issuer",
                    ISSUER,
                    "--audience",
                    AUDIENCE,
                ])
                .arg("--jwks-file")
                .arg(&jwks)
                .args(["--public-url", "http://api.example.test"])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut line = String::new();
            let stdout = child.stdout.take().unwrap();
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                BufReader::new(stdout).read_line(&mut line),
            )
            .await;
            let status = tokio::time::timeout(Duration::from_millis(500), child.wait()).await;
            (
                line,
                status.ok().and_then(Result::ok).and_then(|s| s.code()),
            )
        }
    };
    let (line, code) = run(&[]).await;
    assert!(
        line.is_empty(),
        "{name} served plain http for a public host: {line}"
    );
    assert_eq!(code, Some(1), "{name}");
    let (line, _) = run(&["--insecure-http"]).await;
    assert!(line.starts_with("listening on "), "{name}: {line}");
}

on_both_servers!(
    servers_require_a_request_signature_with_the_flag,
    requires_a_request_signature
);

/// `--require-signature` (issue #27, EXAMPLE-SERVERS.md): a `POST /whoami` with a JSON body,
/// a DPoP proof and an RFC 9421 signature by the DPoP key over `@method`, `@target-uri`,
/// `authorization`, `content-digest`: 200 with the claims; one byte of the body changed: 401;
/// no signature: 401 with `Accept-Signature`.
async fn requires_a_request_signature(name: &str) {
    use tower_pop::httpsig::sign::{REQUEST_COMPONENTS, SignatureOptions, sign_request};
    let s = Server::start(name, &["--require-signature"]).await;
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let token = s.token(Some(client.thumbprint()));
    let body = r#"{"amount": 100, "to": "bob"}"#;
    let post = |body: &'static str, signed: bool, tamper: Option<&'static str>| {
        let proof = client
            .proof("POST", &s.url("/whoami"), Some(&token), None)
            .unwrap();
        let request = http::Request::post(s.url("/whoami"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        if signed {
            let options = SignatureOptions::new(&REQUEST_COMPONENTS);
            sign_request(&client, &options, &mut parts, body.as_bytes()).unwrap();
        }
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        (headers, tamper.unwrap_or(body))
    };
    let send = |(headers, body): (Vec<(String, String)>, &'static str)| async move {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        examples_common::http::send_with_body(s.addr, "POST", "/whoami", &headers, body).await
    };
    let ok = send(post(body, true, None)).await;
    assert_eq!(ok.status, 200, "{name}: {ok:?}");
    assert_eq!(ok.json()["binding"], "dpop", "{name}");
    let changed = send(post(body, true, Some(r#"{"amount": 900, "to": "bob"}"#))).await;
    assert_refused(&changed, 401, "DPoP", "invalid_signature");
    let unsigned = send(post(body, false, None)).await;
    assert_refused(&unsigned, 401, "DPoP", "invalid_signature");
    assert_eq!(
        unsigned.header("accept-signature"),
        Some(r#"sig1=("@method" "@target-uri" "authorization" "content-digest");created"#),
        "{name}"
    );
    // Without the flag, the unsigned request passes as before.
    let plain = Server::start(name, &[]).await;
    let token = plain.token(Some(client.thumbprint()));
    let proof = client
        .proof("POST", &plain.url("/whoami"), Some(&token), None)
        .unwrap();
    let auth = format!("DPoP {token}");
    let r = examples_common::http::send_with_body(
        plain.addr,
        "POST",
        "/whoami",
        &[
            ("Authorization", &auth),
            ("DPoP", &proof),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{name}: {r:?}");
}
