# Convenience recipes. Every recipe is a plain cargo (or script) command you can
# run without `just`.

# The main job: quickstart on SQLite + the built-in simulated host (no network).
quickstart:
    cargo run --release --bin crm -- quickstart

# All tests (the README's test command; .ci/run runs exactly this).
test:
    cargo test --workspace --locked

# Everything CI checks.
ci:
    bash .ci/run

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets --locked -- -D warnings

deps:
    scripts/check-deps.sh

# Run the simulator on its own.
sim profile="current":
    cargo run --bin crm-sim -- --profile {{profile}} --listen 127.0.0.1:8787
