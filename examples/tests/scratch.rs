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
