//! Logs and metrics: the stable `tracing` targets and metric names (tabled in the crate docs),
//! and the one place a decision of [`Verifier::decide`](crate::verifier::Verifier::decide) is observed.
//!
//! Fields and labels carry only fixed names (a refusal's kind, the scheme, the binding): never a
//! token, proof, key, claim value, or URL with credentials. Metrics go through the `metrics`
//! facade with the `metrics` feature; without it they are compiled out, and with it but no
//! recorder installed they cost a no-op call each.

pub(crate) mod failure_log;

use crate::error::{AuthScheme, PopErrorKind};
use failure_log::FailureLog;

/// Each decision: accepted at `trace`, refused at `debug`; refusals for our own failures (other
/// than the replay store's, which the verifier logs under [`REPLAY`]) also at `warn`, once per
/// burst and then at most every 10 s with a count, and their end at `info`.
pub(crate) const VERIFY: &str = "tower_pop::verify";
/// The replay stores: full, unreachable, recovered.
pub(crate) const REPLAY: &str = "tower_pop::replay";
/// A forwarded client certificate that cannot be trusted (RFC 9440).
pub(crate) const MTLS: &str = "tower_pop::mtls";
/// The issuer's keys (RFC 8414 discovery): fetched, fetch failed, unavailable for a request.
#[cfg(feature = "discovery")]
pub(crate) const DISCOVERY: &str = "tower_pop::discovery";
/// Token introspection (RFC 7662) failures.
#[cfg(feature = "introspection")]
pub(crate) const INTROSPECTION: &str = "tower_pop::introspection";
/// The client side: requests sent without a proof, nonce retries.
#[cfg(feature = "client")]
pub(crate) const CLIENT: &str = "tower_pop::client";

/// Counter of verified (and allowed anonymous) requests, label `binding`.
#[cfg(feature = "metrics")]
pub(crate) const ACCEPTED_TOTAL: &str = "tower_pop_requests_accepted_total";
/// Counter of refused requests, label `kind` ([`PopErrorKind::as_str`](crate::error::PopErrorKind::as_str)).
#[cfg(feature = "metrics")]
pub(crate) const REFUSED_TOTAL: &str = "tower_pop_requests_refused_total";
/// Histogram of the time `decide` took, in seconds.
#[cfg(feature = "metrics")]
pub(crate) const VERIFY_SECONDS: &str = "tower_pop_verify_seconds";

/// The `binding` label of a request let through without credentials (anonymous allowed).
const ANONYMOUS: &str = "anonymous";

/// When a decision started: measured only with the `metrics` feature.
pub(crate) struct Started {
    #[cfg(feature = "metrics")]
    at: std::time::Instant,
}

impl Started {
    pub(crate) fn now() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            at: std::time::Instant::now(),
        }
    }
}

/// Describe the metrics to the installed recorder (Prometheus `# HELP` lines). Idempotent.
pub(crate) fn describe() {
    #[cfg(feature = "metrics")]
    {
        metrics::describe_counter!(
            ACCEPTED_TOTAL,
            "Requests verified (or let through anonymously), by binding proven"
        );
        metrics::describe_counter!(REFUSED_TOTAL, "Requests refused, by error kind");
        metrics::describe_histogram!(
            VERIFY_SECONDS,
            metrics::Unit::Seconds,
            "Time to verify a request and decide"
        );
    }
}

/// One decision of [`Verifier::decide`](crate::verifier::Verifier::decide), in the plain values that logs
/// and metrics carry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Decision {
    /// Verified: the binding proven ([`Binding::as_str`](crate::extension::Binding::as_str)) and the scheme.
    Verified {
        binding: &'static str,
        scheme: AuthScheme,
    },
    /// No credentials, and anonymous requests are allowed.
    Anonymous,
    /// Refused: why, and the scheme when one was recognised.
    Refused {
        kind: PopErrorKind,
        scheme: Option<AuthScheme>,
    },
}

/// Log and count one decision. Called once per [`Verifier::decide`](crate::verifier::Verifier::decide),
/// with the verifier's log of server-side failures and its clock.
pub(crate) fn decided(
    decision: Decision,
    started: Started,
    faults: &FailureLog,
    now: impl FnOnce() -> u64,
) {
    let _ = &started;
    match decision {
        Decision::Verified { binding, scheme } => {
            tracing::trace!(target: VERIFY, binding, scheme = scheme.as_str(), "request accepted");
            if let Some(unlogged) = faults.succeeded() {
                tracing::info!(target: VERIFY, unlogged_failures = unlogged, "requests verified again after server-side failures");
            }
            #[cfg(feature = "metrics")]
            metrics::counter!(ACCEPTED_TOTAL, "binding" => binding).increment(1);
        }
        Decision::Anonymous => {
            tracing::trace!(target: VERIFY, binding = ANONYMOUS, "request accepted without credentials");
            #[cfg(feature = "metrics")]
            metrics::counter!(ACCEPTED_TOTAL, "binding" => ANONYMOUS).increment(1);
        }
        Decision::Refused { kind, scheme } => {
            let scheme = scheme.map(AuthScheme::as_str);
            let store_failure = matches!(
                kind,
                PopErrorKind::ReplayStoreUnavailable | PopErrorKind::ReplayStoreFull
            );
            let name = kind.as_str();
            tracing::debug!(target: VERIFY, kind = name, scheme, "request refused");
            // One warning per refused request would let a flood fill the log: once per burst.
            // A failing replay store is logged by the verifier (target `tower_pop::replay`).
            if kind.is_server_fault()
                && !store_failure
                && let Some(failures) = faults.failed(now())
            {
                tracing::warn!(target: VERIFY, kind = name, scheme, failures, "requests refused: server-side failure");
            }
            #[cfg(feature = "metrics")]
            metrics::counter!(REFUSED_TOTAL, "kind" => name).increment(1);
        }
    }
    #[cfg(feature = "metrics")]
    metrics::histogram!(VERIFY_SECONDS).record(started.at.elapsed());
}
