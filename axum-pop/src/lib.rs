//! axum adapter for [`tower_pop`].
//!
//! `tower_pop::RequirePopLayer` is a plain tower layer, so it already works with axum's
//! `Router::layer` / `route_layer`; handlers read the verified result with
//! `Extension<tower_pop::Verified>`. This crate re-exports the core so one dependency line is
//! enough; the typed extractor and TLS peer-certificate capture come in a later release.

pub use tower_pop::*;
