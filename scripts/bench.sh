#!/usr/bin/env bash
# Benchmarks (`npm run bench`): each prints its figures. Starts the servers they need.
# A subset by name: `npm run bench -- suite` (history, suite, inflight, scale-out, argo, sql, others).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GLIDEPATH_ROOT"
bash scripts/setup.sh
source scripts/env.sh
source scripts/servers.sh
# bench/inflight-real.ts keeps up to 2,000 kwok pods: 110 per node.
export GLIDEPATH_KUBE_NODES="${GLIDEPATH_KUBE_NODES:-20}"
all_benches=(history suite inflight scale-out argo sql others)
declare -A parts_of=([history]="" [suite]="kube" [inflight]="temporal kube" [scale-out]="temporal kube" [argo]="temporal kube"
  [sql]="temporal kube temporal-sql" [others]="temporal kube prometheus chromium build traefik")
if [ "$#" -eq 0 ]; then set -- "${all_benches[@]}"; fi
parts=()
for name in "$@"; do
  [ -n "${parts_of[$name]+set}" ] || { echo "bench: unknown benchmark '$name' (one of: ${all_benches[*]})" >&2; exit 2; }
  for part in ${parts_of[$name]}; do [[ " ${parts[*]} " == *" $part "* ]] || parts+=("$part"); done
done
chosen=" $* "
wanted() { [[ "$chosen" == *" $1 "* ]]; }
servers_up "${parts[@]}"

if wanted history; then
  step "history events per canary step"
  node bench/history-events.ts
fi

if wanted suite; then
  step "wall time of the state-machine suite (time skipping)"
  # The workflow bundle is built (or found unchanged in the cache) once, inside the timing; then the
  # files run in parallel, each a process with its own worker, on one Java test server per lane: the
  # global setup starts them, and the files of a lane use its server one after another
  # (test/support/time-skipping-pool.ts). CPU is user + system time of every process of the run (test
  # files, the runner, the JVMs): on a shared machine the wall time follows the load, the CPU time much less.
  jobs="${GLIDEPATH_BENCH_JOBS:-$(nproc)}"
  # The runner starts files in the order given, a file whenever a lane frees: the longest first, so no
  # long file starts last and runs alone (each alone on a quiet machine, 2026-12-02: these 7.5-11 s; the rest 2.6-5.6 s).
  longest=(group semantics api-version canary bounded-state)
  suite_files=()
  for name in "${longest[@]}"; do suite_files+=("test/workflows/$name.test.ts"); done
  for f in test/workflows/*.test.ts; do [[ " ${suite_files[*]} " == *" $f "* ]] || suite_files+=("$f"); done
  export NODE_COMPILE_CACHE="${NODE_COMPILE_CACHE:-$GLIDEPATH_CACHE/node-compile-cache}"
  suite_log=$(mktemp) suite_time=$(mktemp)
  TIMEFORMAT='%R %U %S'
  if ! { time {
    node test/support/workflow-bundle.ts >/dev/null 2>>"$suite_log" &&
      GLIDEPATH_TEST_SERVER_LANES="$jobs" node --test --test-concurrency="$jobs" --test-global-setup=test/support/time-skipping-servers.ts \
        "${suite_files[@]}" >"$suite_log" 2>&1
  }; } 2>"$suite_time"; then
    tail -n 60 "$suite_log" >&2
    echo "state-machine suite failed (log: $suite_log)" >&2
    exit 1
  fi
  read -r wall user sys <"$suite_time"
  servers=$(sed -n 's/^time-skipping test servers: \([0-9]*\) shared.*/\1/p' "$suite_log" | tail -n 1)
  # A file that leaves the server's clock locked costs a 5-s check and its lane (time-skipping-pool.ts).
  retired=$(grep -c 'its lane is not used again' "$suite_log" || true)
  printf 'state-machine-suite: %.1f s wall time, %.1f s CPU (user+sys), %d files, %d tests, %d at a time on %d test servers (%d retired), bundling included (goal ≤ 60 s; load average %s)\n' \
    "$wall" "$(echo "$user + $sys" | bc)" "$(ls test/workflows/*.test.ts | wc -l)" "$(sed -n 's/^ℹ tests //p' "$suite_log" | tail -n 1)" "$jobs" "${servers:-0}" "$retired" "$(cut -d' ' -f1 /proc/loadavg)"
  rm -f "$suite_log" "$suite_time"
fi

if wanted inflight; then
  step "in-flight memory of the real worker (real activities, kwok), 200 and 1,000 paused releases"
  BENCH_RELEASES="${BENCH_RELEASES:-200,1000}" node bench/inflight-real.ts
fi

if wanted scale-out; then
  step "scale out: 300 paused releases on 3 workers, one SIGKILLed while 100 promotions are in flight (per-worker share, takeover time)"
  node bench/scale-out.ts
fi

if wanted argo; then
  step "Glidepath vs Argo Rollouts on the same control plane: 5-step canaries with 1 s pauses, a burst to the first pause (time, peak RSS)"
  # The Argo Rollouts controller is built from the Go module proxy (cached after the first build); the bench
  # applies its CRDs and runs the controller only while the Argo half runs.
  argo_rollouts=$(bash scripts/provision-argo-rollouts.sh)
  ARGO_ROLLOUTS="$argo_rollouts" node bench/argo-compare.ts
fi

if wanted sql; then
  step "scale out on a SQL-backed Temporal (temporal-server + PostgreSQL): the same, then the server restarted while the promotions are in flight"
  # Its own ports (frontend and the next five, four membership ports, PostgreSQL): the dev server above keeps TEMPORAL_PORT.
  sql_port="${GLIDEPATH_BENCH_SQL_PORT:-41233}"
  started_servers+=(temporal-sql) # servers_down stops it if anything below fails
  TEMPORAL_PORT=$sql_port TEMPORAL_SQL_MEMBERSHIP_PORT="${GLIDEPATH_BENCH_SQL_MEMBERSHIP_PORT:-31233}" \
    TEMPORAL_SQL_PG_PORT="${GLIDEPATH_BENCH_SQL_PG_PORT:-55432}" bash scripts/temporal-sql.sh up
  TEMPORAL_ADDRESS="127.0.0.1:$sql_port" node bench/scale-out.ts
  TEMPORAL_ADDRESS="127.0.0.1:$sql_port" BENCH_RESTART_SERVER=1 node bench/scale-out.ts
  bash scripts/temporal-sql.sh down
fi

if wanted others; then
  for b in bench/*.ts; do
    case "$b" in bench/history-events.ts | bench/inflight-real.ts | bench/scale-out.ts | bench/argo-compare.ts) continue ;; esac
    step "$b"
    node "$b"
  done
fi
