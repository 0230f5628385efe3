//! RFC 9421 Appendix B test vectors (B.2.1-B.2.4, B.2.6, B.3, B.4) and the negative cases of
//! §2.5 and §3.2, on the internal signature base and key import; the RFC's artwork is copied
//! unfolded (RFC 8792). B.2.5 (`hmac-sha256`) is not supported: a shared secret is no proof of
//! possession of the token's key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;

use super::base::{BaseError, Message, RequestTarget, signature_base};
use super::fields::{FieldError, signatures};
use super::key::BoundKey;
use crate::jose::Algorithm;

#[rustfmt::skip]
mod rfc {
pub(super) const RSA_PSS: &str = r#"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----"#;
pub(super) const ECC_P256: &str = r#"-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----"#;
pub(super) const ED25519: &str = r#"-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----"#;
pub(super) const B_2_1_BASE: &str = r#""@signature-params": ();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd""#;
pub(super) const B_2_1_INPUT: &str = r#"sig-b21=();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd""#;
pub(super) const B_2_1_SIGNATURE: &str = r#"sig-b21=:d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGxbtRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==:"#;
pub(super) const B_2_2_BASE: &str = r#""@authority": example.com
"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:
"@query-param";name="Pet": dog
"@signature-params": ("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example""#;
pub(super) const B_2_2_INPUT: &str = r#"sig-b22=("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example""#;
pub(super) const B_2_2_SIGNATURE: &str = r#"sig-b22=:LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfKtjvuJyE5qH7KT8UCMkSowOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEfY17SARYhpTlaqwZVtR8NV7+4UKkjqpcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99PZfB4jY3I5rSV2DSBVkSFsURIjYErOs0tFTQosMTAoxk//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw==:"#;
pub(super) const B_2_3_BASE: &str = r#""date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@query": ?param=Value&Pet=dog
"@authority": example.com
"content-type": application/json
"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss""#;
pub(super) const B_2_3_INPUT: &str = r#"sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss""#;
pub(super) const B_2_3_SIGNATURE: &str = r#"sig-b23=:bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683+qRpRRU5p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJH1pFkh/aYA2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8LZH896+QIF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA==:"#;
pub(super) const B_2_4_BASE: &str = r#""@status": 200
"content-type": application/json
"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:
"content-length": 23
"@signature-params": ("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256""#;
pub(super) const B_2_4_INPUT: &str = r#"sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256""#;
pub(super) const B_2_4_SIGNATURE: &str = r#"sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:"#;
pub(super) const B_2_6_BASE: &str = r#""date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@authority": example.com
"content-type": application/json
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#;
pub(super) const B_2_6_INPUT: &str = r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#;
pub(super) const B_2_6_SIGNATURE: &str = r#"sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"#;
pub(super) const B_4_BASE: &str = r#""@method": GET
"@path": /demo
"@authority": example.org
"accept": application/json, */*
"@signature-params": ("@method" "@path" "@authority" "accept");created=1618884473;keyid="test-key-ed25519""#;
pub(super) const B_3_BASE: &str = r#""@path": /foo
"@query": ?param=Value&Pet=dog
"@method": POST
"@authority": service.internal.example
"client-cert": :MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=:
"@signature-params": ("@path" "@query" "@method" "@authority" "client-cert");created=1618884473;keyid="test-key-ecc-p256""#;
}

fn spki(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn headers(lines: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in lines {
        h.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    h
}

/// RFC 9421 §B.2 `test-request`.
fn test_request() -> HeaderMap {
    headers(&[
        ("host", "example.com"),
        ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("content-type", "application/json"),
        (
            "content-digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("content-length", "18"),
    ])
}

fn target<'a>(
    method: &'a str,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
) -> RequestTarget<'a> {
    RequestTarget {
        method,
        scheme: "https",
        authority,
        path,
        query,
        headers,
    }
}

const ALL: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::PS512,
    Algorithm::ES384,
];

/// Reads the one signature of `input`/`signature` on `with`, rebuilds its base for
/// `message`, compares it with `expected_base` (when given) and verifies it with `pem`.
fn check(
    input: &str,
    signature: &str,
    mut with: HeaderMap,
    message: fn(&HeaderMap) -> Message<'_>,
    expected_base: Option<&str>,
    pem: &str,
) -> bool {
    with.insert("signature-input", input.parse().unwrap());
    with.insert("signature", signature.parse().unwrap());
    let labelled = signatures(&with).unwrap();
    assert_eq!(labelled.len(), 1);
    let Ok(base) = signature_base(&labelled[0].params, &message(&with)) else {
        return false;
    };
    if let Some(expected) = expected_base {
        assert_eq!(base, expected);
    }
    let key = BoundKey::from_spki(&spki(pem), &ALL).unwrap();
    key.verify(base.as_bytes(), &labelled[0].signature)
}

fn b2_request(h: &HeaderMap) -> Message<'_> {
    Message::Request(target(
        "POST",
        "example.com",
        "/foo",
        Some("param=Value&Pet=dog"),
        h,
    ))
}

#[test]
fn rfc9421_b2_request_vectors_verify() {
    for (input, signature, base, pem) in [
        (
            rfc::B_2_1_INPUT,
            rfc::B_2_1_SIGNATURE,
            rfc::B_2_1_BASE,
            rfc::RSA_PSS,
        ),
        (
            rfc::B_2_2_INPUT,
            rfc::B_2_2_SIGNATURE,
            rfc::B_2_2_BASE,
            rfc::RSA_PSS,
        ),
        (
            rfc::B_2_3_INPUT,
            rfc::B_2_3_SIGNATURE,
            rfc::B_2_3_BASE,
            rfc::RSA_PSS,
        ),
        (
            rfc::B_2_6_INPUT,
            rfc::B_2_6_SIGNATURE,
            rfc::B_2_6_BASE,
            rfc::ED25519,
        ),
    ] {
        assert!(
            check(
                input,
                signature,
                test_request(),
                b2_request,
                Some(base),
                pem
            ),
            "{input}"
        );
    }
}

#[test]
fn rfc9421_b2_4_response_vector_verifies() {
    let response = headers(&[
        ("date", "Tue, 20 Apr 2021 02:07:56 GMT"),
        ("content-type", "application/json"),
        // The RFC's `test-response` digest is wrong; B.2.4 signs the body's real one.
        (
            "content-digest",
            "sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:",
        ),
        ("content-length", "23"),
    ]);
    fn message(h: &HeaderMap) -> Message<'_> {
        Message::Response {
            status: 200,
            headers: h,
            request: None,
        }
    }
    assert!(check(
        rfc::B_2_4_INPUT,
        rfc::B_2_4_SIGNATURE,
        response,
        message,
        Some(rfc::B_2_4_BASE),
        rfc::ECC_P256
    ));
    // `@status` is a response's: the same identifier in a request cannot be built.
    let mut request = test_request();
    request.insert("signature-input", rfc::B_2_4_INPUT.parse().unwrap());
    request.insert("signature", rfc::B_2_4_SIGNATURE.parse().unwrap());
    let labelled = signatures(&request).unwrap();
    assert_eq!(
        signature_base(&labelled[0].params, &b2_request(&request)),
        Err(BaseError::Component)
    );
}

/// B.2.6 is deterministic: our Ed25519 signer reproduces it byte for byte.
#[cfg(feature = "signer")]
#[test]
fn rfc9421_b2_6_signature_is_reproduced() {
    let private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
    let signer =
        crate::dpop::signer::ProofSigner::from_pkcs8_pem(Algorithm::EdDSA, private.as_bytes())
            .unwrap();
    let (alg, signature) = super::sign::sign_http(&signer, rfc::B_2_6_BASE.as_bytes()).unwrap();
    assert_eq!(alg.as_str(), "ed25519");
    assert_eq!(
        format!("sig-b26=:{}:", STANDARD.encode(signature)),
        rfc::B_2_6_SIGNATURE
    );
}

#[test]
fn rfc9421_b3_proxy_vector_verifies() {
    const CERT: &str = ":MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=:";
    let request = headers(&[
        ("host", "service.internal.example"),
        ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("content-type", "application/json"),
        ("content-length", "18"),
        ("client-cert", CERT),
    ]);
    fn message(h: &HeaderMap) -> Message<'_> {
        Message::Request(target(
            "POST",
            "service.internal.example",
            "/foo",
            Some("param=Value&Pet=dog"),
            h,
        ))
    }
    let input = r#"ttrp=("@path" "@query" "@method" "@authority" "client-cert");created=1618884473;keyid="test-key-ecc-p256""#;
    let signature = "ttrp=:xVMHVpawaAC/0SbHrKRs9i8I3eOs5RtTMGCWXm/9nvZzoHsIg6Mce9315T6xoklyy0yzhD9ah4JHRwMLOgmizw==:";
    assert!(check(
        input,
        signature,
        request,
        message,
        Some(rfc::B_3_BASE),
        rfc::ECC_P256
    ));
}

/// RFC 9421 §B.4: transformations outside the covered components keep the signature valid;
/// a changed method or authority, or swapped `Accept` lines, break it.
#[test]
fn rfc9421_b4_transformations() {
    const INPUT: &str = r#"transform=("@method" "@path" "@authority" "accept");created=1618884473;keyid="test-key-ed25519""#;
    const SIGNATURE: &str = "transform=:ZT1kooQsEHpZ0I1IjCqtQppOmIqlJPeo7DHR3SoMn0s5JZ1eRGS0A+vyYP9t/LXlh5QMFFQ6cpLt2m0pmj3NDA==:";
    fn get(h: &HeaderMap) -> Message<'_> {
        Message::Request(target(
            "GET",
            "example.org",
            "/demo",
            Some("name1=Value1&Name2=value2"),
            h,
        ))
    }
    fn get_added_query(h: &HeaderMap) -> Message<'_> {
        Message::Request(target(
            "GET",
            "example.org",
            "/demo",
            Some("name1=Value1&Name2=value2&param=added"),
            h,
        ))
    }
    fn post_elsewhere(h: &HeaderMap) -> Message<'_> {
        Message::Request(target(
            "POST",
            "example.com",
            "/demo",
            Some("name1=Value1&Name2=value2"),
            h,
        ))
    }
    let original = headers(&[("accept", "application/json"), ("accept", "*/*")]);
    assert!(check(
        INPUT,
        SIGNATURE,
        original.clone(),
        get,
        Some(rfc::B_4_BASE),
        rfc::ED25519
    ));
    let mut added = original.clone();
    added.insert("accept-language", "en-US,en;q=0.5".parse().unwrap());
    assert!(check(
        INPUT,
        SIGNATURE,
        added,
        get_added_query,
        Some(rfc::B_4_BASE),
        rfc::ED25519
    ));
    let collapsed = headers(&[("accept", "application/json, */*")]);
    assert!(check(
        INPUT,
        SIGNATURE,
        collapsed,
        get,
        Some(rfc::B_4_BASE),
        rfc::ED25519
    ));
    assert!(!check(
        INPUT,
        SIGNATURE,
        original,
        post_elsewhere,
        None,
        rfc::ED25519
    ));
    let swapped = headers(&[("accept", "*/*"), ("accept", "application/json")]);
    assert!(!check(INPUT, SIGNATURE, swapped, get, None, rfc::ED25519));
}

/// RFC 9421 §2.1-§2.2 component values from the RFC's examples.
#[test]
fn rfc9421_section2_component_values() {
    let fields = headers(&[
        ("cache-control", "max-age=60"),
        ("cache-control", "   must-revalidate"),
        ("example-dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c), d"),
        ("example-header", "value, with, lots"),
        ("example-header", "of, commas"),
        ("x-empty-header", ""),
        ("want-content-digest", " sha-256=1,   sha-512=3;q"),
    ]);
    let value = |identifier: &str, query: Option<&str>| {
        let mut h = fields.clone();
        h.insert(
            "signature-input",
            format!("s=({identifier});created=1").parse().unwrap(),
        );
        h.insert("signature", "s=:AA==:".parse().unwrap());
        let labelled = signatures(&h).unwrap();
        let message = Message::Request(target("POST", "www.example.com", "/path", query, &h));
        signature_base(&labelled[0].params, &message).map(|base| {
            let line = base.lines().next().unwrap().to_owned();
            line.split_once(": ")
                .map(|(_, v)| v.to_owned())
                .unwrap_or_default()
        })
    };
    let q = Some("param=value&foo=bar&baz=bat%2Dman");
    assert_eq!(
        value(r#""cache-control""#, q).unwrap(),
        "max-age=60, must-revalidate"
    );
    // `sf` and `key` need the field's structured type: known for the digest and signature
    // fields, not for RFC 9421's `example-dict`.
    assert_eq!(
        value(r#""want-content-digest";sf"#, q).unwrap(),
        "sha-256=1, sha-512=3;q"
    );
    assert_eq!(
        value(r#""want-content-digest";key="sha-512""#, q).unwrap(),
        "3;q"
    );
    assert_eq!(value(r#""example-dict";sf"#, q), Err(BaseError::Component));
    assert_eq!(
        value(r#""example-header";bs"#, q).unwrap(),
        ":dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:"
    );
    assert_eq!(
        value(r#""@target-uri""#, q).unwrap(),
        "https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman"
    );
    assert_eq!(
        value(r#""@request-target""#, q).unwrap(),
        "/path?param=value&foo=bar&baz=bat%2Dman"
    );
    assert_eq!(
        value(r#""@query""#, q).unwrap(),
        "?param=value&foo=bar&baz=bat%2Dman"
    );
    assert_eq!(value(r#""@query""#, None).unwrap(), "?");
    assert_eq!(value(r#""@scheme""#, q).unwrap(), "https");
    assert_eq!(value(r#""@method""#, q).unwrap(), "POST");
    let multiline = Some(
        "var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
    );
    assert_eq!(
        value(r#""@query-param";name="var""#, multiline).unwrap(),
        "this%20is%20a%20big%0Amultiline%20value"
    );
    assert_eq!(
        value(r#""@query-param";name="bar""#, multiline).unwrap(),
        "with%20plus%20whitespace"
    );
    assert_eq!(
        value(r#""@query-param";name="fa%C3%A7ade%22%3A%20""#, multiline).unwrap(),
        "something"
    );
    // The empty field has an empty value: the line ends after ": ".
    let mut h = fields.clone();
    h.insert(
        "signature-input",
        r#"s=("x-empty-header");created=1"#.parse().unwrap(),
    );
    h.insert("signature", "s=:AA==:".parse().unwrap());
    let labelled = signatures(&h).unwrap();
    let base = signature_base(
        &labelled[0].params,
        &Message::Request(target("GET", "a", "/", None, &h)),
    )
    .unwrap();
    assert!(base.starts_with("\"x-empty-header\": \n"));
}

/// The failures RFC 9421 §2.5 and §3.2 require.
#[test]
fn malformed_or_unbuildable_signatures_are_refused() {
    let base = |input: &str, query: Option<&str>| {
        let mut h = test_request();
        h.insert("signature-input", input.parse().unwrap());
        h.insert("signature", "s=:AA==:".parse().unwrap());
        let labelled = signatures(&h).map_err(|_| BaseError::Malformed)?;
        signature_base(
            &labelled[0].params,
            &Message::Request(target("POST", "example.com", "/foo", query, &h)),
        )
    };
    for (input, why) in [
        (r#"s=("@method" "@method");created=1"#, "a component twice"),
        (
            r#"s=("date";sf;bs "date";bs;sf);created=1"#,
            "the same identifier, parameters reordered",
        ),
        (
            r#"s=("@signature-params");created=1"#,
            "@signature-params covered",
        ),
        (r#"s=("@foo");created=1"#, "an unknown derived component"),
        (r#"s=("@status");created=1"#, "@status in a request"),
        (r#"s=("x-absent");created=1"#, "an absent field"),
        (r#"s=("@method";req);created=1"#, "req in a request"),
        (
            r#"s=("date";name="x");created=1"#,
            "a parameter that does not apply",
        ),
        (
            r#"s=("@method";key="x");created=1"#,
            "key on a derived component",
        ),
        (r#"s=("date";bs;sf);created=1"#, "bs with sf"),
        (
            r#"s=("date";sf);created=1"#,
            "sf on a field of unknown type",
        ),
        (
            r#"s=("content-digest";key="sha-256");created=1"#,
            "a dictionary member that is absent",
        ),
        (
            r#"s=("@query-param";name="absent");created=1"#,
            "an absent query parameter",
        ),
    ] {
        assert_eq!(
            base(input, Some("param=Value&Pet=dog")),
            Err(BaseError::Component),
            "{why}"
        );
    }
    assert_eq!(
        base(r#"s=("@query-param";name="a");created=1"#, Some("a=1&a=2")),
        Err(BaseError::Component),
        "a repeated query parameter"
    );
    assert_eq!(
        base(r#"s=(@method);created=1"#, None),
        Err(BaseError::Malformed),
        "a token, not a string"
    );
    assert_eq!(
        base(r#"s=("Date");created=1"#, None),
        Err(BaseError::Malformed),
        "an uppercase field name"
    );
    assert_eq!(
        base(r#"s=("date";req=?0);created=1"#, None),
        Err(BaseError::Malformed),
        "a false flag"
    );
    // Fields that do not pair up, or repeat a label.
    let read = |input: &str, signature: &str| {
        let mut h = HeaderMap::new();
        h.insert("signature-input", input.parse().unwrap());
        h.insert("signature", signature.parse().unwrap());
        signatures(&h).map(|s| s.len())
    };
    assert_eq!(
        read("a=();created=1", "b=:AA==:"),
        Err(FieldError::Malformed)
    );
    assert_eq!(
        read("a=();created=1, a=();created=2", "a=:AA==:"),
        Err(FieldError::Malformed)
    );
    assert_eq!(read("a=();created=1", "a=AA"), Err(FieldError::Malformed));
    assert_eq!(read("a=\"x\"", "a=:AA==:"), Err(FieldError::Malformed));
    assert_eq!(read("a=(", "a=:AA==:"), Err(FieldError::Malformed));
    assert_eq!(read("a=();created=1", "a=:AA==:"), Ok(1));
    assert_eq!(
        signatures(&HeaderMap::new()).map(|s| s.len()),
        Err(FieldError::Absent)
    );
}

/// A key of another type, or an algorithm the DPoP allow-list leaves out, imports nothing.
#[test]
fn keys_import_only_for_allowed_algorithms() {
    assert!(BoundKey::from_spki(&spki(rfc::ECC_P256), &[Algorithm::EdDSA]).is_none());
    assert!(BoundKey::from_spki(&spki(rfc::ED25519), &[Algorithm::ES256]).is_none());
    assert!(BoundKey::from_spki(&spki(rfc::RSA_PSS), &[Algorithm::PS256]).is_some());
    assert!(BoundKey::from_spki(&spki(rfc::RSA_PSS), &[Algorithm::RS256]).is_none());
    assert_eq!(
        BoundKey::from_spki(&spki(rfc::ECC_P256), &ALL)
            .unwrap()
            .algorithm()
            .as_str(),
        "ecdsa-p256-sha256"
    );
}

/// Not a test: `cargo test --release -p tower-pop --features httpsig,signer --lib -- --ignored
/// --nocapture httpsig_parts_cost` prints what each step of a check costs.
#[test]
#[ignore = "a timing probe, not a test"]
fn httpsig_parts_cost() {
    use std::time::Instant;
    let mut h = test_request();
    h.insert("authorization", "DPoP eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJpc3MiOiJodHRwczovL2FzLmV4YW1wbGUuY29tIn0.sig".parse().unwrap());
    h.insert("signature-input", r#"sig1=("@method" "@target-uri" "authorization" "content-digest");created=1618884473;keyid="NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";alg="ecdsa-p256-sha256""#.parse().unwrap());
    h.insert("signature", "sig1=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:".parse().unwrap());
    h.insert(
        "content-digest",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
            .parse()
            .unwrap(),
    );
    let n = 20_000;
    let time = |what: &str, f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        println!(
            "{what}: {:.0} ns",
            start.elapsed().as_nanos() as f64 / n as f64
        );
    };
    time("fields", &mut || {
        std::hint::black_box(signatures(&h).unwrap());
    });
    let labelled = signatures(&h).unwrap();
    time("base", &mut || {
        std::hint::black_box(signature_base(&labelled[0].params, &b2_request(&h)).unwrap());
    });
    time("digest", &mut || {
        std::hint::black_box(super::digest::check(&h, br#"{"hello": "world"}"#).is_ok());
    });
}

/// Not a test: what a kept import saves, or costs, against importing per call.
#[test]
#[ignore = "a timing probe, not a test"]
fn httpsig_parsed_vs_unparsed_cost() {
    use aws_lc_rs::signature::{self as sig, ParsedPublicKey, UnparsedPublicKey};
    use std::time::Instant;
    let signer = crate::dpop::signer::ProofSigner::generate(Algorithm::ES256).unwrap();
    let base = vec![b'a'; 400];
    let (_, signature) = super::sign::sign_http(&signer, &base).unwrap();
    let jwk: serde_json::Value = serde_json::from_str(&signer.public_jwk()).unwrap();
    let member = |n: &str| crate::jose::b64url_decode(jwk[n].as_str().unwrap().as_bytes()).unwrap();
    let mut point = vec![4];
    point.extend(member("x"));
    point.extend(member("y"));
    let parsed = ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point).unwrap();
    let n = 4000;
    for round in 0..3 {
        let start = Instant::now();
        for _ in 0..n {
            assert!(parsed.verify_sig(&base, &signature).is_ok());
        }
        let p = start.elapsed().as_nanos() as f64 / n as f64;
        let start = Instant::now();
        for _ in 0..n {
            let key = UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point);
            assert!(key.verify(&base, &signature).is_ok());
        }
        let u = start.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "round {round}: parsed {p:.0} ns, unparsed {u:.0} ns, parsed/unparsed {:.3}",
            p / u
        );
    }
}

/// Bounds against a base that costs more than its signature (review finding 1).
#[test]
fn oversized_bases_are_refused_before_any_work() {
    let mut h = test_request();
    let many: Vec<String> = (0..40)
        .map(|i| format!(r#""@query-param";name="a{i}""#))
        .collect();
    h.insert(
        "signature-input",
        format!("s=({});created=1", many.join(" ")).parse().unwrap(),
    );
    h.insert("signature", "s=:AA==:".parse().unwrap());
    let labelled = signatures(&h).unwrap();
    let message = Message::Request(target("POST", "example.com", "/foo", Some("a0=1"), &h));
    assert_eq!(
        signature_base(&labelled[0].params, &message),
        Err(BaseError::Malformed)
    );
    // A query too long to decode for `@query-param`.
    let query = format!("a=1&{}", "z&".repeat(10_000));
    h.insert(
        "signature-input",
        r#"s=("@query-param";name="a");created=1"#.parse().unwrap(),
    );
    let labelled = signatures(&h).unwrap();
    let message = Message::Request(target("POST", "example.com", "/foo", Some(&query), &h));
    assert_eq!(
        signature_base(&labelled[0].params, &message),
        Err(BaseError::Component)
    );
    // A dictionary field too long to re-serialize for `;key`.
    let long = format!(
        "a=1, {}",
        (0..2000)
            .map(|i| format!("k{i}=1"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    h.insert("accept-signature", long.parse().unwrap());
    h.insert(
        "signature-input",
        r#"s=("accept-signature";key="a");created=1"#.parse().unwrap(),
    );
    let labelled = signatures(&h).unwrap();
    let message = Message::Request(target("POST", "example.com", "/foo", None, &h));
    assert_eq!(
        signature_base(&labelled[0].params, &message),
        Err(BaseError::Component)
    );
}
