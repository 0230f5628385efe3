//! What the load benches share (`e2e_bench`, `grpc_bench`): a server process to load, and the
//! floor servers' check: a proof's ES256 signature by its own `jwk`, nothing else.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Whether `proof` (a compact JWS) carries a valid ES256 signature by the P-256 `jwk` in its
/// own header: the whole check of the floor servers.
#[must_use]
pub fn verify_es256_proof(proof: &str) -> bool {
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some(header) = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return false;
    };
    let coordinate = |name: &str| {
        header["jwk"][name]
            .as_str()
            .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
    };
    let (Some(x), Some(y), Ok(sig)) = (coordinate("x"), coordinate("y"), URL_SAFE_NO_PAD.decode(s))
    else {
        return false;
    };
    let mut point = vec![4u8];
    point.extend(x);
    point.extend(y);
    let input = &proof[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(input.as_bytes(), &sig)
        .is_ok()
}

/// A server process under load.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Start `command` (its first word a binary in `dir`) and read `listening on http://ADDR`.
    ///
    /// # Errors
    /// When it cannot start or says something else first.
    pub fn start(dir: &Path, command: &[String]) -> Result<Self, String> {
        use std::io::BufRead as _;
        let mut child = Command::new(dir.join(&command[0]))
            .args(&command[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e} (cargo build --release --examples)",
                    command[0]
                )
            })?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line: {line}"))?;
        Ok(Self { child, addr })
    }

    /// User + system CPU seconds the server process has used.
    #[must_use]
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.child.id())
    }

    /// Kill it and wait for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU seconds process `pid` has used (Linux `/proc`; 0 when it cannot be read).
#[must_use]
pub fn cpu_seconds_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
