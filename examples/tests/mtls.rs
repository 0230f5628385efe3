//! Certificate-bound tokens (RFC 8705) end to end on both example servers: real TLS on loopback
//! with rcgen certificates and a real HTTPS client presenting them, and certificates forwarded
//! by trusted proxies (RFC 9440 `Client-Cert`, Envoy XFCC, nginx) from 127.0.0.2 only.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;
use tower_pop_test_support::{Identity, pki};

use crate::server::{AUDIENCE, ISSUER, SERVERS, Server, now};
use examples_common::http::Reply;

/// The flags that serve TLS with the test PKI's server certificate and ask for client
/// certificates of its CA, the PEM files written to the scratch directory.
pub(crate) fn tls_flags() -> Vec<String> {
    let pki = pki();
    let write = |name: &str, pem: &str| crate::scratch::write(&format!("mtls-{name}"), pem);
    vec![
        "--tls-cert".into(),
        write("server.pem", &pki.server.cert_pem),
        "--tls-key".into(),
        write("server.key", &pki.server.key_pem),
        "--client-ca".into(),
        write("ca.pem", &pki.ca_pem),
    ]
}

pub(crate) async fn start_tls(name: &str) -> Server {
    let flags = tls_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(name, &flags).await;
    assert_eq!(server.scheme, "https");
    server
}

/// An HTTPS client trusting the test CA, presenting `identity`.
pub(crate) fn https_client(identity: Option<&Identity>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki().ca_pem.as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([ca]);
    if let Some(identity) = identity {
        let pem = format!("{}{}", identity.cert_pem, identity.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, reqwest::Error> {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::read(request.send().await?).await
}

fn cert_token(s: &Server, x5t: &str) -> String {
    s.issuer.token(now(), json!({"cnf": {"x5t#S256": x5t}}))
}

fn is_invalid_token_in_bearer(r: &Reply) -> bool {
    r.status == 401
        && r.header("www-authenticate")
            .is_some_and(|c| crate::server::error_in(c, "Bearer", "invalid_token"))
}

#[tokio::test]
async fn mtls_bound_tokens_over_real_tls() {
    for name in SERVERS {
        mtls_over_tls(name).await;
    }
}

async fn mtls_over_tls(name: &str) {
    let pki = pki();
    let s = start_tls(name).await;
    let url = s.url("/whoami");
    let with_a = https_client(Some(&pki.client_a));
    let with_b = https_client(Some(&pki.client_b));
    let without = https_client(None);
    let token = cert_token(&s, &pki.client_a.x5t());
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    // Cert A: 200, several requests on one keep-alive client.
    for _ in 0..3 {
        let r = get(&with_a, &url, &auth).await.unwrap();
        assert_eq!(r.status, 200, "{name}: {r:?}");
        let body = r.json();
        assert_eq!(body["binding"], "mtls");
        assert_eq!(body["x5t#S256"], pki.client_a.x5t());
    }
    // Cert B or none: 401 invalid_token in the Bearer challenge.
    let r = get(&with_b, &url, &auth).await.unwrap();
    assert!(is_invalid_token_in_bearer(&r), "{name}: {r:?}");
    let r = get(&without, &url, &auth).await.unwrap();
    assert!(is_invalid_token_in_bearer(&r), "{name}: {r:?}");
    // A certificate from another CA: the handshake is refused.
    let stranger = https_client(Some(&pki.stranger));
    assert!(
        get(&stranger, &url, &auth).await.is_err(),
        "{name}: stranger connected"
    );
    // An unbound token: refused (proof of possession required).
    let unbound = s.token(None);
    let r = get(
        &with_a,
        &url,
        &[("Authorization", &format!("Bearer {unbound}"))],
    )
    .await
    .unwrap();
    assert!(is_invalid_token_in_bearer(&r), "{name}: {r:?}");

    // DPoP over TLS, with or without a client certificate.
    let key = ProofSigner::generate(Algorithm::ES256).unwrap();
    let dpop_token = s.token(Some(key.thumbprint()));
    let dpop_auth = format!("DPoP {dpop_token}");
    for client in [&without, &with_a] {
        let proof = key.proof("GET", &url, Some(&dpop_token), None).unwrap();
        let r = get(
            client,
            &url,
            &[("Authorization", &dpop_auth), ("DPoP", &proof)],
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{name}: {r:?}");
        assert_eq!(r.json()["binding"], "dpop");
    }

    // Bound to both key and certificate: both must be proven.
    let both = s.issuer.token(
        now(),
        json!({"cnf": {"jkt": key.thumbprint(), "x5t#S256": pki.client_a.x5t()}}),
    );
    let both_auth = format!("DPoP {both}");
    let proof = key.proof("GET", &url, Some(&both), None).unwrap();
    let r = get(
        &with_a,
        &url,
        &[("Authorization", &both_auth), ("DPoP", &proof)],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{name}: {r:?}");
    assert_eq!(r.json()["binding"], "dpop+mtls");
    let proof = key.proof("GET", &url, Some(&both), None).unwrap();
    let r = get(
        &with_b,
        &url,
        &[("Authorization", &both_auth), ("DPoP", &proof)],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401, "{name}: {r:?}");
    assert!(crate::server::error_in(
        r.header("www-authenticate").unwrap(),
        "DPoP",
        "invalid_token"
    ));
}

/// A client whose TCP connections come from `ip` (127.0.0.2 is the trusted proxy).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .local_address(IpAddr::V4(ip))
        .build()
        .unwrap()
}

const TRUSTED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const UNTRUSTED: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// RFC 9440 Appendix A's client certificate and its `x5t#S256`.
const RFC9440_CERT: &str = "MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=";
const RFC9440_X5T: &str = "v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes";

fn pem_of(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// The header (name, value) a proxy of `format` would forward for `der`.
fn forwarded(format: &str, der: &[u8]) -> (&'static str, String) {
    let escaped = utf8_percent_encode(&pem_of(der), NON_ALPHANUMERIC).to_string();
    match format {
        "rfc9440" => (
            "Client-Cert",
            format!(
                ":{}:",
                base64::engine::general_purpose::STANDARD.encode(der)
            ),
        ),
        "xfcc" => {
            let hash: String = tower_pop_sha256_hex(der);
            (
                "x-forwarded-client-cert",
                format!("By=spiffe://proxy;Hash={hash};Cert=\"{escaped}\""),
            )
        }
        _ => ("ssl-client-cert", escaped),
    }
}

fn tower_pop_sha256_hex(der: &[u8]) -> String {
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tower_pop::thumbprint::x5t_s256(der))
        .unwrap();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn forwarded_certificates_only_from_trusted_proxies() {
    for name in SERVERS {
        for format in ["rfc9440", "xfcc", "nginx"] {
            // The helper ends with RFC 9440's expired certificate binding a token: 200 (MTLS-06).
            forwarded_from_proxies(name, format).await;
        }
    }
}

async fn forwarded_from_proxies(name: &str, format: &str) {
    let issuer = Arc::new(TestIssuer::new(ISSUER, AUDIENCE));
    let s = Server::start_with(
        name,
        &[
            "--trusted-proxy",
            "127.0.0.2/32",
            "--trusted-proxy",
            "::1",
            "--client-cert-header",
            format,
        ],
        issuer,
    )
    .await;
    let url = s.url("/whoami");
    let pki = pki();
    let (header, value) = forwarded(format, &pki.client_a.der());
    let token = cert_token(&s, &pki.client_a.x5t());
    let bearer = format!("Bearer {token}");

    // From the trusted proxy: the forwarded certificate binds, and the answer is not cacheable.
    let r = get(
        &client_from(TRUSTED),
        &url,
        &[("Authorization", &bearer), (header, &value)],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{name} {format}: {r:?}");
    assert_eq!(r.json()["x5t#S256"], pki.client_a.x5t());
    assert_eq!(
        r.header("cache-control"),
        Some("no-store"),
        "{name} {format}"
    );
    // The same header from anyone else is ignored: no certificate, 401.
    let r = get(
        &client_from(UNTRUSTED),
        &url,
        &[("Authorization", &bearer), (header, &value)],
    )
    .await
    .unwrap();
    assert!(is_invalid_token_in_bearer(&r), "{name} {format}: {r:?}");
    // Another client's certificate from the proxy: 401, still not cacheable.
    let (_, other) = forwarded(format, &pki.client_b.der());
    let r = get(
        &client_from(TRUSTED),
        &url,
        &[("Authorization", &bearer), (header, &other)],
    )
    .await
    .unwrap();
    assert!(is_invalid_token_in_bearer(&r), "{name} {format}: {r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Repeated or malformed headers from the proxy: no trustworthy certificate.
    let r = get(
        &client_from(TRUSTED),
        &url,
        &[
            ("Authorization", &bearer),
            (header, &value),
            (header, &value),
        ],
    )
    .await
    .unwrap();
    assert!(
        is_invalid_token_in_bearer(&r),
        "{name} {format} repeated: {r:?}"
    );
    let r = get(
        &client_from(TRUSTED),
        &url,
        &[("Authorization", &bearer), (header, "garbage")],
    )
    .await
    .unwrap();
    assert!(
        is_invalid_token_in_bearer(&r),
        "{name} {format} malformed: {r:?}"
    );
    // A spoofed header from an untrusted peer does not break DPoP.
    let key = ProofSigner::generate(Algorithm::ES256).unwrap();
    let dpop_token = s.token(Some(key.thumbprint()));
    let proof = key.proof("GET", &url, Some(&dpop_token), None).unwrap();
    let r = get(
        &client_from(UNTRUSTED),
        &url,
        &[
            ("Authorization", &format!("DPoP {dpop_token}")),
            ("DPoP", &proof),
            (header, "garbage"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{name} {format}: {r:?}");
    assert!(r.header("cache-control").is_none());
    // RFC 9440 Appendix A's certificate and its published thumbprint.
    let der = base64::engine::general_purpose::STANDARD
        .decode(RFC9440_CERT)
        .unwrap();
    let (header, value) = forwarded(format, &der);
    let rfc_token = cert_token(&s, RFC9440_X5T);
    let r = get(
        &client_from(TRUSTED),
        &url,
        &[
            ("Authorization", &format!("Bearer {rfc_token}")),
            (header, &value),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{name} {format}: {r:?}");
    assert_eq!(r.json()["x5t#S256"], RFC9440_X5T);
}
