//! What the ratio benches share: their command line.

/// The number after `name` on the command line, else `default`.
pub(crate) fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we use: run tiny.
pub(crate) fn quick(args: &[String]) -> bool {
    !args.iter().any(|a| a == "--bench")
}
