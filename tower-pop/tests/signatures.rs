//! RFC 9421 request signatures bound to the token's key, through `RequirePopLayer` +
//! `RequireSignatureLayer`: the accepted request, and each refusal issue #27 names (body changed,
//! `Content-Digest` missing or wrong, `authorization` not covered, another key, an old
//! `created`, a replayed signature, a signature over another URL), with its status,
//! `error_description` and `Accept-Signature`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::httpsig::sign::{REQUEST_COMPONENTS, SignatureOptions, sign_request};
use tower_pop::httpsig::{RequireSignatureLayer, SignaturePolicy, VerifiedSignature};
use tower_pop::{Algorithm, PopErrorKind, RequirePopLayer};

use crate::support::{Fixture, NOW, ORIGIN};

const PATH: &str = "/pay";
const BODY: &str = r#"{"amount": 100, "to": "bob"}"#;

/// The service under test: echoes the body it received and the signature's label.
async fn call(
    f: &Fixture,
    policy: SignaturePolicy,
    request: Request<Full<Bytes>>,
) -> Response<String> {
    let service = ServiceBuilder::new()
        .layer(RequirePopLayer::new(Arc::clone(&f.verifier)))
        .layer(RequireSignatureLayer::new(Arc::clone(&f.verifier), policy))
        .service(service_fn(|req: Request<Full<Bytes>>| async move {
            let label = req
                .extensions()
                .get::<VerifiedSignature>()
                .map(|s| s.label().to_owned())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8(body.to_vec()).unwrap();
            Ok::<_, Infallible>(Response::new(format!("{label}:{body}")))
        }));
    service.oneshot(request).await.unwrap()
}

/// A POST with a fresh proof by `f.client`, signed by `signer` with `options`, then `tamper`ed.
fn signed(
    f: &Fixture,
    signer: &ProofSigner,
    options: &SignatureOptions,
    url: &str,
    body: &str,
) -> Request<Full<Bytes>> {
    let token = f.token();
    let proof = f
        .client
        .proof_at("POST", &format!("{ORIGIN}{PATH}"), Some(&token), None, NOW)
        .unwrap();
    let request = Request::post(url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .unwrap();
    let (mut parts, body) = request.into_parts();
    sign_request(signer, options, &mut parts, body.as_bytes()).unwrap();
    // The server sees the origin-form target.
    parts.uri = PATH.parse().unwrap();
    Request::from_parts(parts, Full::from(body))
}

/// `sent`'s token, body digest and signature again, with a fresh proof and `signature` as
/// the `Signature` field: the same signature on a new request.
fn resend(
    f: &Fixture,
    sent: &http::HeaderMap,
    signature: http::HeaderValue,
) -> Request<Full<Bytes>> {
    let authorization = sent["authorization"].clone();
    let token = authorization
        .to_str()
        .unwrap()
        .strip_prefix("DPoP ")
        .unwrap()
        .to_owned();
    let url = format!("{ORIGIN}{PATH}");
    let proof = f
        .client
        .proof_at("POST", &url, Some(&token), None, NOW)
        .unwrap();
    let mut again = Request::post(PATH).body(Full::from(BODY)).unwrap();
    let headers = again.headers_mut();
    headers.insert("authorization", authorization);
    headers.insert("dpop", proof.parse().unwrap());
    headers.insert("content-digest", sent["content-digest"].clone());
    headers.insert("signature-input", sent["signature-input"].clone());
    headers.insert("signature", signature);
    again
}

fn options() -> SignatureOptions {
    SignatureOptions::new(&REQUEST_COMPONENTS).created(NOW)
}

fn description(response: &Response<String>) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn assert_refused(response: &Response<String>, status: u16, kind: PopErrorKind) {
    assert_eq!(response.status(), status, "{:?}", response.headers());
    let error = response.extensions().get::<tower_pop::PopError>().unwrap();
    assert_eq!(error.kind(), kind);
    if status == 401 {
        let challenge = description(response);
        assert!(challenge.starts_with("DPoP "), "{challenge}");
        assert!(
            challenge.contains(r#"error="invalid_signature""#),
            "{challenge}"
        );
        assert!(challenge.contains(kind.description()), "{challenge}");
        let accept = response.headers()["accept-signature"].to_str().unwrap();
        assert!(
            accept.starts_with(r#"sig1=("@method" "@target-uri" "authorization""#)
                && accept.ends_with(r#""content-digest");created"#),
            "{accept}"
        );
    }
}

#[tokio::test]
async fn a_signed_post_by_the_dpop_key_reaches_the_handler_with_its_body() {
    let f = Fixture::new();
    let url = format!("{ORIGIN}{PATH}");
    let response = call(
        &f,
        SignaturePolicy::new(),
        signed(&f, &f.client, &options(), &url, BODY),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    assert_eq!(response.body(), &format!("sig1:{BODY}"));
    // Without a body, `content-digest` is not required.
    let response = call(
        &f,
        SignaturePolicy::new(),
        signed(&f, &f.client, &options(), &url, ""),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", response.headers());
}

#[tokio::test]
async fn each_way_a_signature_fails_is_refused_with_its_error() {
    use PopErrorKind::*;
    let f = Fixture::new();
    let url = format!("{ORIGIN}{PATH}");
    let changed = BODY.replace("100", "900");
    let sign = |signer: &ProofSigner, options: SignatureOptions, url: &str| {
        signed(&f, signer, &options, url, BODY)
    };
    let without = |names: &[&str]| {
        let mut request = sign(&f.client, options(), &url);
        for name in names {
            request.headers_mut().remove(*name);
        }
        request
    };
    // The body changed after signing, alone or with a Content-Digest of the new body (then the
    // signature over the old digest fails).
    let tampered = sign(&f.client, options(), &url).map(|_| Full::from(changed.clone()));
    let mut redigested = sign(&f.client, options(), &url).map(|_| Full::from(changed.clone()));
    let digest = tower_pop::httpsig::content_digest(
        tower_pop::httpsig::DigestAlgorithm::Sha256,
        changed.as_bytes(),
    );
    redigested
        .headers_mut()
        .insert("content-digest", digest.parse().unwrap());
    let other = ProofSigner::generate(Algorithm::ES256).unwrap();
    let mut malformed = sign(&f.client, options(), &url);
    malformed
        .headers_mut()
        .insert("signature", "sig1=not-bytes".parse().unwrap());
    let uncovered = SignatureOptions::new(&["@method", "@target-uri"]).created(NOW);
    let cases = [
        ("body changed", tampered, 401, ContentDigestMismatch),
        (
            "Content-Digest removed",
            without(&["content-digest"]),
            401,
            ContentDigestMismatch,
        ),
        (
            "Content-Digest of the changed body",
            redigested,
            401,
            InvalidSignature,
        ),
        (
            "authorization not covered",
            sign(&f.client, uncovered, &url),
            401,
            SignatureCoverage,
        ),
        (
            "another key",
            sign(&other, options(), &url),
            401,
            InvalidSignature,
        ),
        (
            "another key naming the bound one",
            sign(&other, options().keyid(f.client.thumbprint()), &url),
            401,
            InvalidSignature,
        ),
        (
            "an old created",
            sign(&f.client, options().created(NOW - 600), &url),
            401,
            SignatureExpired,
        ),
        (
            "a future created",
            sign(&f.client, options().created(NOW + 600), &url),
            401,
            SignatureExpired,
        ),
        (
            "the target URI of another URL",
            sign(&f.client, options(), &format!("{ORIGIN}/elsewhere")),
            401,
            InvalidSignature,
        ),
        (
            "no signature",
            without(&["signature", "signature-input"]),
            401,
            MissingSignature,
        ),
        ("malformed fields", malformed, 400, MalformedSignature),
    ];
    for (why, request, status, kind) in cases {
        let response = call(&f, SignaturePolicy::new(), request).await;
        assert_refused(&response, status, kind);
        assert_ne!(response.body(), &format!("sig1:{BODY}"), "{why}");
    }
    // A body over the bound: 413, the handler never runs.
    let request = sign(&f.client, options(), &url);
    let response = call(&f, SignaturePolicy::new().max_body(8), request).await;
    assert_refused(&response, 413, BodyTooLarge);
}

#[tokio::test]
async fn a_replayed_signature_is_refused_even_with_a_fresh_proof() {
    let f = Fixture::new();
    let url = format!("{ORIGIN}{PATH}");
    let first = signed(&f, &f.client, &options(), &url, BODY);
    let sent = first.headers().clone();
    assert_eq!(call(&f, SignaturePolicy::new(), first).await.status(), 200);
    // The same signature on a request with a new proof: the signature does not cover `dpop`,
    // so it still verifies, and only single use stops it.
    let again = resend(&f, &sent, sent["signature"].clone());
    assert_refused(
        &call(&f, SignaturePolicy::new(), again).await,
        401,
        PopErrorKind::SignatureReplayed,
    );
}

#[tokio::test]
async fn covering_the_proof_is_a_policy_option() {
    let f = Fixture::new();
    let url = format!("{ORIGIN}{PATH}");
    let strict = || SignaturePolicy::new().cover("dpop");
    let request = signed(&f, &f.client, &options(), &url, BODY);
    assert_refused(
        &call(&f, strict(), request).await,
        401,
        PopErrorKind::SignatureCoverage,
    );
    let with_dpop =
        SignatureOptions::new(&["@method", "@target-uri", "authorization", "dpop"]).created(NOW);
    let request = signed(&f, &f.client, &with_dpop, &url, BODY);
    assert_eq!(call(&f, strict(), request).await.status(), 200);
}

#[tokio::test]
async fn without_the_token_layer_nothing_passes() {
    let f = Fixture::new();
    let service = ServiceBuilder::new()
        .layer(RequireSignatureLayer::new(
            Arc::clone(&f.verifier),
            SignaturePolicy::new(),
        ))
        .service(service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(String::from("reached")))
        }));
    let request = signed(&f, &f.client, &options(), &format!("{ORIGIN}{PATH}"), BODY);
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_ne!(response.body(), "reached");
}

/// Item 6 of issue #27: a server key signs the response over `@status`, `content-digest` and the
/// request's signature (`req`), and the signature verifies with the server's public key over
/// the base RFC 9421 §2.4 defines.
#[tokio::test]
async fn responses_are_signed_over_the_request_signature() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    use base64::Engine as _;
    use tower_pop::httpsig::respond::SignResponseLayer;
    let f = Fixture::new();
    let server = Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap());
    let service = ServiceBuilder::new()
        .layer(RequirePopLayer::new(Arc::clone(&f.verifier)))
        .layer(RequireSignatureLayer::new(
            Arc::clone(&f.verifier),
            SignaturePolicy::new(),
        ))
        .layer(SignResponseLayer::new(
            Arc::clone(&server),
            ORIGIN,
            SignatureOptions::new(&[]).label("res").created(NOW),
        ))
        .service(service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(r#"{"paid": true}"#)))
        }));
    let request = signed(&f, &f.client, &options(), &format!("{ORIGIN}{PATH}"), BODY);
    let request_signature = request.headers()["signature"].to_str().unwrap().to_owned();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    let digest = header("content-digest");
    assert_eq!(
        digest,
        tower_pop::httpsig::content_digest(
            tower_pop::httpsig::DigestAlgorithm::Sha256,
            br#"{"paid": true}"#
        )
    );
    let input = header("signature-input");
    let params = input.strip_prefix("res=").unwrap();
    assert!(
        params.starts_with(r#"("@status" "content-digest" "signature";req;key="sig1");created="#),
        "{params}"
    );
    let request_bytes = request_signature.strip_prefix("sig1=").unwrap();
    let base = format!(
        "\"@status\": 200\n\"content-digest\": {digest}\n\"signature\";req;key=\"sig1\": {request_bytes}\n\"@signature-params\": {params}"
    );
    let signature = header("signature");
    let signature = signature
        .strip_prefix("res=:")
        .and_then(|s| s.strip_suffix(':'))
        .unwrap();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .unwrap();
    let jwk: serde_json::Value = serde_json::from_str(&server.public_jwk()).unwrap();
    let coordinate = |name: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().unwrap())
            .unwrap()
    };
    let mut point = vec![4];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);
    assert!(key.verify(base.as_bytes(), &signature).is_ok(), "{base}");
    // One byte of the body changed: its digest, and so the signature, no longer fit.
    let tampered = base.replace(&digest, "sha-256=:AAAA:");
    assert!(key.verify(tampered.as_bytes(), &signature).is_err());
}

/// A certificate-bound token (RFC 8705): the signature is by the client certificate's key,
/// `keyid` its `x5t#S256`; the DPoP key of another client, or another certificate's key, fails.
#[tokio::test]
async fn a_certificate_bound_token_is_signed_with_the_certificate_key() {
    use tower_pop::PeerCertificate;
    let f = Fixture::new();
    let client = &tower_pop_test_support::pki().client_a;
    let other = &tower_pop_test_support::pki().client_b;
    let key = |identity: &tower_pop_test_support::Identity| {
        ProofSigner::from_pkcs8_pem(Algorithm::ES256, identity.key_pem.as_bytes()).unwrap()
    };
    let x5t = client.x5t();
    let token = f.token_patched(serde_json::json!({"cnf": {"x5t#S256": x5t}}));
    let request = |signer: &ProofSigner| {
        let (mut parts, ()) = Request::post(format!("{ORIGIN}{PATH}"))
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap()
            .into_parts();
        sign_request(signer, &options().keyid(&x5t), &mut parts, BODY.as_bytes()).unwrap();
        parts.uri = PATH.parse().unwrap();
        parts.extensions.insert(PeerCertificate::new(client.der()));
        Request::from_parts(parts, Full::from(BODY))
    };
    let response = call(&f, SignaturePolicy::new(), request(&key(client))).await;
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    for wrong in [&key(other), &f.client] {
        let response = call(&f, SignaturePolicy::new(), request(wrong)).await;
        assert_eq!(response.status(), 401);
        let error = response.extensions().get::<tower_pop::PopError>().unwrap();
        assert_eq!(error.kind(), PopErrorKind::InvalidSignature);
    }
}

/// The review's findings, each as a test: an ECDSA signature's other form `(r, n - s)` is the
/// same signature for single use; a certificate-bound client's signatures count against its
/// key's quota (it sends no proofs that would).
#[tokio::test]
async fn the_high_s_twin_of_a_signature_is_a_replay() {
    use base64::Engine as _;
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let f = Fixture::new();
    let url = format!("{ORIGIN}{PATH}");
    let first = signed(&f, &f.client, &options(), &url, BODY);
    let sent = first.headers().clone();
    assert_eq!(call(&f, SignaturePolicy::new(), first).await.status(), 200);
    // n - s, big-endian.
    let bytes = sent["signature"].to_str().unwrap();
    let bytes = bytes
        .strip_prefix("sig1=:")
        .unwrap()
        .strip_suffix(':')
        .unwrap();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(bytes)
        .unwrap();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(raw[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        raw[32 + i] = u8::try_from(d).unwrap();
    }
    let twin = format!(
        "sig1=:{}:",
        base64::engine::general_purpose::STANDARD.encode(&raw)
    );
    let again = resend(&f, &sent, twin.parse().unwrap());
    assert_refused(
        &call(&f, SignaturePolicy::new(), again).await,
        401,
        PopErrorKind::SignatureReplayed,
    );
}

#[tokio::test]
async fn a_certificate_bound_clients_signatures_count_against_its_quota() {
    use tower_pop::PeerCertificate;
    let f = Fixture::with(|b| b.proof_key_quota(2));
    let client = &tower_pop_test_support::pki().client_a;
    let key = ProofSigner::from_pkcs8_pem(Algorithm::ES256, client.key_pem.as_bytes()).unwrap();
    let x5t = client.x5t();
    let token = f.token_patched(serde_json::json!({"cnf": {"x5t#S256": x5t}}));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (mut parts, ()) = Request::post(format!("{ORIGIN}{PATH}"))
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap()
            .into_parts();
        sign_request(&key, &options().keyid(&x5t), &mut parts, BODY.as_bytes()).unwrap();
        parts.uri = PATH.parse().unwrap();
        parts.extensions.insert(PeerCertificate::new(client.der()));
        let response = call(
            &f,
            SignaturePolicy::new(),
            Request::from_parts(parts, Full::from(BODY)),
        )
        .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
}
