//! Fixtures shared by the fuzz targets and the seed generator (`examples/seeds.rs`): fixed
//! verifiers with a static JWK Set and a manual clock, the text format the `verify` and
//! `credentials` targets read a request from, and a minimal executor.
//!
//! Nothing here is a secret: the issuer key in the seed generator and the nonce secret below
//! exist only so that the committed seeds stay valid against these fixed verifiers.

#![forbid(unsafe_code)]

use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use tower_pop::clock::ManualClock;
use tower_pop::mtls::proxy::{ClientCertHeader, ForwardedCertConfig, TrustedProxies};
use tower_pop::nonce::{NonceSecret, Nonces};
use tower_pop::{PopConfig, PopRequest, Verifier};

/// The fixed time of every fixture, seconds since the Unix epoch.
pub const NOW: u64 = 1_700_000_000;
/// The resource's public origin (what `htu` is compared with).
pub const ORIGIN: &str = "https://resource.example.org";
/// The protected resource's path.
pub const PATH: &str = "/protectedresource";
/// The one trusted issuer.
pub const ISSUER: &str = "https://server.example.com";
/// The audience tokens must carry.
pub const AUDIENCE: &str = "https://resource.example.org";
/// The `kid` of the issuer key.
pub const ISSUER_KID: &str = "fuzz-1";
/// The issuer's JWK Set: the public half of the P-256 key in `examples/seeds.rs`.
pub const ISSUER_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"fuzz-1","use":"sig","alg":"ES256","x":"oylLkuDX6YgKiRFeBvznc-M55mhgMooHPSE_ZYUASWc","y":"MpjNjVWaAnyu4FETUmig5rfe3O4ONwUl12rjSTVr37M"}]}"#;
/// The nonce secret of the `nonce` fixture (fuzzing only).
pub const NONCE_SECRET: &[u8] = b"tower-pop fuzzing nonce secret, not a real one";
/// The proxy network whose forwarded certificate headers are trusted.
pub const PROXY_NETWORK: &str = "127.0.0.0/8";
/// A peer inside [`PROXY_NETWORK`].
pub const PROXY_PEER: &str = "127.0.0.2";

/// The nonces of the `nonce` fixture.
///
/// # Panics
/// Never: the secret is long enough.
#[must_use]
pub fn nonces() -> Nonces {
    Nonces::new(NonceSecret::new(NONCE_SECRET).expect("long enough"))
}

/// A verifier configuration, chosen by the first word of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    /// DPoP or certificate binding required; `Client-Cert` (RFC 9440) from the proxy.
    Dpop,
    /// As `Dpop`, with server nonces required; Envoy's `x-forwarded-client-cert`.
    Nonce,
    /// Unbound bearer tokens allowed; nginx's `ssl-client-cert`.
    Bearer,
}

impl Fixture {
    /// Every fixture.
    pub const ALL: [Self; 3] = [Self::Dpop, Self::Nonce, Self::Bearer];

    /// The word naming it in a request's first line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Dpop => "dpop",
            Self::Nonce => "nonce",
            Self::Bearer => "bearer",
        }
    }

    /// The header this fixture's proxy forwards certificates in.
    #[must_use]
    pub fn header(self) -> ClientCertHeader {
        match self {
            Self::Dpop => ClientCertHeader::Rfc9440,
            Self::Nonce => ClientCertHeader::Xfcc,
            Self::Bearer => ClientCertHeader::Nginx,
        }
    }

    /// The verifier, built once per process.
    ///
    /// # Panics
    /// If the fixed configuration does not build (a bug in this file).
    #[must_use]
    pub fn verifier(self) -> &'static Verifier {
        static VERIFIERS: [OnceLock<Verifier>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        VERIFIERS[self as usize].get_or_init(|| {
            let proxies = TrustedProxies::new([PROXY_NETWORK]).expect("valid network");
            let mut builder = PopConfig::builder()
                .public_origin(ORIGIN)
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .jwks_json(ISSUER_JWKS)
                .forwarded_certificates(ForwardedCertConfig::new(proxies, self.header()))
                .clock(Arc::new(ManualClock::new(NOW)));
            builder = match self {
                Self::Dpop => builder,
                Self::Nonce => builder.require_nonce(nonces()),
                Self::Bearer => builder.allow_bearer(),
            };
            Verifier::new(builder.build().expect("valid fixture configuration"))
        })
    }
}

/// A request read from fuzz input, in this text format:
///
/// ```text
/// <fixture> <METHOD> <path>
/// <header name>: <value>
/// peer: <IP address>
/// ```
///
/// Lines are separated by `\n`; the fixture is `dpop`, `nonce` or `bearer` (anything else is
/// `dpop`); one optional space after the colon is dropped; `peer` sets the connection's IP
/// address; every other line goes to [`PopRequest::header`], which keeps the fields the verifier
/// reads (`authorization`, `dpop`, `client-cert`, `x-forwarded-client-cert`, `ssl-client-cert`,
/// any case) and ignores the rest. `None` when the first line is not UTF-8.
#[must_use]
pub fn request(input: &[u8]) -> Option<(Fixture, PopRequest<'_>)> {
    let mut lines = input.split(|b| *b == b'\n');
    let first = std::str::from_utf8(lines.next()?).ok()?;
    let mut words = first.splitn(3, ' ');
    let fixture = match words.next().unwrap_or_default() {
        "nonce" => Fixture::Nonce,
        "bearer" => Fixture::Bearer,
        _ => Fixture::Dpop,
    };
    let method = words.next().unwrap_or_default();
    let path = words.next().unwrap_or_default();
    let mut request = PopRequest::new(method, path);
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name == "peer" {
            if let Some(ip) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<IpAddr>().ok())
            {
                request = request.peer_ip(ip);
            }
        } else {
            request = request.header(name, value);
        }
    }
    Some((fixture, request))
}

/// Every value of the header lines named `name` (any case) in input of the [`request`] format,
/// in order, with the same one optional space dropped.
#[must_use]
pub fn header_values<'a>(input: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    input
        .split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            let value = &line[colon + 1..];
            line[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| value.strip_prefix(b" ").unwrap_or(value))
        })
        .collect()
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Run a future to completion on this thread (the verifier never waits on I/O with a static
/// key set and the in-memory replay store, so this is all the executor it needs).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}
