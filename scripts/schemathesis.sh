#!/usr/bin/env bash
# Property-based API test: starts crm-server on a temp database next to a
# crm-sim host, runs schemathesis against the served OpenAPI document with
# the admin token, and stops both. Needs schemathesis (pip install schemathesis).
# Checks: all but positive_data_acceptance (valid-shaped input that breaks a
# business rule, e.g. an unknown host, is rightly answered 404/409/422).
# Usage: scripts/schemathesis.sh [MAX_EXAMPLES]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
max_examples="${1:-5}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --quiet --locked -p crm-server -p crm-sim
target="${CARGO_TARGET_DIR:-target}/debug"

# Wait (bounded) until a file has a line matching a pattern.
await_line() {
    for _ in $(seq 1 300); do
        if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1" >&2
    cat "$1" >&2
    return 1
}

"$target/crm-sim" --listen 127.0.0.1:0 >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
await_line "$work/sim.out" '^admin-key '
sim_url="$(awk '/^listening /{print $2}' "$work/sim.out")"
sim_key="$(awk '/^admin-key /{print $2}' "$work/sim.out")"

token="st-admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CRM_ADMIN_TOKEN="$token" CRM_DB="$work/crm.db" RUST_LOG="warn,crm_server=info" \
    "$target/crm-server" --listen 127.0.0.1:0 --scheduler false --auth-failures-per-minute 100000 \
    --upstream-via "$sim_url/__upstream" --packs-dir "$work/packs" \
    2>"$work/server.log" &
pids+=($!)
mkdir -p "$work/packs"
await_line "$work/server.log" 'crm-server listening'
addr="$(grep -o '"addr":"[^"]*"' "$work/server.log" | head -1 | cut -d'"' -f4)"
base="http://$addr"

# Something to find: the simulator as host "sim" and the bundled pack.
auth=(-H "Authorization: Bearer $token")
curl -fsS "${auth[@]}" -H 'content-type: application/json' \
    -d "{\"name\":\"sim\",\"base_url\":\"$sim_url\",\"admin_key\":\"$sim_key\"}" \
    "$base/api/hosts" >/dev/null
curl -fsS "${auth[@]}" -H 'content-type: text/plain' \
    --data-binary @packs/cn-official/pack.toml \
    "$base/api/packs?file_name=cn-official.toml" >/dev/null

# `st` when on PATH, else the module (a fresh pip install may not be on PATH yet).
if command -v st >/dev/null; then st=(st); else st=(python3 -m schemathesis.cli); fi
"${st[@]}" run "$base/api/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --max-examples "$max_examples" \
    --request-timeout 30 \
    --generation-deterministic \
    --no-color
echo "schemathesis: no failures"
