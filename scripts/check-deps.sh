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
# The host client is reusable alone: it must not drag in storage or the server stack.
check crm-sub2api rusqlite axum tokio-postgres
# The SQLite adapter never links the PostgreSQL driver (and so the default
# install carries none).
check crm-store tokio-postgres deadpool-postgres
# The simulator is a test and demo dependency: product libraries never link it.
for c in crm-domain crm-pack crm-provision crm-access crm-reconcile crm-store crm-store-postgres crm-sub2api crm-app crm-api crm-console; do
  check "$c" crm-sim
done

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "dependency direction: ok"
