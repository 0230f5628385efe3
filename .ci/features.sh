#!/usr/bin/env bash
# Every feature of every library crate builds alone, with none and with all (what
# `cargo hack check --each-feature` would run, without installing cargo-hack). `cargo check` of
# the library only: no tests, no linking; the target dir is shared with the rest of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

# The features of `crate` from `cargo metadata` (no jq: a python one-liner).
features() {
    cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
name = sys.argv[1]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == name:
        print("\n".join(sorted(f for f in p["features"] if f != "default")))
' "$1"
}

# A warning (an import unused under one feature set) fails the step too; RUSTFLAGS=-D warnings
# would rebuild every dependency instead.
check() {
    echo "-- cargo check $*"
    local out
    out=$(cargo check --quiet --message-format short "$@" 2>&1) || { echo "$out"; exit 1; }
    if grep -q '^warning\|: warning' <<<"$out"; then
        echo "$out"
        exit 1
    fi
}

for crate in tower-pop axum-pop actix-pop; do
    check -p "$crate" --no-default-features
    for feature in $(features "$crate"); do
        check -p "$crate" --no-default-features --features "$feature"
    done
    check -p "$crate" --all-features
done
