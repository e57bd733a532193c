#!/usr/bin/env bash
# Wall time of the state-machine suite (test/workflows/*.test.ts) under time skipping, as
# `npm run bench` reports it. Needs GLIDEPATH_TEST_SERVER (scripts/bench.sh and scripts/test.sh
# export it; alone: export GLIDEPATH_TEST_SERVER=$(bash scripts/provision-test-server.sh)).
# GLIDEPATH_BENCH_JOBS: how many processes (default: one per core).
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
cd "$GLIDEPATH_ROOT"
# The workflow bundles are built (or found unchanged in the cache) once, inside the timing; then the
# files are dealt, largest first, to $jobs processes that run in parallel, each running its files one
# after another on one Java test server and one worker per set of activities (test/workflows/harness.ts).
jobs="${GLIDEPATH_BENCH_JOBS:-$(nproc)}"
logs=$(mktemp -d)
t0=$(date +%s.%N)
node test/support/workflow-bundle.ts >/dev/null
node test/support/workflow-bundle.ts test/workflows/group/stub-workflows.ts >/dev/null
shards=() sizes=()
for f in $(ls -S test/workflows/*.test.ts); do
  i=0
  for ((k = 1; k < jobs; k++)); do (( ${sizes[k]:-0} < ${sizes[i]:-0} )) && i=$k; done
  shards[i]="${shards[i]:-} $f"
  sizes[i]=$(( ${sizes[i]:-0} + $(stat -c %s "$f") ))
done
pids=()
for ((k = 0; k < jobs; k++)); do
  [ -n "${shards[k]:-}" ] || continue
  # shellcheck disable=SC2086 # the shard is a list of paths without spaces
  node --test --test-isolation=none ${shards[k]} >"$logs/$k.log" 2>&1 &
  pids+=("$!")
done
failed=0
for k in "${!pids[@]}"; do wait "${pids[k]}" || { failed=1; echo "state-machine suite failed in:${shards[k]}" >&2; grep -E '^# (pass|fail)|^not ok' "$logs/$k.log" >&2 || true; }; done
t1=$(date +%s.%N)
rm -rf "$logs"
[ "$failed" = 0 ] || exit 1
printf 'state-machine-suite: %.1f s wall time, %d files in %d processes, bundling included (goal ≤ 60 s; load average %s)\n' \
  "$(echo "$t1 - $t0" | bc)" "$(ls test/workflows/*.test.ts | wc -l)" "${#pids[@]}" "$(cut -d' ' -f1 /proc/loadavg)"
