#!/usr/bin/env bash
# Benchmarks (`npm run bench`): each prints its figures. Starts the servers they need.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GLIDEPATH_ROOT"
bash scripts/setup.sh
source scripts/env.sh
source scripts/servers.sh
# bench/inflight-real.ts keeps up to 2,000 kwok pods: 110 per node.
export GLIDEPATH_KUBE_NODES="${GLIDEPATH_KUBE_NODES:-20}"
servers_up temporal kube prometheus chromium build traefik

step "history events per canary step"
node bench/history-events.ts

step "wall time of the state-machine suite (time skipping)"
# The workflow bundle is built (or found unchanged in the cache) once, inside the timing; then the
# files run in parallel, each with its own Java test server and worker.
jobs="${GLIDEPATH_BENCH_JOBS:-$(nproc)}"
t0=$(date +%s.%N)
node test/support/workflow-bundle.ts >/dev/null
node --test --test-concurrency="$jobs" test/workflows/*.test.ts >/dev/null 2>&1 || { echo "state-machine suite failed" >&2; exit 1; }
t1=$(date +%s.%N)
printf 'state-machine-suite: %.1f s wall time, %d files, %d at a time, bundling included (goal ≤ 60 s; load average %s)\n' \
  "$(echo "$t1 - $t0" | bc)" "$(ls test/workflows/*.test.ts | wc -l)" "$jobs" "$(cut -d' ' -f1 /proc/loadavg)"

step "in-flight memory of the real worker (real activities, kwok), 200 and 1,000 paused releases"
BENCH_RELEASES="${BENCH_RELEASES:-200,1000}" node bench/inflight-real.ts

for b in bench/*.ts; do
  case "$b" in bench/history-events.ts | bench/inflight-real.ts) continue ;; esac
  step "$b"
  node "$b"
done
