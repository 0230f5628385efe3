//! actix-web adapter for [`tower_pop`].
//!
//! This release re-exports the framework-neutral core: an actix-web application can already call
//! [`tower_pop::Verifier::verify`] with a [`tower_pop::PopRequest`] built from its request and
//! answer with [`tower_pop::Challenge`]. The `.wrap(...)` middleware and extractor come in a
//! later release.

pub use tower_pop::*;
