//! Log lines that a flood cannot multiply: a failure that may repeat per request (a replay
//! store down, the authorization server failing, a client over its share) is logged once when
//! it starts, then at most every 10 s with a count, and once when it ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Throttles one kind of failure log line: the first failure of a burst is logged, then at most
/// one line per [`FailureLog::EVERY_SECS`] with the number of failures since the last line;
/// the first success after a burst is logged once.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    failing: AtomicBool,
    last_logged: AtomicU64,
    unlogged: AtomicU64,
}

impl FailureLog {
    /// Seconds between two log lines of one burst.
    pub(crate) const EVERY_SECS: u64 = 10;

    /// Record a failure at `now`: `Some(failures since the last line)` when a line is due.
    pub(crate) fn failed(&self, now: u64) -> Option<u64> {
        self.unlogged.fetch_add(1, Ordering::AcqRel);
        let first = !self.failing.swap(true, Ordering::AcqRel);
        let last = self.last_logged.load(Ordering::Acquire);
        let due = first
            || (now >= last.saturating_add(Self::EVERY_SECS)
                && self
                    .last_logged
                    .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok());
        if !due {
            return None;
        }
        if first {
            self.last_logged.store(now, Ordering::Release);
        }
        Some(self.unlogged.swap(0, Ordering::AcqRel).max(1))
    }

    /// Record a success: once, when it ends a burst of failures, `Some(failures not yet
    /// logged)`.
    pub(crate) fn succeeded(&self) -> Option<u64> {
        (self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::AcqRel))
            .then(|| self.unlogged.swap(0, Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::FailureLog;

    #[test]
    fn store_failures_are_logged_once_per_burst_then_every_ten_seconds() {
        let log = FailureLog::default();
        assert_eq!(log.succeeded(), None, "no burst yet");
        assert_eq!(log.failed(100), Some(1));
        for now in 100..110 {
            assert_eq!(log.failed(now), None, "at {now}");
        }
        // 10 s later: one line counting the 10 quiet failures and this one.
        assert_eq!(log.failed(110), Some(11));
        assert_eq!(log.failed(111), None);
        assert_eq!(log.succeeded(), Some(1));
        assert_eq!(log.succeeded(), None, "the recovery is logged once");
        // A new burst is logged at once.
        assert_eq!(log.failed(112), Some(1));
    }
}
