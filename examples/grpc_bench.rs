//! gRPC load on loopback, in one run (issue #25): `grpc_resource_server` against a bare tonic
//! server (`floor`) that only checks each call's proof's ES256 signature with aws-lc-rs. Every
//! call carries a fresh, pre-minted proof (one token per 100 calls), so every `OK` is a real
//! verification. A tonic client on one thread, `--concurrency` calls in flight over four HTTP/2
//! connections, `--seconds` per server; rounds alternate the order.
//!
//! ```text
//! cargo build --release --examples
//! cargo run --release --example grpc_bench -- --seconds 5 --rounds 6
//! ```
//!
//! Reports calls/s, server CPU per call (`/proc/PID/stat`) and calls that were not `OK` (there
//! should be none), then the median ratios over rounds. Loopback only; bounded by `--seconds`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use examples_common::bench::{Server, verify_es256_proof};
use examples_common::pb::who_am_i_client::WhoAmIClient;
use examples_common::pb::who_am_i_server::{WhoAmI, WhoAmIServer};
use examples_common::pb::{GetRequest, Identity};
use tonic::transport::Channel;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::test_util::TestIssuer;

const ISSUER: &str = "https://as.bench.test";
const PUBLIC: &str = "https://api.bench.test";
const GET: &str = "/pop.example.v1.WhoAmI/Get";

#[derive(Debug, Parser)]
struct Args {
    /// Seconds of load per server.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    seconds: u64,
    /// Rounds (each: floor and example server, the order alternating).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
    /// Calls in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Calls minted per second of load (more than a server answers).
    #[arg(long, default_value_t = 25_000)]
    per_second: usize,
    /// Run as the floor server on this address (used by the bench itself).
    #[arg(long, hide = true)]
    floor: Option<SocketAddr>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The floor's service: answers every call that reached it.
struct Floor;

#[tonic::async_trait]
impl WhoAmI for Floor {
    async fn get(
        &self,
        _request: tonic::Request<GetRequest>,
    ) -> Result<tonic::Response<Identity>, tonic::Status> {
        Ok(tonic::Response::new(Identity {
            sub: String::new(),
            binding: "dpop".to_owned(),
        }))
    }

    type WatchStream = tokio_stream::Empty<Result<Identity, tonic::Status>>;

    async fn watch(
        &self,
        _request: tonic::Request<GetRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Ok(tonic::Response::new(tokio_stream::empty()))
    }
}

/// The floor server: tonic, and an interceptor that checks the proof's signature only.
fn floor_server(addr: SocketAddr) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        println!(
            "listening on http://{}",
            listener.local_addr().expect("addr")
        );
        let check = |request: tonic::Request<()>| {
            let ok = request
                .metadata()
                .get("dpop")
                .and_then(|v| v.to_str().ok())
                .is_some_and(verify_es256_proof);
            if ok {
                Ok(request)
            } else {
                Err(tonic::Status::unauthenticated("bad proof"))
            }
        };
        let service = WhoAmIServer::with_interceptor(Floor, check);
        let app = tonic::service::Routes::new(service).into_axum_router();
        examples_common::serve_axum(listener, None, app)
            .await
            .expect("serve");
    });
}

/// `count` (token, proof) pairs for calls to `Get`.
fn mint(issuer: &TestIssuer, count: usize) -> Vec<(String, String)> {
    let url = format!("{PUBLIC}{GET}");
    let now = now();
    let mut out = Vec::with_capacity(count);
    let mut current: Option<(ProofSigner, String)> = None;
    for i in 0..count {
        if i % 100 == 0 {
            let key = ProofSigner::generate(Algorithm::ES256).expect("key");
            let token = issuer.dpop_token(now, key.thumbprint());
            current = Some((key, token));
        }
        if let Some((key, token)) = &current {
            let proof = key
                .proof_at("POST", &url, Some(token), None, now)
                .expect("proof");
            out.push((token.clone(), proof));
        }
    }
    out
}

/// Load `server` for `seconds`: calls/s, CPU µs per call, calls not OK.
fn load(server: &Server, pairs: Arc<Vec<(String, String)>>, args: &Args) -> (f64, f64, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut channels = Vec::new();
        for _ in 0..4 {
            let channel = Channel::from_shared(format!("http://{}", server.addr))
                .expect("url")
                .connect()
                .await
                .expect("connect");
            channels.push(channel);
        }
        let next = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let cpu_before = server.cpu_seconds();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..args.concurrency {
            let mut client = WhoAmIClient::new(channels[i % channels.len()].clone());
            let (pairs, next, failed) =
                (Arc::clone(&pairs), Arc::clone(&next), Arc::clone(&failed));
            tasks.spawn(async move {
                let mut done = 0usize;
                while Instant::now() < deadline {
                    let Some((token, proof)) = pairs.get(next.fetch_add(1, Ordering::Relaxed))
                    else {
                        break;
                    };
                    let mut request = tonic::Request::new(GetRequest {});
                    let metadata = request.metadata_mut();
                    metadata.insert(
                        "authorization",
                        format!("DPoP {token}").parse().expect("ascii"),
                    );
                    metadata.insert("dpop", proof.parse().expect("ascii"));
                    match tokio::time::timeout(Duration::from_secs(5), client.get(request)).await {
                        Ok(Ok(_)) => done += 1,
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                done
            });
        }
        let mut ok = 0;
        while let Some(done) = tasks.join_next().await {
            ok += done.unwrap_or(0);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = server.cpu_seconds() - cpu_before;
        #[allow(clippy::cast_precision_loss)]
        let ok_f = ok.max(1) as f64;
        (
            ok_f / elapsed,
            cpu / ok_f * 1e6,
            failed.load(Ordering::Relaxed),
        )
    })
}

fn main() {
    let args = Args::parse();
    if let Some(addr) = args.floor {
        floor_server(addr);
        return;
    }
    let dir: PathBuf = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .expect("the bench's directory");
    let issuer = TestIssuer::new(ISSUER, PUBLIC);
    let jwks = std::env::temp_dir().join(format!("grpc-bench-jwks-{}.json", std::process::id()));
    std::fs::write(&jwks, issuer.jwks_json()).expect("jwks file");
    let example = |name: &str| {
        vec![
            name.to_owned(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--issuer".into(),
            ISSUER.into(),
            "--audience".into(),
            PUBLIC.into(),
            "--jwks-file".into(),
            jwks.to_string_lossy().into_owned(),
            "--public-url".into(),
            PUBLIC.into(),
        ]
    };
    let floor = vec![
        "grpc_bench".to_owned(),
        "--floor".into(),
        "127.0.0.1:0".into(),
    ];
    let count = args.per_second * usize::try_from(args.seconds).unwrap_or(1);
    let mut ratios = Vec::new();
    for round in 0..args.rounds {
        let mut rows = Vec::new();
        let order = if round % 2 == 0 {
            [
                ("floor", floor.clone()),
                ("grpc_resource_server", example("grpc_resource_server")),
            ]
        } else {
            [
                ("grpc_resource_server", example("grpc_resource_server")),
                ("floor", floor.clone()),
            ]
        };
        for (name, command) in order {
            let pairs = Arc::new(mint(&issuer, count));
            let mut server = Server::start(&dir, &command).expect("server");
            let (rate, cpu, failed) = load(&server, pairs, &args);
            server.stop();
            println!(
                "round {round}: {name:22} {rate:9.0} calls/s  {cpu:6.1} us CPU/call  {failed} not OK"
            );
            rows.push((name, rate, cpu));
        }
        let get = |n: &str| {
            rows.iter()
                .find(|r| r.0 == n)
                .map(|r| (r.1, r.2))
                .unwrap_or((1.0, 1.0))
        };
        let (floor_rate, floor_cpu) = get("floor");
        let (rate, cpu) = get("grpc_resource_server");
        ratios.push((rate / floor_rate, cpu / floor_cpu));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "medians over {} rounds: grpc_resource_server {:.2}x the floor's calls/s, {:.2}x its CPU per call",
        args.rounds,
        median(ratios.iter().map(|r| r.0).collect()),
        median(ratios.iter().map(|r| r.1).collect()),
    );
    let _ = std::fs::remove_file(jwks);
}
