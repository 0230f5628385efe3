//! Test support for the workspace's tests, benches and fuzz seeds (unpublished): real processes
//! and real keys, never mocks. A test PKI of rcgen certificates ([`pki`]), a `redis-server` on a
//! free loopback port ([`RedisServer`]), free ports ([`free_port`]), slow clients ([`slow`])
//! and captured logs ([`logs`]).
//!
//! Tests that start a program (`redis-server`, `nginx`, `node`, `chromium`) are
//! `#[ignore = "needs <program>: run bash tests/run.sh"]`, so `cargo test --workspace` passes with
//! only the Rust toolchain; `bash tests/run.sh` installs what they need and runs them all.

pub mod logs;
mod pki;
mod redis_cluster;
mod redis_server;
pub mod slow;
pub mod www_authenticate;

pub use pki::{Identity, Pki, pki};
pub use redis_cluster::{NODE_TIMEOUT_MS, RedisCluster, key_slot, valkey_server};
pub use redis_server::{RedisServer, free_port};
