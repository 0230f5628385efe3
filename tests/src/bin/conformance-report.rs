//! Regenerate or check `docs/CONFORMANCE.md`:
//!
//! ```text
//! cargo run -p tower-pop-conformance --bin conformance-report -- \
//!     (--write FILE | --check FILE) [--interop target/interop-matrix.json]
//! ```
//!
//! Runs every table case through tower, axum and actix, finds the tests that name each
//! checklist ID, and reads the interop matrix rows and the fuzz targets' last long runs.
//! `--check` exits 1 when FILE differs from what it would write.

use std::path::{Path, PathBuf};

use tower_pop_conformance::Fixture;
use tower_pop_conformance::report::{
    CaseResult, FuzzTarget, Inputs, InteropRow, render, requirements, tests_by_id,
};
use tower_pop_conformance::run::run_table;

/// Where the tests live, relative to the workspace.
const TEST_ROOTS: [&str; 8] = [
    "tower-pop/src",
    "tower-pop/tests",
    "axum-pop",
    "actix-pop",
    "tests",
    "examples/tests",
    "examples/src",
    "examples/gateway/src",
];

fn fail(message: &str) -> ! {
    eprintln!("conformance-report: {message}");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut write, mut check, mut interop) = (None, None, None);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .map(PathBuf::from)
                .unwrap_or_else(|| fail(&format!("{arg} needs a file")))
        };
        match arg.as_str() {
            "--write" => write = Some(value()),
            "--check" => check = Some(value()),
            "--interop" => interop = Some(value()),
            other => fail(&format!("unknown argument {other}")),
        }
    }
    if write.is_some() == check.is_some() {
        fail("give exactly one of --write FILE and --check FILE");
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    let report = render(&inputs(workspace, interop.as_deref()));
    if let Some(path) = write {
        std::fs::write(&path, report).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        return;
    }
    let path = check.expect("checked above");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != report {
        eprintln!(
            "conformance-report: {} is not what the tests produce now; regenerate it with --write (bash tests/run.sh does)",
            path.display()
        );
        for (line, (a, b)) in committed.lines().zip(report.lines()).enumerate() {
            if a != b {
                eprintln!(
                    "first difference, line {}:\n  committed: {a}\n  now:       {b}",
                    line + 1
                );
                break;
            }
        }
        std::process::exit(1);
    }
}

fn inputs(workspace: &Path, interop: Option<&Path>) -> Inputs {
    let checklist = std::fs::read_to_string(workspace.join("docs/spec-checklist.md"))
        .unwrap_or_else(|e| fail(&format!("docs/spec-checklist.md: {e}")));
    let requirements = requirements(&checklist);
    let mut prefixes: Vec<String> = requirements
        .iter()
        .filter_map(|r| r.id.split_once('-').map(|(p, _)| p.to_owned()))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    let tests = tests_by_id(workspace, &TEST_ROOTS, &prefixes);
    let cases = actix_web::rt::System::new().block_on(run_cases());
    let interop = interop.map(|path| {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        serde_json::from_str::<Vec<InteropRow>>(&text)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
    });
    Inputs {
        requirements,
        tests,
        cases,
        interop,
        fuzz: fuzz_targets(workspace),
        fuzz_ci_runs: fuzz_ci_runs(workspace),
    }
}

/// Every table of `Fixture`, each case alone through the three stacks.
async fn run_cases() -> Vec<CaseResult> {
    let fixture = Fixture::new();
    let tables = fixture.tables();
    let mut results = Vec::new();
    for (cases, verifier) in &tables {
        for case in cases {
            let failures = run_table(std::slice::from_ref(case), verifier).await;
            results.push(CaseResult {
                name: case.name.to_owned(),
                passed: failures.is_empty(),
            });
        }
    }
    results
}

/// The fuzz targets, with the first line of each one's docs and its last long run.
fn fuzz_targets(workspace: &Path) -> Vec<FuzzTarget> {
    let dir = workspace.join("fuzz/fuzz_targets");
    let long_runs =
        std::fs::read_to_string(workspace.join("fuzz/long-runs.txt")).unwrap_or_default();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".rs"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap_or_default();
            let what = text
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .map(|l| l.trim_start_matches("//!").trim())
                .collect::<Vec<_>>()
                .join(" ");
            let what = what
                .split(". ")
                .next()
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_owned();
            let long_run = long_runs.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(name.as_str())).then(|| {
                    let runs = words.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                    (runs, words.collect::<Vec<_>>().join(" "))
                })
            });
            FuzzTarget {
                name,
                what,
                long_run,
            }
        })
        .collect()
}

/// `FUZZ_RUNS`' default in `fuzz/ci.sh`.
fn fuzz_ci_runs(workspace: &Path) -> u64 {
    std::fs::read_to_string(workspace.join("fuzz/ci.sh"))
        .ok()
        .and_then(|text| {
            let at = text.find("FUZZ_RUNS:-")? + "FUZZ_RUNS:-".len();
            text[at..].split('}').next()?.parse().ok()
        })
        .unwrap_or(0)
}
