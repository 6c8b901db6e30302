#!/usr/bin/env bash
# Dependency direction (docs/ARCHITECTURE.md): the domain and the use-case
# crates never depend, even transitively, on an HTTP stack, a database driver
# or a runtime. Only adapters and binaries may.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
check() { # crate forbidden...
  local crate=$1; shift
  for dep in "$@"; do
    # `cargo tree -i` lists the paths from $crate to $dep; no path means the
    # spec does not match anything in $crate's normal dependency graph.
    if out=$(cargo tree -q --locked -p "$crate" -e normal -i "$dep" 2>/dev/null) && [ -n "$out" ]; then
      echo "dependency direction violated: $crate depends on $dep:"
      echo "$out" | head -20
      fail=1
    fi
  done
}

io_crates=(reqwest hyper axum rusqlite libsqlite3-sys refinery tokio tokio-postgres deadpool-postgres)
check crm-domain "${io_crates[@]}"
check crm-pack "${io_crates[@]}"
check crm-provision "${io_crates[@]}"
check crm-access "${io_crates[@]}"
check crm-reconcile "${io_crates[@]}"
# The host client is reusable alone: it must not drag in storage or the server
# stack (tower-http arrives through reqwest, so axum and utoipa stand for it).
check crm-sub2api rusqlite libsqlite3-sys refinery tokio-postgres deadpool-postgres axum utoipa
# The SQLite adapter never links the PostgreSQL driver (and so the default
# install carries none).
check crm-store tokio-postgres deadpool-postgres
# The simulator is a test and demo dependency: product libraries never link it.
for c in crm-domain crm-pack crm-provision crm-access crm-reconcile crm-store crm-store-postgres crm-sub2api crm-app crm-api crm-console; do
  check "$c" crm-sim
done

# Direct dependencies, from `cargo metadata`: who may name SQL drivers and the
# server stack at all (docs/ARCHITECTURE.md, "Architecture invariants").
direct=$(cargo metadata --locked --format-version 1 --no-deps | python3 -c '
import json, sys
m = json.load(sys.stdin)
for p in m["packages"]:
    for d in p["dependencies"]:
        if d["kind"] is None:
            print(p["name"], d["name"])
')
only() { # dependency allowed-crate...
  local dep=$1; shift
  local users
  users=$(awk -v d="$dep" '$2 == d { print $1 }' <<<"$direct")
  for u in $users; do
    local ok=0
    for a in "$@"; do [ "$u" = "$a" ] && ok=1; done
    if [ "$ok" -eq 0 ]; then
      echo "invariant violated: $u depends directly on $dep (only $* may)"
      fail=1
    fi
  done
}
# Only the store adapters know SQL (crm-reliability, a test crate, reads the
# database file's bytes for its secrets canary).
for sql in rusqlite libsqlite3-sys refinery tokio-postgres postgres deadpool-postgres; do
  only "$sql" crm-store crm-store-postgres crm-reliability
done
# Only the HTTP faces (and the simulator) know crm's own routes and the server stack.
for http in axum tower-http utoipa utoipa-axum; do
  only "$http" crm-api crm-console crm-server crm-sim
done
# Only the host client talks HTTP to hosts and upstreams; the faces and test
# crates may use reqwest to call crm's own server or the simulator.
only reqwest crm-sub2api crm-api crm-bench crm-reliability

# Inside each crate the imports run one way too: no modules in a circle
# (docs/ARCHITECTURE.md, "Architecture invariants").
python3 scripts/check-module-cycles.py crates/*/src bins/*/src tests || fail=1

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "dependency direction: ok"
