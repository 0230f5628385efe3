//! End-to-end load on loopback, in one run: both example servers (in-memory replay store,
//! Redis replay store, nonces required) next to bare floor servers of the same frameworks
//! (`floor`: axum, `floor-actix`: actix-web) that only check each proof's ES256 signature with
//! aws-lc-rs; each server is compared with the floor of its framework. Every request carries a
//! unique, pre-minted (token, proof) pair, so every 200 is a real verification.
//!
//! ```text
//! cargo build --release --examples
//! cargo run --release --example e2e_bench -- --seconds 10 --connections 32
//! ```
//!
//! The `upstream`, `gateway` and `gateway+nonce` rows put `pop_gateway` in front of a trivial
//! axum upstream (answers `ok`, checks nothing) and measure the upstream alone with the same
//! requests: `--only upstream,gateway,axum` compares the gateway with that upstream and with
//! the axum example server in one run. `gateway+h2` speaks HTTP/2 (h2c) to the upstream
//! (`--upstream-http2`).
//!
//! The `axum+cluster` and `axum+cluster+wait` rows put the replay store on a seven-node Redis
//! Cluster started here (without and with `--redis-wait-replicas 1`); `axum+redis+replica` on
//! one Redis with one replica, which replicates each write as the cluster's primaries do. Rows
//! on Redis also report the CPU of its processes per request (`Redis us/req`).
//!
//! Needs `wrk` and, for the Redis rows, `redis-server` on PATH (Debian: `apt-get install wrk
//! redis-server`). Reports requests/s, p50/p99 latency, server CPU per request (from
//! `/proc/PID/stat`) and the answers that were not 200 (there should be none). Loopback only;
//! each run is bounded by `--seconds`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use clap::Parser;
use tower_pop::Algorithm;
use tower_pop::dpop::signer::ProofSigner;
use tower_pop::nonce::{NonceSecret, Nonces};
use tower_pop::test_util::TestIssuer;
use tower_pop_test_support::{RedisCluster, RedisServer};

const ISSUER: &str = "https://as.bench.test";
const PUBLIC: &str = "https://api.bench.test";
const SECRET: &[u8] = b"e2e bench nonce secret, at least 32 bytes long";
/// How long after minting a file of proofs the next row may still start with it: the servers
/// accept a proof for 60 s after its `iat`, and a row must end well inside that.
const SHARE_FOR: Duration = Duration::from_secs(45);

#[derive(Debug, Parser)]
struct Args {
    /// Seconds of load per server.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    seconds: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Requests minted per second of load (unique proofs; more than the servers can answer).
    #[arg(long, default_value_t = 25_000)]
    per_second: usize,
    /// Run as the floor server on this address (used by the bench itself).
    #[arg(long, hide = true)]
    floor: Option<SocketAddr>,
    /// Run as the actix floor server on this address (used by the bench itself).
    #[arg(long, hide = true)]
    floor_actix: Option<SocketAddr>,
    /// Run as the trivial upstream behind `pop_gateway` on this address (used by the bench).
    #[arg(long, hide = true)]
    trivial: Option<SocketAddr>,
    /// Only these rows (comma-separated names), e.g. `floor,floor-actix,axum,actix`.
    #[arg(long)]
    only: Option<String>,
    /// Run every row this many times, in turn; each round's ratios are against that round's
    /// floor, and the medians over rounds are printed last (the machine drifts between rows).
    /// Even rounds run the rows in reverse order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
}

use examples_common::bench::{Server, cpu_seconds_of, verify_es256_proof};

fn main() {
    let args = Args::parse();
    if let Some(addr) = args.floor {
        floor_server(addr);
        return;
    }
    if let Some(addr) = args.floor_actix {
        floor_actix_server(addr);
        return;
    }
    if let Some(addr) = args.trivial {
        trivial_server(addr);
        return;
    }
    if let Err(e) = run(&args) {
        eprintln!("e2e_bench: {e}");
        std::process::exit(1);
    }
}

/// The floor: the same framework (axum), a handler that parses the proof's header for its
/// `jwk` and checks the ES256 signature, nothing else.
fn floor_server(addr: SocketAddr) {
    async fn check(headers: HeaderMap) -> StatusCode {
        let ok = headers
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .is_some_and(verify_es256_proof);
        if ok {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        }
    }
    serve_router(addr, Router::new().route("/whoami", any(check)));
}

/// The actix floor (`floor-actix`, the floor of the actix rows): actix-web with the example
/// server's workers (one per core), the same handler as [`floor_server`].
fn floor_actix_server(addr: SocketAddr) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    async fn check(request: HttpRequest) -> HttpResponse {
        let ok = request
            .headers()
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .is_some_and(verify_es256_proof);
        if ok {
            HttpResponse::Ok().finish()
        } else {
            HttpResponse::Unauthorized().finish()
        }
    }
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| App::new().route("/whoami", web::to(check)))
            .workers(examples_common::workers())
            .bind(addr)
            .expect("bind");
        println!("listening on http://{}", server.addrs()[0]);
        server.run().await.expect("serve");
    });
}

/// The floor a row is compared with: `floor-actix` for the actix rows when it ran, else `floor`.
fn floor_of<'r>(rows: &'r [Row], name: &str) -> Option<&'r Row> {
    let find = |floor: &str| rows.iter().find(|r| r.name == floor);
    if name.starts_with("actix") || name == "floor-actix" {
        find("floor-actix").or_else(|| find("floor"))
    } else {
        find("floor")
    }
}

/// The upstream of the gateway rows: axum answering `ok` to anything, checking nothing.
fn trivial_server(addr: SocketAddr) {
    serve_router(addr, Router::new().fallback(|| async { "ok" }));
}

/// Serve `app` on `addr` with a multi-threaded runtime, saying where as the example servers do.
fn serve_router(addr: SocketAddr, app: Router) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        println!(
            "listening on http://{}",
            listener.local_addr().expect("addr")
        );
        axum::serve(listener, app).await.expect("serve");
    });
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The directory holding this binary and its sibling examples.
fn examples_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "no examples directory".to_owned())
}

struct Row {
    name: &'static str,
    rps: f64,
    p50: String,
    p99: String,
    cpu_us: f64,
    /// CPU of the Redis processes behind the server, per request (0 without Redis).
    redis_cpu_us: f64,
    not_200: u64,
}

fn run(args: &Args) -> Result<(), String> {
    let wanted = |name: &str| {
        args.only
            .as_deref()
            .is_none_or(|only| only.split(',').any(|n| n == name))
    };
    let dir = examples_dir()?;
    let work = std::env::temp_dir().join(format!("tower-pop-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let issuer = TestIssuer::new(ISSUER, PUBLIC);
    let jwks = work.join("jwks.json");
    std::fs::write(&jwks, issuer.jwks_json()).map_err(|e| e.to_string())?;
    let secret_file = work.join("nonce.key");
    std::fs::write(&secret_file, SECRET).map_err(|e| e.to_string())?;
    let redis = wanted("axum+redis") || wanted("actix+redis");
    let redis = redis.then(RedisServer::start);
    let redis_url = redis.as_ref().map(RedisServer::url).unwrap_or_default();
    // One Redis with a replica: the replication a cluster's primaries also pay, without the
    // cluster, so the cluster row can be set against the same work.
    let replicated = wanted("axum+redis+replica").then(|| {
        let primary = RedisServer::start();
        let port = primary.port().to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
        (primary, replica)
    });
    let replicated_url = replicated
        .as_ref()
        .map(|(primary, _)| primary.url())
        .unwrap_or_default();
    // The cluster rows: seven nodes (three primaries with a replica each, and a spare).
    let cluster = (wanted("axum+cluster") || wanted("axum+cluster+wait")).then(RedisCluster::start);
    let cluster_flags: Vec<String> = cluster.as_ref().map_or_else(Vec::new, |c| {
        c.seeds()[..3]
            .iter()
            .flat_map(|seed| ["--redis-cluster".to_owned(), seed.clone()])
            .collect()
    });
    let cluster_flags: Vec<&str> = cluster_flags.iter().map(String::as_str).collect();
    let cluster_wait_flags: Vec<&str> = cluster_flags
        .iter()
        .copied()
        .chain(["--redis-wait-replicas", "1", "--redis-wait-timeout", "100"])
        .collect();
    let jwks = jwks.to_string_lossy().into_owned();
    let secret_path = secret_file.to_string_lossy().into_owned();
    let base = |binary: &str| -> Vec<String> {
        let mut v: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            ISSUER,
            "--audience",
            PUBLIC,
            "--jwks-file",
            &jwks,
            "--public-url",
            PUBLIC,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.insert(0, binary.to_owned());
        v
    };
    let with = |binary: &str, extra: &[&str]| {
        let mut v = base(binary);
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    // The gateway rows share one trivial upstream; `upstream` measures it alone.
    let trivial_command = vec!["e2e_bench".into(), "--trivial".into(), "127.0.0.1:0".into()];
    let trivial = if wanted("upstream")
        || wanted("gateway")
        || wanted("gateway+h2")
        || wanted("gateway+nonce")
    {
        Some(Server::start(&dir, &trivial_command)?)
    } else {
        None
    };
    let upstream = trivial
        .as_ref()
        .map(|t| format!("http://{}", t.addr))
        .unwrap_or_default();
    let rows: Vec<(&'static str, Vec<String>, bool)> = vec![
        (
            "floor",
            vec!["e2e_bench".into(), "--floor".into(), "127.0.0.1:0".into()],
            false,
        ),
        (
            "floor-actix",
            vec![
                "e2e_bench".into(),
                "--floor-actix".into(),
                "127.0.0.1:0".into(),
            ],
            false,
        ),
        ("upstream", Vec::new(), false),
        (
            "gateway",
            with("pop_gateway", &["--upstream", &upstream]),
            false,
        ),
        (
            "gateway+h2",
            with(
                "pop_gateway",
                &["--upstream", &upstream, "--upstream-http2"],
            ),
            false,
        ),
        (
            "gateway+nonce",
            with(
                "pop_gateway",
                &[
                    "--upstream",
                    &upstream,
                    "--require-nonce",
                    "--nonce-secret-file",
                    &secret_path,
                ],
            ),
            true,
        ),
        ("axum", base("axum_resource_server"), false),
        ("actix", base("actix_resource_server"), false),
        (
            "axum+redis",
            with("axum_resource_server", &["--redis", &redis_url]),
            false,
        ),
        (
            "actix+redis",
            with("actix_resource_server", &["--redis", &redis_url]),
            false,
        ),
        (
            "axum+redis+replica",
            with("axum_resource_server", &["--redis", &replicated_url]),
            false,
        ),
        (
            "axum+cluster",
            with("axum_resource_server", &cluster_flags),
            false,
        ),
        (
            "axum+cluster+wait",
            with("axum_resource_server", &cluster_wait_flags),
            false,
        ),
        (
            "axum+nonce",
            with(
                "axum_resource_server",
                &["--require-nonce", "--nonce-secret-file", &secret_path],
            ),
            true,
        ),
        (
            "actix+nonce",
            with(
                "actix_resource_server",
                &["--require-nonce", "--nonce-secret-file", &secret_path],
            ),
            true,
        ),
    ];
    let nonces = Nonces::new(NonceSecret::new(SECRET.to_vec()).map_err(|e| e.to_string())?);
    // One row's load, with its start-up and warm-up.
    let load_time = Duration::from_secs(args.seconds + 2);
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        let mut results = Vec::new();
        let mut shared: HashMap<bool, (PathBuf, Instant)> = HashMap::new();
        // Every other round runs the rows in reverse, so a drift that slows the machine over a
        // round favours no row over the rounds (each row sits as near its floor both ways).
        let order: Vec<_> = if round.is_multiple_of(2) {
            rows.iter().rev().collect()
        } else {
            rows.iter().collect()
        };
        for (name, command, with_nonce) in order {
            let (name, with_nonce) = (*name, *with_nonce);
            if !wanted(name) {
                continue;
            }
            // Servers with a replay store of their own share one minted file (each still sees
            // every proof once), so rows follow each other within a second instead of after a
            // mint each; the rows on the one Redis mint their own. A file is shared while its
            // proofs stay well inside the servers' 60 s `iat` window.
            let own = name.contains("+redis") || name.contains("+cluster");
            let pairs = match shared.get(&with_nonce) {
                Some((path, minted)) if !own && minted.elapsed() + load_time < SHARE_FOR => {
                    path.clone()
                }
                _ => {
                    let path = work.join(format!("{name}.pairs"));
                    let minted = Instant::now();
                    mint(&issuer, &path, args, with_nonce.then_some(&nonces))?;
                    if !own
                        && let Some((old, _)) = shared.insert(with_nonce, (path.clone(), minted))
                    {
                        let _ = std::fs::remove_file(old);
                    }
                    path
                }
            };
            // The Redis processes this row's server talks to, whose CPU the row reports.
            let redis_pids: Vec<u32> = if name.contains("+cluster") {
                cluster.as_ref().map(RedisCluster::pids).unwrap_or_default()
            } else if name.contains("+replica") {
                replicated
                    .iter()
                    .flat_map(|(p, r)| [p.pid(), r.pid()])
                    .flatten()
                    .collect()
            } else if name.contains("+redis") {
                redis.iter().filter_map(RedisServer::pid).collect()
            } else {
                Vec::new()
            };
            let row = match (command.is_empty(), &trivial) {
                // The trivial upstream alone, with the same requests (it reads none of the fields).
                (true, Some(trivial)) => load(name, trivial, &pairs, &work, args, &[])?,
                (true, None) => continue,
                (false, _) => {
                    let mut server = Server::start(&dir, command)?;
                    let row = load(name, &server, &pairs, &work, args, &redis_pids)?;
                    server.stop();
                    row
                }
            };
            if own {
                let _ = std::fs::remove_file(&pairs);
            }
            results.push(row);
        }
        for (path, _) in shared.into_values() {
            let _ = std::fs::remove_file(path);
        }
        if args.rounds > 1 {
            println!("round {round} of {}", args.rounds);
            print_rows(&results);
        }
        rounds.push(results);
    }
    if let Some(mut trivial) = trivial {
        trivial.stop();
    }
    drop(redis);
    drop(replicated);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&work);
    match rounds.as_slice() {
        [one] => print_table(one),
        many => print_medians(many),
    }
    Ok(())
}

/// Per row, the median over rounds of its ratios to the floor of the same round.
fn print_medians(rounds: &[Vec<Row>]) {
    // The middle value, or the mean of the two middle ones for an even count.
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let upper = v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
        if v.len().is_multiple_of(2) && !v.is_empty() {
            v.get(v.len() / 2 - 1)
                .map_or(f64::NAN, |lower| (lower + upper) / 2.0)
        } else {
            upper
        }
    };
    println!(
        "medians over {} rounds, each round against its own floor (actix rows: floor-actix)",
        rounds.len()
    );
    println!(
        "{:<14} {:>10} {:>10} {:>12}",
        "server", "vs floor", "CPU/floor", "non-200"
    );
    for row in rounds.first().into_iter().flatten() {
        let (mut rps, mut cpu, mut not_200) = (Vec::new(), Vec::new(), 0);
        for round in rounds {
            let r = round.iter().find(|r| r.name == row.name);
            if let (Some(r), Some(floor)) = (r, floor_of(round, row.name)) {
                rps.push(r.rps / floor.rps);
                cpu.push(r.cpu_us / floor.cpu_us);
                not_200 += r.not_200;
            }
        }
        println!(
            "{:<14} {:>9.2}x {:>9.2}x {:>12}",
            row.name,
            median(rps),
            median(cpu),
            not_200
        );
    }
}

/// Unique (token, proof) pairs, one per line, enough for the whole run; tokens are shared by
/// 100 proofs each (a reused token is the common case: the token cache is part of the path).
fn mint(
    issuer: &TestIssuer,
    path: &Path,
    args: &Args,
    nonces: Option<&Nonces>,
) -> Result<(), String> {
    let count = args.per_second * usize::try_from(args.seconds).unwrap_or(1);
    let started = Instant::now();
    let url = format!("{PUBLIC}/whoami");
    let mut out = String::with_capacity(count * 900);
    let mut current: Option<(ProofSigner, String)> = None;
    let now = now();
    let nonce = nonces.map(|n| n.issue(now));
    for i in 0..count {
        if i % 100 == 0 || current.is_none() {
            let key = ProofSigner::generate(Algorithm::ES256).map_err(|e| e.to_string())?;
            let token = issuer.dpop_token(now, key.thumbprint());
            current = Some((key, token));
        }
        if let Some((key, token)) = &current {
            let proof = key
                .proof_at("GET", &url, Some(token), nonce.as_deref(), now)
                .expect("signing");
            let _ = writeln!(out, "{token} {proof}");
        }
    }
    std::fs::write(path, out).map_err(|e| e.to_string())?;
    eprintln!(
        "minted {count} proofs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

const LUA: &str = r#"
local pairs_file = os.getenv("PAIRS")
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local n = tonumber(os.getenv("THREADS"))
  items = {}
  local i = 0
  for line in io.lines(pairs_file) do
    if i % n == id then
      local sp = line:find(" ")
      table.insert(items, {line:sub(1, sp - 1), line:sub(sp + 1)})
    end
    i = i + 1
  end
  next_item = 1
end
function request()
  local item = items[next_item]
  if item == nil then
    -- WRAP: a server that reads no proof (the trivial upstream) may see one twice.
    if os.getenv("WRAP") == "1" then
      next_item = 1
    else
      wrk.thread:stop()
    end
    item = items[1]
  end
  next_item = next_item + 1
  return wrk.format("GET", "/whoami", {["Authorization"] = "DPoP " .. item[1], ["DPoP"] = item[2]})
end
"#;

fn load(
    name: &'static str,
    server: &Server,
    pairs: &Path,
    work: &Path,
    args: &Args,
    redis_pids: &[u32],
) -> Result<Row, String> {
    let script = work.join("pairs.lua");
    std::fs::write(&script, LUA).map_err(|e| e.to_string())?;
    let threads = 2;
    // Warm-up: one request each, so lazy connections (Redis) are up.
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = server.cpu_seconds();
    let redis_cpu = || -> f64 { redis_pids.iter().map(|p| cpu_seconds_of(*p)).sum() };
    let redis_before = redis_cpu();
    let output = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &args.connections.to_string(),
        ])
        .args(["-d", &format!("{}s", args.seconds), "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://{}/whoami", server.addr))
        .env("PAIRS", pairs)
        .env("THREADS", threads.to_string())
        .env("WRAP", if name == "upstream" { "1" } else { "0" })
        .output()
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let cpu = server.cpu_seconds() - cpu_before;
    let redis_cpu = redis_cpu() - redis_before;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    let requests: f64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    let rps = field("Requests/sec:").parse().unwrap_or(0.0);
    let not_200 = field("Non-2xx or 3xx responses:").parse().unwrap_or(0);
    eprintln!(
        "{name}: {}",
        text.lines()
            .filter(|l| l.contains("requests in") || l.contains("Requests/sec"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    Ok(Row {
        name,
        rps,
        p50: field("50%"),
        p99: field("99%"),
        cpu_us: if requests > 0.0 {
            cpu * 1e6 / requests
        } else {
            0.0
        },
        redis_cpu_us: if requests > 0.0 {
            redis_cpu * 1e6 / requests
        } else {
            0.0
        },
        not_200,
    })
}

fn print_table(rows: &[Row]) {
    print_rows(rows);
    let rps = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.rps);
    if let (Some(gateway), Some(upstream)) = (rps("gateway"), rps("upstream")) {
        let axum = rps("axum").map_or(String::new(), |a| {
            format!(", {:.2}x the axum example server", gateway / a)
        });
        println!(
            "gateway: {:.2}x the upstream alone{axum} (gateway CPU only; the upstream's is not counted)",
            gateway / upstream
        );
    }
}

fn print_rows(rows: &[Row]) {
    let baseline = |name: &str| {
        let base = name.split('+').next().unwrap_or(name);
        rows.iter().find(|r| r.name == base)
    };
    println!(
        "{:<18} {:>10} {:>9} {:>9} {:>12} {:>8} {:>10} {:>10} {:>12} {:>14}",
        "server",
        "req/s",
        "p50",
        "p99",
        "CPU us/req",
        "non-200",
        "vs floor",
        "CPU/floor",
        "vs in-memory",
        "Redis us/req"
    );
    for r in rows {
        let floor = floor_of(rows, r.name);
        let vs_floor = floor.map_or(String::new(), |f| format!("{:.2}x", r.rps / f.rps));
        let cpu_floor = floor.map_or(String::new(), |f| format!("{:.2}x", r.cpu_us / f.cpu_us));
        let vs_base = baseline(r.name)
            .filter(|b| b.name != r.name)
            .map_or(String::new(), |b| format!("{:.2}x", r.rps / b.rps));
        let redis = if r.redis_cpu_us > 0.0 {
            format!("{:.1}", r.redis_cpu_us)
        } else {
            String::new()
        };
        println!(
            "{:<18} {:>10.0} {:>9} {:>9} {:>12.1} {:>8} {:>10} {:>10} {:>12} {:>14}",
            r.name, r.rps, r.p50, r.p99, r.cpu_us, r.not_200, vs_floor, cpu_floor, vs_base, redis
        );
    }
}
