//! Everything a test's code logs, at `trace`, captured for the current thread: what tests count
//! log lines in (a flood must not multiply them) and search for secrets (none may appear).

// Test support: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// The captured text. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Everything logged so far, one event per line.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines containing `needle`.
    #[must_use]
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// The lines at `level` (`"WARN"`, `"ERROR"`, ...).
    #[must_use]
    pub fn at(&self, level: &str) -> Vec<String> {
        let tag = format!(" {level} ");
        self.text()
            .lines()
            .filter(|line| line.contains(&tag))
            .map(str::to_owned)
            .collect()
    }
}

struct Writer(Logs);

impl io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Capture every event (all targets, `trace` and up, with span fields) on this thread until the
/// guard is dropped. With a current-thread runtime that includes the tasks it runs.
#[must_use]
pub fn capture() -> (DefaultGuard, Logs) {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || Writer(sink.clone()))
        .finish();
    (tracing::subscriber::set_default(subscriber), logs)
}
