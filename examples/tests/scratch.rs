//! One scratch directory per test process for the files the servers are given (key sets, PEM
//! files, secrets), under the system's temporary directory. Statics are never dropped, so the
//! directory outlives the process; instead, the first use removes the directories of test
//! processes that have exited, and files do not pile up across runs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PREFIX: &str = "tower-pop-example-tests-";

/// This process's scratch directory, created on first use.
pub(crate) fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir();
        remove_stale(&base);
        let dir = base.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A path for `name` in this process's scratch directory.
pub(crate) fn file(name: &str) -> PathBuf {
    dir().join(name)
}

/// Write `contents` to `name` in the scratch directory and return its path (as a flag's
/// value). Written beside it and renamed into place, so a server that a test running in
/// parallel starts while the file is rewritten reads the whole file, never an empty one.
pub(crate) fn write(name: &str, contents: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let path = file(name);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let partial = file(&format!("{name}.{n}.partial"));
    std::fs::write(&partial, contents).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    path.to_string_lossy().into_owned()
}

/// Remove the scratch directories of processes that are gone (Linux: no `/proc/PID`).
#[cfg(target_os = "linux")]
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Elsewhere there is no cheap way to tell a live process: leave every directory.
#[cfg(not(target_os = "linux"))]
fn remove_stale(_base: &Path) {}
