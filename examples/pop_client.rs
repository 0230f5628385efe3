//! `pop_client`: one request with tower-pop's client side, for scripts and the interop matrix
//! (`examples/interop/matrix.py`): `DpopMiddleware` signs a fresh proof, retries once on
//! `use_dpop_nonce`, and follows redirects itself; or, with `--bearer`, a certificate-bound
//! token over mutual TLS.
//!
//! ```text
//! cargo run --example pop_client -- --key client-key.pem --token TOKEN URL
//! cargo run --example pop_client -- --bearer --token TOKEN \
//!     --cert client.pem --cert-key client-key.pem --ca ca.pem URL
//! cargo run --example pop_client -- --key client-key.pem --token TOKEN \
//!     --sign --data '{"amount": 100}' URL
//! ```
//!
//! Prints one JSON line: `{"status": 200, "requests": 2, "body": "..."}`, where `requests`
//! counts what went on the wire (a nonce retry counts twice). Exits 1 when the request could not
//! be sent.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use examples_common::http::WireCounter;
use reqwest_middleware::ClientBuilder;
use tower_pop::Algorithm;
use tower_pop::client::DpopMiddleware;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::httpsig::sign::{REQUEST_COMPONENTS, SignatureOptions};

/// One request with tower-pop's client: DPoP (with nonce retry) or mTLS.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The client's private key (PKCS#8 PEM) for DPoP proofs.
    #[arg(long, value_name = "PEM", required_unless_present = "bearer")]
    key: Option<PathBuf>,
    /// The proof algorithm of --key.
    #[arg(long, default_value = "ES256")]
    alg: String,
    /// The access token.
    #[arg(long)]
    token: String,
    /// Send `Authorization: Bearer` without a proof (a certificate-bound token over mTLS).
    #[arg(long)]
    bearer: bool,
    /// The client certificate (PEM) to present.
    #[arg(long, value_name = "PEM", requires = "cert_key")]
    cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, value_name = "PEM", requires = "cert")]
    cert_key: Option<PathBuf>,
    /// A root CA (PEM) to trust for the server's certificate.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Also sign the request (RFC 9421) with the DPoP key, over `@method`, `@target-uri`,
    /// `authorization` and, with --data, `content-digest`.
    #[arg(long, requires = "key")]
    sign: bool,
    /// POST this JSON body instead of a GET.
    #[arg(long, value_name = "JSON")]
    data: Option<String>,
    /// The URL to GET (or POST, with --data).
    url: String,
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

fn read(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    // The middleware follows redirects itself: reqwest must not.
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some(ca) = &args.ca {
        let ca = reqwest::Certificate::from_pem(&read(ca))
            .unwrap_or_else(|e| fail(&format!("--ca: {e}")));
        builder = builder.add_root_certificate(ca);
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.cert_key) {
        let mut pem = read(cert);
        pem.extend_from_slice(&read(key));
        let identity =
            reqwest::Identity::from_pem(&pem).unwrap_or_else(|e| fail(&format!("--cert: {e}")));
        builder = builder.identity(identity);
    }
    let http = builder.build().unwrap_or_else(|e| fail(&e.to_string()));
    let calls = WireCounter::default();
    let mut client = ClientBuilder::new(http);
    let scheme = if args.bearer {
        "Bearer"
    } else {
        let alg: Algorithm = args
            .alg
            .parse()
            .unwrap_or_else(|_| fail("--alg: unknown algorithm"));
        let key = args
            .key
            .as_ref()
            .unwrap_or_else(|| fail("--key is required without --bearer"));
        let signer = ProofSigner::from_pkcs8_pem(alg, &read(key))
            .unwrap_or_else(|e| fail(&format!("--key: {e}")));
        let dpop = DpopMiddleware::new(signer);
        let dpop = if args.sign {
            dpop.sign_requests(SignatureOptions::new(&REQUEST_COMPONENTS))
        } else {
            dpop
        };
        client = client.with(dpop);
        "DPoP"
    };
    let client = client.with(calls.clone()).build();
    let request = match &args.data {
        Some(json) => client
            .post(&args.url)
            .header("content-type", "application/json")
            .body(json.clone()),
        None => client.get(&args.url),
    };
    let response = request
        .header("authorization", format!("{scheme} {}", args.token))
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("request failed: {e}")));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let answer = serde_json::json!({
        "status": status,
        "requests": calls.count(),
        "body": body,
    });
    println!("{answer}");
}
