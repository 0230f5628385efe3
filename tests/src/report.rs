//! The conformance report (`docs/CONFORMANCE.md`): every requirement of the resource-server
//! checklist (`docs/spec-checklist.md`) with the table cases and tests that cover it, the
//! result of those cases through tower, axum and actix, the interop matrix and the fuzz
//! targets. Built by `cargo run -p tower-pop-conformance --bin conformance-report`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The checklist IDs a table case checks, by case name.
pub const CASE_IDS: &[(&str, &[&str])] = &[
    (
        "valid DPoP request",
        &["DPOP-04", "DPOP-08", "DPOP-16", "FAPI-01"],
    ),
    ("no credentials", &["BRR-01", "BRR-04"]),
    ("unsupported scheme", &["AUTH-08"]),
    ("proof without token", &["DPOP-22"]),
    ("two Authorization fields", &["AUTH-03", "BRR-05"]),
    ("folded Authorization", &["AUTH-10"]),
    ("scheme without token", &["AUTH-09"]),
    ("missing proof", &["DPOP-18"]),
    ("two proofs", &["DPOP-01"]),
    ("not a JWS", &["DPOP-02"]),
    ("typ JWT", &["DPOP-05", "JOSE-09"]),
    ("alg none", &["DPOP-06", "JOSE-03"]),
    ("alg outside allow-list", &["DPOP-06", "JOSE-01"]),
    ("alg does not fit the key", &["DPOP-07"]),
    ("private key in jwk", &["DPOP-09"]),
    ("crit header", &["JOSE-10"]),
    ("zero signature", &["DPOP-08"]),
    ("htm mismatch", &["DPOP-11"]),
    ("htu mismatch", &["DPOP-12"]),
    ("iat too old", &["DPOP-14", "RPL-01"]),
    ("iat in the future", &["DPOP-14"]),
    ("ath of another token", &["DPOP-15"]),
    ("stolen token, thief's key", &["DPOP-16", "DPOP-24"]),
    ("DPoP scheme, unbound token", &["DPOP-21"]),
    ("downgrade to Bearer", &["DPOP-20", "BRR-08"]),
    ("unbound Bearer token, PoP required", &["BRR-06", "PRM-05"]),
    ("expired token", &["JWTAT-05", "JWTAT-08"]),
    ("cnf with jkt and an unverifiable jwk", &["CNF-02"]),
    ("token without kid (RFC 9068 profile)", &["JWTAT-04"]),
    ("token without client_id (RFC 9068 profile)", &["JWTAT-06"]),
    ("proof key off the curve (JKT-06)", &["JKT-06", "JOSE-05"]),
    ("RSA proof key above 4096 bits", &["JOSE-05"]),
    ("replayed proof", &["RPL-02"]),
    ("nonce missing", &["NONCE-01"]),
    ("nonce valid", &["NONCE-10", "DPOP-13"]),
    ("nonce from another secret", &["NONCE-08"]),
    ("nonce malformed", &["NONCE-05"]),
    ("nonce valid, proof key stolen", &["DPOP-16"]),
    ("mTLS: the bound certificate", &["MTLS-01", "MTLS-07"]),
    ("mTLS: another certificate", &["MTLS-02"]),
    ("mTLS: no certificate", &["MTLS-03"]),
    (
        "proxy: bound certificate from the trusted proxy",
        &["MTLS-11", "CCH-04"],
    ),
    (
        "proxy: another certificate from the trusted proxy",
        &["MTLS-02", "CCH-06"],
    ),
    (
        "proxy: bound certificate from an untrusted peer",
        &["CCH-04"],
    ),
    (
        "proxy: no header, TLS certificate of the proxy's connection",
        &["CCH-08"],
    ),
    (
        "FAPI-01: a bound token with its proof, the id echoed",
        &["FAPI-01"],
    ),
    (
        "FAPI-05: an unbound token is refused, the id echoed",
        &["FAPI-05"],
    ),
    ("FAPI-06: an RS256 proof is refused", &["FAPI-06"]),
    ("FAPI-07: a proof 9 s ahead passes", &["FAPI-07"]),
    ("FAPI-07: a proof 61 s ahead is refused", &["FAPI-07"]),
];

/// Why a requirement has no test of ours: the rows the report lists as not covered.
pub const NOT_COVERED: &[(&str, &str)] = &[
    (
        "AUTH-06",
        "form-encoded body tokens are not read at all (a choice RFC 6750 §2.2 allows)",
    ),
    (
        "JWTAT-07",
        "encrypted access tokens are not supported; none is ever accepted",
    ),
    (
        "CCH-05",
        "a requirement on the proxy: docs/deployment.md states it",
    ),
    (
        "CCH-09",
        "header size is the HTTP server's limit (hyper, actix-web), not the verifier's",
    ),
    (
        "JKT-07",
        "about private JWKs, which a resource server never holds",
    ),
    (
        "MTLS-10",
        "certificate parsing is rustls's and webpki's; no code of ours parses X.509",
    ),
    (
        "MTLS-12",
        "one certificate per connection: renegotiation is not offered (rustls)",
    ),
    (
        "PRM-07",
        "informative (a new challenge may signal changed metadata)",
    ),
    (
        "PRM-08",
        "the metadata response's caching is left to the deployment",
    ),
    (
        "FAPI-03",
        "revocation status is the introspection endpoint's answer (INTRO-*)",
    ),
    ("FAPI-09", "`x5u` and `jku` are never used (JOSE-08)"),
    (
        "FAPI-10",
        "a list of mitigations, each its own row (NONCE-*, RPL-*, MTLS-*)",
    ),
    (
        "BRR-03",
        "`error_description` is a fixed text per error kind; no test walks every kind's characters yet",
    ),
    (
        "DPOP-27",
        "`algs` and the metadata list come from one setting; tested apart, not side by side yet",
    ),
    (
        "NONCE-06",
        "with nonces on, every proof needs one (NONCE-01); the downgrade sequence is not tested on its own yet",
    ),
    (
        "MTLS-09",
        "introspection's `cnf` goes through the same binding as a JWT's (CNF-05); no mismatching-certificate test of it yet",
    ),
    (
        "CCH-03",
        "`Client-Cert-Chain` is not read: the binding needs the end-entity certificate only",
    ),
    (
        "INTRO-04",
        "introspection's `cnf` goes through the same binding table as a JWT's (DPOP-20); no introspection-specific test yet",
    ),
    (
        "INTRO-07",
        "introspected and JWT scopes are split alike (JWTAT-11); no introspection-specific test yet",
    ),
    (
        "PRM-03",
        "GET answers 200 with the document; its content type and other methods are not asserted yet",
    ),
    (
        "PRM-09",
        "identifiers are compared byte for byte and non-ASCII ones refused at start-up; no normalisation test",
    ),
];

/// One requirement row of the checklist.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// `AUTH-01` …
    pub id: String,
    /// The specification and section.
    pub source: String,
    /// MUST, SHOULD, DESIGN …
    pub level: String,
}

/// The requirement rows of the checklist's Markdown tables, in order.
#[must_use]
pub fn requirements(checklist: &str) -> Vec<Requirement> {
    checklist
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let id = *cells.get(1)?;
            let (prefix, number) = id.split_once('-')?;
            let is_id = !prefix.is_empty()
                && prefix.bytes().all(|b| b.is_ascii_uppercase())
                && number.len() == 2
                && number.bytes().all(|b| b.is_ascii_digit());
            is_id.then(|| Requirement {
                id: id.to_owned(),
                source: cells.get(2).copied().unwrap_or_default().to_owned(),
                level: cells.get(3).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// The checklist IDs named in `text`: `DPOP-14` as such, or `dpop_14` in a test name.
fn ids_in(text: &str, prefixes: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for prefix in prefixes {
        for (sep, case) in [('-', prefix.clone()), ('_', prefix.to_ascii_lowercase())] {
            let needle = format!("{case}{sep}");
            let mut from = 0;
            while let Some(at) = text[from..].find(&needle) {
                let start = from + at;
                let digits = start + needle.len();
                let before_ok =
                    start == 0 || !bytes[start - 1].is_ascii_alphanumeric() || sep == '_';
                if before_ok
                    && bytes.len() >= digits + 2
                    && bytes[digits].is_ascii_digit()
                    && bytes[digits + 1].is_ascii_digit()
                    && bytes.get(digits + 2).is_none_or(|b| !b.is_ascii_digit())
                {
                    found.push(format!("{prefix}-{}", &text[digits..digits + 2]));
                }
                from = digits;
            }
        }
    }
    found
}

/// Every test function under `roots` (relative to `workspace`) that names a checklist ID in its
/// name or body: ID → `path::function`.
///
/// # Panics
/// If a source file cannot be read.
#[must_use]
pub fn tests_by_id(
    workspace: &Path,
    roots: &[&str],
    prefixes: &[String],
) -> BTreeMap<String, Vec<String>> {
    let mut files = Vec::new();
    for root in roots {
        collect_rs(&workspace.join(root), &mut files);
    }
    files.sort();
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        let shown = file
            .strip_prefix(workspace)
            .unwrap_or(&file)
            .display()
            .to_string();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i].trim_start();
            let is_test = line.starts_with("#[test]")
                || line.starts_with("#[tokio::test")
                || line.starts_with("#[actix_web::test]");
            if !is_test {
                i += 1;
                continue;
            }
            // The function line, then its body up to the next test attribute or item at the
            // same indentation.
            let Some(fn_at) = (i..lines.len()).find(|&j| lines[j].contains("fn ")) else {
                break;
            };
            let indent = lines[fn_at].len() - lines[fn_at].trim_start().len();
            let name = lines[fn_at]
                .split("fn ")
                .nth(1)
                .and_then(|rest| rest.split(['(', '<']).next())
                .unwrap_or_default()
                .to_owned();
            let mut end = fn_at + 1;
            while end < lines.len() {
                let l = lines[end];
                let here = l.len() - l.trim_start().len();
                if !l.trim().is_empty() && here <= indent && !l.trim_start().starts_with('}') {
                    break;
                }
                end += 1;
            }
            let body = lines[i..end].join("\n");
            let mut ids = ids_in(&body, prefixes);
            ids.sort();
            ids.dedup();
            for id in ids {
                by_id
                    .entry(id)
                    .or_default()
                    .push(format!("{shown}::{name}"));
            }
            i = end;
        }
    }
    by_id
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n != "target" && n != "node_modules")
            {
                collect_rs(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The result of one table case through the three stacks.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Whether tower, axum and actix answered identically and as the case expects.
    pub passed: bool,
}

/// One row of the interop matrix (what `examples/interop/matrix.py` writes).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct InteropRow {
    /// The client library.
    pub client: String,
    /// Its version.
    pub version: String,
    /// The server binary.
    pub server: String,
    /// The case.
    pub case: String,
    /// `pass`, `fail` or `n/a`.
    pub result: String,
    /// Why, for rows that do not pass.
    #[serde(default)]
    pub detail: String,
}

/// A fuzz target and its last long run.
#[derive(Debug, Clone)]
pub struct FuzzTarget {
    /// The target's name.
    pub name: String,
    /// The first line of its module docs.
    pub what: String,
    /// The last long run (`fuzz/long-runs.txt`): executions and date.
    pub long_run: Option<(u64, String)>,
}

/// Everything the report is made of.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The checklist rows.
    pub requirements: Vec<Requirement>,
    /// Test functions by ID.
    pub tests: BTreeMap<String, Vec<String>>,
    /// Table case results, in table order.
    pub cases: Vec<CaseResult>,
    /// The interop matrix, when it was run.
    pub interop: Option<Vec<InteropRow>>,
    /// The fuzz targets.
    pub fuzz: Vec<FuzzTarget>,
    /// The executions of each target in CI (`fuzz/ci.sh`).
    pub fuzz_ci_runs: u64,
}

/// The report, as Markdown.
#[must_use]
pub fn render(inputs: &Inputs) -> String {
    let mut out = String::new();
    let case_ids: BTreeMap<&str, &[&str]> = CASE_IDS.iter().copied().collect();
    let mut cases_by_id: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for case in &inputs.cases {
        for id in case_ids
            .get(case.name.as_str())
            .copied()
            .unwrap_or_default()
        {
            cases_by_id.entry(id).or_default().push(case);
        }
    }
    let not_covered: BTreeMap<&str, &str> = NOT_COVERED.iter().copied().collect();
    let table_pass = inputs.cases.iter().filter(|c| c.passed).count();
    let _ = writeln!(out, "# Conformance report\n");
    let _ = writeln!(
        out,
        "What this is: **our own tests, mirroring the public RFC requirements**, listed per \
         requirement of the resource-server checklist (`docs/spec-checklist.md`: RFC 9449, RFC \
         8705, RFC 6750, RFC 9068, RFC 7662, RFC 9728, RFC 9440, FAPI 2.0). It is not a \
         certification. Regenerated by `bash tests/run.sh` (which runs the interop matrix \
         first), or `cargo run -p tower-pop-conformance --bin conformance-report -- --write \
         docs/CONFORMANCE.md --interop target/interop-matrix.json`; CI fails when the committed \
         file differs.\n"
    );
    let _ = writeln!(
        out,
        "- **Table cases**: {} requests sequences run through the bare tower layer, axum \
         (`axum-pop`) and actix-web (`actix-pop`) by this command; {table_pass} of them got \
         identical answers from the three, as the RFCs call for.",
        inputs.cases.len()
    );
    let covered = inputs
        .requirements
        .iter()
        .filter(|r| inputs.tests.contains_key(&r.id) || cases_by_id.contains_key(r.id.as_str()))
        .count();
    let _ = writeln!(
        out,
        "- **Requirements**: {covered} of {} rows have a test or a table case; the others are \
         listed with the reason.",
        inputs.requirements.len()
    );
    let _ = writeln!(
        out,
        "- **Tests** are named by file and function; `cargo test --workspace` (and `bash \
         tests/run.sh`, with the tests that need Redis, nginx, Node or Python) runs them all: \
         CI passes only when every one does.\n"
    );
    let _ = writeln!(out, "## Requirements\n");
    let _ = writeln!(
        out,
        "| ID | source | level | table cases (tower, axum, actix) | tests |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for r in &inputs.requirements {
        let cases = cases_by_id.get(r.id.as_str());
        let table = match cases {
            Some(cases) => {
                let passed = cases.iter().filter(|c| c.passed).count();
                let verdict = if passed == cases.len() {
                    "pass"
                } else {
                    "**FAIL**"
                };
                format!(
                    "{verdict}: {}",
                    cases
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
            None => String::new(),
        };
        let tests = match inputs.tests.get(&r.id) {
            Some(tests) if tests.len() > 3 => {
                format!("{} and {} more", tests[..3].join(", "), tests.len() - 3)
            }
            Some(tests) => tests.join(", "),
            None if cases.is_none() => match not_covered.get(r.id.as_str()) {
                Some(why) => format!("not covered: {why}"),
                None => "**not covered**".to_owned(),
            },
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.id,
            r.source.replace('|', "\\|"),
            r.level.replace('|', "\\|"),
            table.replace('|', "\\|"),
            tests.replace('|', "\\|")
        );
    }
    let _ = writeln!(out, "\n## Interop matrix\n");
    match &inputs.interop {
        Some(rows) => {
            let _ = writeln!(
                out,
                "Real third-party clients against both example servers (`examples/interop/matrix.py`; versions pinned in `examples/interop/package-lock.json` and `requirements.txt`).\n"
            );
            let _ = writeln!(out, "| client | version | server | case | result |");
            let _ = writeln!(out, "|---|---|---|---|---|");
            let mut rows = rows.clone();
            rows.sort_by(|a, b| {
                (&a.client, &a.server, &a.case).cmp(&(&b.client, &b.server, &b.case))
            });
            for row in rows {
                let server = row
                    .server
                    .rsplit('/')
                    .next()
                    .unwrap_or(&row.server)
                    .to_owned();
                let result = if row.result == "pass" {
                    row.result.clone()
                } else {
                    format!("{}: {}", row.result, row.detail.replace('|', "\\|"))
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {server} | {} | {result} |",
                    row.client, row.version, row.case
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "Not run here (`--interop` not given): run `bash tests/run.sh`."
            );
        }
    }
    let _ = writeln!(out, "\n## Fuzz targets\n");
    let _ = writeln!(
        out,
        "Each runs {} times in CI (`fuzz/ci.sh`, libFuzzer, from the committed seeds); the last long runs are recorded in `fuzz/long-runs.txt`.\n",
        inputs.fuzz_ci_runs
    );
    let _ = writeln!(out, "| target | what it feeds | last long run |");
    let _ = writeln!(out, "|---|---|---|");
    for target in &inputs.fuzz {
        let long = target
            .long_run
            .as_ref()
            .map_or_else(String::new, |(runs, date)| {
                format!("{runs} executions, {date}")
            });
        let _ = writeln!(
            out,
            "| `{}` | {} | {long} |",
            target.name,
            target.what.replace('|', "\\|")
        );
    }
    out
}
