//! Integration tests of tower-pop through its public API and the tower layer.
//! Checklist IDs (SPEC-CHECKLIST.md) are cited in test names or comments.

// Test code: helpers are shared across modules of one binary, and unwrap is the assertion.
#![allow(unreachable_pub, clippy::unwrap_used)]

#[cfg(any(feature = "discovery", feature = "introspection"))]
mod auth_server;
mod support;

mod binding;
#[cfg(feature = "discovery")]
mod discovery;
mod garbage;
mod grpc;
#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "metrics")]
mod metrics;
mod nonces;
mod proofs;
mod properties;
#[cfg(feature = "redis")]
mod redis_cluster;
#[cfg(feature = "redis")]
mod redis_store;
mod replay;
#[cfg(feature = "httpsig")]
mod signatures;
mod tokens;
