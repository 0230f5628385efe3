//! Shared pieces of the example servers: the command line both servers accept and the JSON
//! `/whoami` answers. Kept here so the axum and actix servers cannot drift apart.

pub mod http;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Value, json};
use tower_pop::{PopConfig, Verified};

/// The command line of the example servers (see shared EXAMPLE-SERVERS.md).
#[derive(Debug, Clone)]
pub struct Args {
    /// `--listen ADDR` (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// `--issuer URL`.
    pub issuer: String,
    /// `--audience AUD`.
    pub audience: String,
    /// `--jwks-file PATH`.
    pub jwks_file: PathBuf,
    /// `--public-url URL`; default `http://` + the bound address.
    pub public_url: Option<String>,
    /// `--allow-bearer`.
    pub allow_bearer: bool,
}

/// The usage text.
pub const USAGE: &str = "\
usage: <server> --issuer URL --audience AUD --jwks-file PATH [options]

  --listen ADDR       address to serve on (default 127.0.0.1:8080)
  --issuer URL        the only trusted issuer; a token's iss must equal it exactly
  --audience AUD      the aud a token must contain
  --jwks-file PATH    the issuer's JWK Set
  --public-url URL    the origin used for the expected htu (default http:// + listen address)
  --allow-bearer      also accept unbound Bearer tokens (cnf-bound tokens stay protected)
";

impl Args {
    /// Parse `args` (without the program name).
    ///
    /// # Errors
    /// A message naming the bad or missing flag.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut listen = "127.0.0.1:8080".to_owned();
        let (mut issuer, mut audience, mut jwks_file, mut public_url) = (None, None, None, None);
        let mut allow_bearer = false;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--listen" => listen = value()?,
                "--issuer" => issuer = Some(value()?),
                "--audience" => audience = Some(value()?),
                "--jwks-file" => jwks_file = Some(PathBuf::from(value()?)),
                "--public-url" => public_url = Some(value()?),
                "--allow-bearer" => allow_bearer = true,
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(Self {
            listen: listen
                .parse()
                .map_err(|_| format!("--listen: not an address: {listen}"))?,
            issuer: issuer.ok_or("--issuer is required")?,
            audience: audience.ok_or("--audience is required")?,
            jwks_file: jwks_file.ok_or(
                "--jwks-file is required (key discovery from --issuer is not available yet)",
            )?,
            public_url,
            allow_bearer,
        })
    }

    /// Parse the process arguments, or print usage and exit 2.
    #[must_use]
    pub fn from_env() -> Self {
        Self::parse(std::env::args().skip(1)).unwrap_or_else(|message| {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprint!("{USAGE}");
            std::process::exit(2)
        })
    }

    /// The verifier configuration, for a server bound to `bound` (which fills in the default
    /// public URL).
    ///
    /// # Errors
    /// A message when the configuration cannot work.
    pub fn config(&self, bound: SocketAddr) -> Result<PopConfig, String> {
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"));
        let mut builder = PopConfig::builder()
            .public_origin(&public_url)
            .issuer(&self.issuer)
            .audience(&self.audience)
            .jwks_file(&self.jwks_file);
        if public_url.starts_with("http://") {
            tracing::warn!("public URL {public_url} is plain http: for local development only");
            builder = builder.insecure_allow_http();
        }
        if self.allow_bearer {
            builder = builder.allow_bearer();
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// The `/whoami` body: the verified claims, their `sub`, and the binding proven.
#[must_use]
pub fn whoami(verified: &Verified) -> Value {
    let mut body = json!({
        "sub": verified.subject(),
        "binding": verified.binding().as_str(),
        "claims": verified.claims(),
    });
    if let Some(jkt) = verified.jkt() {
        body["jkt"] = json!(jkt);
    }
    if let Some(x5t) = verified.certificate_thumbprint() {
        body["x5t#S256"] = json!(x5t);
    }
    body
}

/// Log to stderr; `RUST_LOG` overrides the default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_flags_and_defaults() {
        let a = parse(&[
            "--issuer",
            "https://as",
            "--audience",
            "api",
            "--jwks-file",
            "k.json",
        ])
        .unwrap();
        assert_eq!(a.listen.to_string(), "127.0.0.1:8080");
        assert!(!a.allow_bearer && a.public_url.is_none());
        let a = parse(&[
            "--issuer",
            "i",
            "--audience",
            "a",
            "--jwks-file",
            "k",
            "--allow-bearer",
            "--listen",
            "[::1]:0",
            "--public-url",
            "https://x",
        ])
        .unwrap();
        assert!(a.allow_bearer);
        assert_eq!(a.public_url.as_deref(), Some("https://x"));
    }

    #[test]
    fn refuses_unknown_and_missing_flags() {
        assert!(
            parse(&["--issuer", "i", "--audience", "a"])
                .unwrap_err()
                .contains("--jwks-file")
        );
        assert!(parse(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(parse(&["--issuer"]).unwrap_err().contains("needs a value"));
        assert!(
            parse(&[
                "--listen",
                "nope",
                "--issuer",
                "i",
                "--audience",
                "a",
                "--jwks-file",
                "k"
            ])
            .is_err()
        );
    }
}
