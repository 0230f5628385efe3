//! Running the interop scripts (`examples/interop/*.py`) with `tests/run.sh`'s venv: a client key
//! they can sign with, and one JSON answer per run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;

/// The Python interpreter of `tests/run.sh`'s venv.
pub(crate) fn interpreter() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop-venv/bin/python")
}

/// `examples/interop/<name>`.
pub(crate) fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join(name)
}

/// A fresh ES256 client key, and the same key as a PKCS#8 PEM file for a script.
pub(crate) fn client_key(file: &str) -> (ProofSigner, PathBuf) {
    let der = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let key = ProofSigner::from_pkcs8(Algorithm::ES256, der.as_ref()).unwrap();
    let pem = crate::scratch::file(file);
    let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref());
    std::fs::write(
        &pem,
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    (key, pem)
}

/// Run `script` with `args` (60 s at most) and read the one JSON object it prints.
pub(crate) async fn run(script_name: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(interpreter())
            .arg(script(script_name))
            .args(args)
            .output(),
    )
    .await
    .expect("the Python client finishes within 60 s")
    .expect("python runs");
    assert!(
        output.status.success(),
        "{script_name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
