//! Helpers shared by the test modules.

// The test PKI and TLS client are the same for both adapters: one copy, in axum-pop.
#[path = "../../../axum-pop/tests/support/tls.rs"]
pub mod tls;
