#!/usr/bin/env bash
# crm's long reliability suite (docs/RELIABILITY.md): runs every promise's
# test at the long sizes (CRM_RELIABILITY_LONG=1), then each cargo-fuzz
# target for FUZZ_SECS (default 60) when a nightly toolchain with cargo-fuzz
# is present, and prints one line per promise: trials run, violations found.
#
#   scripts/reliability.sh            # long run, fixed seed
#   CRM_RELIABILITY_SEED=7 scripts/reliability.sh   # explore other sequences
#   FUZZ_SECS=0 scripts/reliability.sh              # skip cargo-fuzz
#
# Exit status: 0 when every promise ran with zero violations, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
export CRM_RELIABILITY_LONG=1
FUZZ_SECS="${FUZZ_SECS:-60}"
out_dir="$(mktemp -d "${TMPDIR:-/tmp}/crm-reliability.XXXXXX")"
log="$out_dir/suite.log"
status=0

echo "== reliability suite (long), log: $log"
# One test at a time: the crash, load and state-machine tests each want the
# machine's cores, and their figures mean more when they do not compete.
cargo test -p crm-reliability --locked --test it -- --nocapture --test-threads=1 >"$log" 2>&1 \
  || status=1

fuzz_lines=()
if [ "$FUZZ_SECS" -gt 0 ] && cargo +nightly fuzz --version >/dev/null 2>&1; then
  for target in pack envelope sse; do
    echo "== cargo fuzz $target (${FUZZ_SECS}s)"
    mkdir -p "fuzz/corpus/$target"
    # Only crashes of this run count (earlier ones are already kept).
    rm -rf "fuzz/artifacts/$target"
    flog="$out_dir/fuzz-$target.log"
    ( cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" "corpus-regressions/$target" \
        -- -max_total_time="$FUZZ_SECS" ) >"$flog" 2>&1
    rc=$?
    runs=$(grep -oE 'Done [0-9]+ runs' "$flog" | tail -1 | grep -oE '[0-9]+' || true)
    crashes=0
    for a in fuzz/artifacts/"$target"/*; do
      [ -f "$a" ] || continue
      crashes=$((crashes + 1))
      # Keep the crash as a regression input: the suite's corpus test feeds it
      # through the same function on every `cargo test`.
      cp "$a" "fuzz/corpus-regressions/$target/$(basename "$a")"
    done
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
    [ "$crashes" -eq 0 ] || status=1
    fuzz_lines+=("PROMISE fuzz_$target trials=${runs:-0} violations=$crashes secs=$FUZZ_SECS")
  done
else
  fuzz_lines+=("PROMISE fuzz (cargo-fuzz) skipped: no nightly cargo-fuzz, or FUZZ_SECS=0")
fi

echo
echo "== promises (trials run, violations found)"
lines=$(grep -E '^PROMISE ' "$log" | sort -u)
printf '%s\n' "$lines"
printf '%s\n' "${fuzz_lines[@]}"
if grep -E '^PROMISE ' "$log" | grep -vq 'violations=0'; then status=1; fi
grep -E '^test .* FAILED$|^failures:$' "$log" >/dev/null && {
  echo
  echo "== failing tests"
  grep -E '^test .* FAILED$' "$log"
  status=1
}
echo
if [ "$status" -eq 0 ]; then echo "reliability: every promise held"; else echo "reliability: VIOLATIONS (see $log)"; fi
exit "$status"
