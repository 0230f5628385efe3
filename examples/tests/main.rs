//! Starts the example servers as processes on loopback and talks to them over real HTTP.

// Test code: unwrap is the assertion.
#![allow(clippy::unwrap_used)]

mod client;
mod cluster;
mod cors;
mod flood;
mod gateway;
mod gateway_streams;
mod grpc;
mod issuer;
mod limits;
mod logs;
mod mcp;
mod metrics;
mod mtls;
mod nginx;
mod python;
mod scratch;
mod server;
mod shared;
mod streams;
