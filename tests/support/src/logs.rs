//! Everything a test's code logs, at `trace`, captured for the current thread: what tests count
//! log lines in (a flood must not multiply them) and search for secrets (none may appear).

// Test support: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io;
use std::sync::{Arc, Mutex};

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

thread_local! {
    /// Where this thread's events go while a capture is on.
    static SINK: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// Writes an event into the capturing thread's buffer, or nowhere.
struct ThreadSink;

impl io::Write for ThreadSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        SINK.with(|sink| {
            if let Some(logs) = &*sink.borrow() {
                logs.0.lock().unwrap().extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Ends the capture of this thread when dropped.
#[derive(Debug)]
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        SINK.with(|sink| sink.borrow_mut().take());
    }
}

/// Capture every event (all targets, `trace` and up, with span fields) of this thread until
/// the guard is dropped; with a current-thread runtime that includes the tasks it runs.
///
/// One process-wide subscriber (installed on first use) writes each event into the buffer of
/// the thread it happens on. A thread-local subscriber (`set_default`) would miss events
/// whose call sites other threads reached first, while none was installed: tracing caches
/// that nobody listens to them.
#[must_use]
pub fn capture() -> (CaptureGuard, Logs) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| ThreadSink)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in a test binary");
    });
    let logs = Logs::default();
    SINK.with(|sink| *sink.borrow_mut() = Some(logs.clone()));
    (CaptureGuard(()), logs)
}
