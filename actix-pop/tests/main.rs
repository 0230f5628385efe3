//! Integration tests of actix-pop (feature `rustls`): real TLS on loopback.
//! Checklist IDs (SPEC-CHECKLIST.md) are cited in test names or comments.

// Test code: helpers are shared across modules of one binary, and unwrap is the assertion.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod support;

mod serve;
mod tls;
