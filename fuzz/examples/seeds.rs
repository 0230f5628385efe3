//! Writes the seed corpora under `fuzz/corpus/<target>/`: the RFC test vectors of
//! SPEC-CHECKLIST.md (RFC 9449 proofs and token, RFC 7638 and RFC 8037 JWKs, the RFC 9440
//! Appendix A certificate) and requests signed for the fixed fuzz verifiers.
//!
//! Run from `fuzz/`: `cargo run --example seeds`. Proofs and tokens get fresh random `jti`s and
//! client keys, so the files change on every run; commit them only when a fixture changes.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)] // A generator: a failure is a bug to see at once.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::thumbprint::x5t_s256;
use tower_pop_fuzz::{AUDIENCE, ISSUER, ISSUER_KID, NOW, ORIGIN, PATH, PROXY_PEER, nonces};

/// The issuer key of [`tower_pop_fuzz::ISSUER_JWKS`] (PKCS#8, P-256). Fuzzing only.
const ISSUER_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDG5RlQ0TOEIr4u0FQObRIHuzATu07Q4Y2JD9sEdimqqhRANCAASjKUuS4NfpiAqJEV4G/Odz4znmaGAyigc9IT9lhQBJZzKYzY1VmgJ8ruBRE1JooOa33tzuDjcFJddq40k1a9+z";

/// RFC 9449 Figure 13 (TV-4), its token, and Figures 2 and 7 (TV-2, TV-3).
const P13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
const AT0: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const TV2: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
const TV3: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5QsGSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA";
/// RFC 9449 Figure 8 (TV-5): a JWT access token whose key is not published.
const TV5: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6IkJlQUxrYiJ9.eyJzdWIiOiJzb21lb25lQGV4YW1wbGUuY29tIiwiaXNzIjoiaHR0cHM6Ly9zZXJ2ZXIuZXhhbXBsZS5jb20iLCJuYmYiOjE1NjIyNjI2MTEsImV4cCI6MTU2MjI2NjIxNiwiY25mIjp7ImprdCI6IjBaY09DT1JaTll5LURXcHFxMzBqWnlKR0hUTjBkMkhnbEJWM3VpZ3VBNEkifX0.3Tyo8VTcn6u_PboUmAOYUY1kfAavomW_YwYMkmRNizLJoQzWy2fCo79Zi5yObpIzjWb5xW4OGld7ESZrh0fsrA";
/// RFC 8037 A.4: a JWS whose payload is not JSON.
const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

/// TV-1, TV-9, TV-10 (public and private).
const JWK_RFC9449: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
const JWK_RFC7638: &str = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
const JWK_RFC8037: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const JWK_RFC8037_PRIVATE: &str = r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

/// RFC 9440 Appendix A client certificate (TV-12), base64 of its DER.
const CERT_B64: &str = "MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=";
const CERT_SHA256_HEX: &str = "bfaf1f7e070f9fa8dd62905f158da73f84a1136624fbafcc9393c8f7287a69eb";

struct Corpus(PathBuf);

impl Corpus {
    fn new(root: &Path, target: &str) -> Self {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn put(&self, name: &str, bytes: impl AsRef<[u8]>) {
        fs::write(self.0.join(name), bytes).unwrap();
    }
}

fn pem() -> String {
    let lines: Vec<&str> = CERT_B64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Every byte but the unreserved ones escaped, as Envoy does.
fn escape_all(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Only spaces and newlines escaped, as nginx's `$ssl_client_escaped_cert`.
fn escape_minimal(s: &str) -> String {
    s.replace(' ', "%20").replace('\n', "%0A")
}

struct Issuer(ProofSigner);

impl Issuer {
    fn token(&self, cnf: Option<Value>) -> String {
        let mut claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "client_id": "c1",
            "iat": NOW, "exp": NOW + 600, "jti": self.0.random_jti().unwrap(), "scope": "read",
        });
        if let Some(cnf) = cnf {
            claims["cnf"] = cnf;
        }
        let header = json!({"typ": "at+jwt", "alg": "ES256", "kid": ISSUER_KID});
        self.0.sign_compact(&header, &claims).unwrap()
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let issuer = Issuer(
        ProofSigner::from_pkcs8(Algorithm::ES256, &STANDARD.decode(ISSUER_PKCS8).unwrap()).unwrap(),
    );
    let url = format!("{ORIGIN}{PATH}");
    let cert_der = STANDARD.decode(CERT_B64).unwrap();
    let x5t = x5t_s256(&cert_der);
    let client_cert = format!(":{CERT_B64}:");
    let xfcc = format!(
        "By=spiffe://proxy;Hash={CERT_SHA256_HEX};Cert=\"{}\";Subject=\"CN=BC\"",
        escape_all(&pem())
    );
    let nginx = escape_minimal(&pem());
    let nonce = nonces().issue(NOW);

    // verify: whole requests for the fixed verifiers.
    let verify = Corpus::new(&root, "verify");
    let request = |first: &str, lines: &[(&str, &str)]| {
        let mut text = format!("{first}\n");
        for (name, value) in lines {
            text.push_str(&format!("{name}: {value}\n"));
        }
        text
    };
    for alg in [
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::Ed25519,
        Algorithm::PS256,
    ] {
        let client = ProofSigner::generate(alg).unwrap();
        let token = issuer.token(Some(json!({"jkt": client.thumbprint()})));
        let proof = client
            .proof_at("GET", &url, Some(&token), None, NOW)
            .unwrap();
        let auth = format!("DPoP {token}");
        let name = format!("dpop-{}", alg.as_str().to_ascii_lowercase());
        verify.put(
            &name,
            request(
                &format!("dpop GET {PATH}"),
                &[("authorization", &auth), ("dpop", &proof)],
            ),
        );
    }
    let client = ProofSigner::generate(Algorithm::ES256).unwrap();
    let jkt = client.thumbprint().to_owned();
    let dpop_token = issuer.token(Some(json!({"jkt": jkt})));
    let dpop_auth = format!("DPoP {dpop_token}");
    let proof = client
        .proof_at("GET", &url, Some(&dpop_token), None, NOW)
        .unwrap();
    verify.put(
        "dpop-query-lowercase",
        request(
            &format!("dpop GET {PATH}?page=2"),
            &[
                ("Authorization", &dpop_auth.replacen("DPoP", "dpop", 1)),
                ("DPOP", &proof),
            ],
        ),
    );
    verify.put(
        "dpop-two-fields",
        request(
            &format!("dpop GET {PATH}"),
            &[
                ("authorization", &dpop_auth),
                ("dpop", &proof),
                ("dpop", &proof),
            ],
        ),
    );
    let both_token = issuer.token(Some(json!({"jkt": jkt, "x5t#S256": x5t})));
    let both_auth = format!("DPoP {both_token}");
    let both_proof = client
        .proof_at("GET", &url, Some(&both_token), None, NOW)
        .unwrap();
    verify.put(
        "dpop-and-mtls-rfc9440",
        request(
            &format!("dpop GET {PATH}"),
            &[
                ("peer", PROXY_PEER),
                ("authorization", &both_auth),
                ("dpop", &both_proof),
                ("client-cert", &client_cert),
            ],
        ),
    );
    let mtls_auth = format!("Bearer {}", issuer.token(Some(json!({"x5t#S256": x5t}))));
    verify.put(
        "mtls-rfc9440",
        request(
            &format!("dpop GET {PATH}"),
            &[
                ("peer", PROXY_PEER),
                ("authorization", &mtls_auth),
                ("client-cert", &client_cert),
            ],
        ),
    );
    verify.put(
        "mtls-untrusted-peer",
        request(
            &format!("dpop GET {PATH}"),
            &[
                ("peer", "203.0.113.7"),
                ("authorization", &mtls_auth),
                ("client-cert", &client_cert),
            ],
        ),
    );
    let post_url = format!("{ORIGIN}/orders");
    let nonce_proof = client
        .proof_at("POST", &post_url, Some(&both_token), Some(&nonce), NOW)
        .unwrap();
    verify.put(
        "nonce-dpop-and-mtls-xfcc",
        request(
            "nonce POST /orders",
            &[
                ("peer", PROXY_PEER),
                ("authorization", &both_auth),
                ("dpop", &nonce_proof),
                ("x-forwarded-client-cert", &xfcc),
            ],
        ),
    );
    let no_nonce = client
        .proof_at("GET", &url, Some(&dpop_token), None, NOW)
        .unwrap();
    verify.put(
        "nonce-missing",
        request(
            &format!("nonce GET {PATH}"),
            &[("authorization", &dpop_auth), ("dpop", &no_nonce)],
        ),
    );
    let bearer_auth = format!("Bearer {}", issuer.token(None));
    verify.put(
        "bearer-unbound",
        request(
            &format!("bearer GET {PATH}"),
            &[("authorization", &bearer_auth)],
        ),
    );
    verify.put(
        "bearer-mtls-nginx",
        request(
            &format!("bearer GET {PATH}"),
            &[
                ("peer", PROXY_PEER),
                ("authorization", &mtls_auth),
                ("ssl-client-cert", &nginx),
            ],
        ),
    );
    verify.put(
        "bearer-downgrade",
        request(
            &format!("bearer GET {PATH}"),
            &[("authorization", &dpop_auth.replacen("DPoP", "Bearer", 1))],
        ),
    );
    verify.put(
        "rfc9449-figure-13",
        request(
            &format!("dpop GET {PATH}"),
            &[("authorization", &format!("DPoP {AT0}")), ("dpop", P13)],
        ),
    );
    verify.put(
        "rfc9449-figure-8-token",
        request(
            &format!("dpop GET {PATH}"),
            &[("authorization", &format!("DPoP {TV5}")), ("dpop", P13)],
        ),
    );
    verify.put("no-credentials", request(&format!("dpop GET {PATH}"), &[]));

    // credentials: Authorization and DPoP fields (AUTH-01..10, DPOP-01).
    let credentials = Corpus::new(&root, "credentials");
    for (name, lines) in [
        (
            "dpop",
            vec![
                ("authorization", format!("DPoP {AT0}")),
                ("dpop", P13.to_owned()),
            ],
        ),
        (
            "lowercase",
            vec![
                ("authorization", format!("dpop {AT0}")),
                ("dpop", P13.to_owned()),
            ],
        ),
        ("spaces", vec![("authorization", format!("DPoP   {AT0}"))]),
        (
            "bearer-padding",
            vec![("authorization", "Bearer abc==".to_owned())],
        ),
        (
            "basic",
            vec![("authorization", "Basic dXNlcjpwdw==".to_owned())],
        ),
        ("empty", vec![("authorization", "DPoP".to_owned())]),
        (
            "folded",
            vec![("authorization", format!("Bearer {AT0}, DPoP {AT0}"))],
        ),
        (
            "two-fields",
            vec![
                ("authorization", format!("Bearer {AT0}")),
                ("authorization", format!("DPoP {AT0}")),
            ],
        ),
        (
            "two-proofs",
            vec![
                ("authorization", format!("DPoP {AT0}")),
                ("dpop", P13.to_owned()),
                ("dpop", P13.to_owned()),
            ],
        ),
        (
            "folded-proofs",
            vec![
                ("authorization", format!("DPoP {AT0}")),
                ("dpop", format!("{P13}, {P13}")),
            ],
        ),
    ] {
        let lines: Vec<(&str, &str)> = lines.iter().map(|(n, v)| (*n, v.as_str())).collect();
        credentials.put(name, request(&format!("dpop GET {PATH}"), &lines));
    }

    // proof: RFC proofs and proofs by each key type.
    let proofs = Corpus::new(&root, "proof");
    proofs.put("rfc9449-figure-13", P13);
    proofs.put("rfc9449-figure-2", TV2);
    proofs.put("rfc9449-figure-7", TV3);
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::PS256,
        Algorithm::RS256,
    ] {
        let client = ProofSigner::generate(alg).unwrap();
        let proof = client
            .proof_at("GET", &url, Some(AT0), Some(&nonce), 1_562_262_618)
            .unwrap();
        proofs.put(&alg.as_str().to_ascii_lowercase(), proof);
    }

    // jws: compact serialisations of proofs and tokens.
    let jws = Corpus::new(&root, "jws");
    jws.put("rfc9449-figure-13", P13);
    jws.put("rfc9449-figure-8-token", TV5);
    jws.put("rfc8037-a4", RFC8037_JWS);
    jws.put("access-token", issuer.token(Some(json!({"jkt": jkt}))));

    // json: JOSE headers and payloads, as decoded.
    let json = Corpus::new(&root, "json");
    json.put("rfc9449-figure-4-header", json!({"typ":"dpop+jwt","alg":"ES256","jwk": serde_json::from_str::<Value>(JWK_RFC9449).unwrap()}).to_string());
    json.put("rfc9449-figure-14-payload", r#"{"jti":"e1j3V_bKic8-LAEB","htm":"GET","htu":"https://resource.example.org/protectedresource","iat":1562262618,"ath":"fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"}"#);
    json.put("rfc9449-figure-9-payload", r#"{"sub":"someone@example.com","iss":"https://server.example.com","nbf":1562262611,"exp":1562266216,"cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}"#);
    json.put("rfc8705-3-1-payload", r#"{"iss":"https://server.example.com","sub":"ty.webb@example.com","exp":1493726400,"nbf":1493722800,"cnf":{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}"#);
    json.put("escapes-numbers", r#"{"a":"\u002d\ud83d\ude00\n","b":[1,-2,3.5e-7,1e308,18446744073709551616,true,false,null],"c":{"d":{"e":[]}}}"#);
    json.put("duplicate", r#"{"alg":"ES256","alg":"none"}"#);

    // jwk: RFC keys and generated keys of each type, with unknown members.
    let jwk = Corpus::new(&root, "jwk");
    jwk.put("rfc9449-tv1", JWK_RFC9449);
    jwk.put("rfc7638-3-1", JWK_RFC7638);
    jwk.put("rfc8037-a2", JWK_RFC8037);
    jwk.put("rfc8037-a1-private", JWK_RFC8037_PRIVATE);
    for alg in [Algorithm::ES384, Algorithm::ES512, Algorithm::PS256] {
        let key = ProofSigner::generate(alg).unwrap();
        let mut value: Value = serde_json::from_str(&key.public_jwk()).unwrap();
        value["kid"] = json!("k1");
        value["use"] = json!("sig");
        jwk.put(&alg.as_str().to_ascii_lowercase(), value.to_string());
    }

    // htu: RFC 9449 URLs and the normalisation cases of RFC 3986 §6.
    let htu = Corpus::new(&root, "htu");
    for (name, uri) in [
        (
            "rfc9449-resource",
            "https://resource.example.org/protectedresource",
        ),
        ("rfc9449-token", "https://server.example.com/token"),
        (
            "case-port-query",
            "HTTPS://Resource.Example.ORG:443/protectedresource?page=2#frag",
        ),
        ("escapes", "https://r.example/%7Euser/a%2fb/%41%e2%82%ac"),
        ("dot-segments", "https://r.example/x/./y/../z/%2E%2E/w/."),
        ("ipv6-port", "http://[::1]:8080/x"),
        ("userinfo", "https://u@resource.example.org/"),
        ("empty-path", "https://resource.example.org:"),
    ] {
        htu.put(name, uri);
    }

    // forwarded_cert: a selector byte (0 RFC 9440, 1 XFCC, 2 nginx), then the values.
    let forwarded = Corpus::new(&root, "forwarded_cert");
    let with = |selector: u8, value: &str| [&[selector][..], value.as_bytes()].concat();
    forwarded.put("rfc9440-appendix-a", with(0, &client_cert));
    forwarded.put(
        "rfc9440-repeated",
        with(0, &format!("{client_cert}\n{client_cert}")),
    );
    forwarded.put(
        "xfcc-appendix-a",
        with(1, &format!("By=spiffe://client;URI=x,{xfcc}")),
    );
    forwarded.put("nginx-appendix-a", with(2, &nginx));

    // nonce: a time offset (two bytes, little-endian seconds), then the nonce.
    let nonce_corpus = Corpus::new(&root, "nonce");
    nonce_corpus.put("live", [&0i16.to_le_bytes()[..], nonce.as_bytes()].concat());
    nonce_corpus.put(
        "stale",
        [&301i16.to_le_bytes()[..], nonce.as_bytes()].concat(),
    );
    nonce_corpus.put(
        "future",
        [&(-40i16).to_le_bytes()[..], nonce.as_bytes()].concat(),
    );
    println!("seed corpora written under {}", root.display());

    // What the fixed verifiers make of each request seed (in this process: the first replay).
    let mut names: Vec<_> = fs::read_dir(root.join("verify"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let bytes = fs::read(&path).unwrap();
        let (fixture, request) = tower_pop_fuzz::request(&bytes).unwrap();
        let outcome = match tower_pop_fuzz::block_on(fixture.verifier().verify(&request)) {
            Ok(verified) => format!("verified ({})", verified.binding().as_str()),
            Err(error) => format!("refused: {:?}", error.kind()),
        };
        println!(
            "  {:<28} {outcome}",
            path.file_name().unwrap().to_string_lossy()
        );
    }
}
