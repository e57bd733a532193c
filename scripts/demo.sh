#!/usr/bin/env bash
# The main job (`npm start`): the Temporal dev server with its Web UI, a local Kubernetes control
# plane, the Glidepath worker, Prometheus scraping the worker, the demo payment-gateway v1, and a
# canary to v2 (weights on an HTTPRoute) that waits for approval. Where it can (root, network
# namespaces, Traefik), live traffic: Traefik serves the route, the pods answer from a network namespace
# (dataplane/), and a bounded load (GLIDEPATH_DEMO_RATE req/s, default 20, for at most
# GLIDEPATH_DEMO_TRAFFIC_SECONDS, default 900) prints every 2 s who answered:
#   traffic  v1 90 % (36)  v2 10 % (4)  errors 0  | route stable 90 canary 10
# Otherwise one line `traffic: not shown: <why>`, and the rest runs as before. The traffic holds the
# machine-wide data-plane lock (/run/glidepath-dataplane.lock) while it runs; if another run holds it for
# more than GLIDEPATH_DATAPLANE_LOCK_WAIT s (60) the demo fails naming it. GLIDEPATH_DEMO_TRAFFIC=off: no traffic.
# Keeps everything running until Ctrl-C, SIGINT or SIGTERM (to npm, or to this script), which stops
# everything it started. `--detach-after-start` stops it all and exits 0 once the release waits for
# approval (a smoke run). Ports (all on 127.0.0.1; see README): TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233),
# GLIDEPATH_KUBE_APISERVER_PORT (16443), GLIDEPATH_ETCD_PORT (12379), GLIDEPATH_ETCD_PEER_PORT (12380),
# GLIDEPATH_METRICS_ADDRESS (9464), GLIDEPATH_CORE_METRICS_ADDRESS (9465), GLIDEPATH_PROMETHEUS_PORT (9090),
# GLIDEPATH_TRAEFIK_PORT (9080), GLIDEPATH_TRAEFIK_ADMIN_PORT (9081).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GLIDEPATH_ROOT"
detach=false
for a in "$@"; do
  case "$a" in
    --detach-after-start) detach=true ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
# A signal ends the script through its EXIT trap, which stops what it started. bash runs a trap when
# the foreground command it waits for returns, and at once while it sits in `wait`.
# Each signal trap ignores further signals before it exits: npm forwards the SIGINT a Ctrl-C also sent
# to the group, and a second one landing before the EXIT trap's first line would exit from inside it,
# leaving the servers running (CI saw it once).
trap 'trap "" INT TERM; exit 130' INT
trap 'trap "" INT TERM; exit 143' TERM
parent=$PPID # npm; if it goes (even by SIGKILL), so does the demo

bash scripts/setup.sh
source scripts/env.sh
source scripts/servers.sh
worker_pid="" prometheus_pid="" traffic_pid=""
stop_pid() { [ -n "$1" ] && kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
stop_all() {
  trap '' INT TERM # a second Ctrl-C does not cut the cleanup short
  stop_pid "$traffic_pid" # first: the load, Traefik, then the data plane (its guard route goes last)
  stop_pid "$prometheus_pid"
  stop_pid "$worker_pid"
  servers_down
}
servers_up temporal kube prometheus
# The live traffic (dataplane/demo-traffic.ts): returns once its load runs, or after the one line saying why
# there is none; exits the demo when the data plane fails (another run holding its lock, Traefik failing).
start_traffic() {
  if [ "${GLIDEPATH_DEMO_TRAFFIC:-on}" = off ]; then echo "traffic: not shown: GLIDEPATH_DEMO_TRAFFIC=off"; return; fi
  mkdir -p "$GLIDEPATH_STATE/traffic"
  if [ -z "${TRAEFIK_BIN:-}" ]; then
    step "provisioning Traefik (cached; a first run builds it from the Go module proxy, which takes long: README, Provisioning)"
    if ! TRAEFIK_BIN=$(bash scripts/provision-traefik.sh 2>"$GLIDEPATH_STATE/traffic/provision.log"); then
      echo "traffic: not shown: Traefik could not be provisioned ($(tail -1 "$GLIDEPATH_STATE/traffic/provision.log"))"
      return
    fi
    export TRAEFIK_BIN
  fi
  step "starting the traffic: data plane, Traefik, a bounded load"
  rm -f "$GLIDEPATH_STATE/traffic/ready"
  node dataplane/demo-traffic.ts &
  traffic_pid=$!
  local rc=0
  while [ ! -f "$GLIDEPATH_STATE/traffic/ready" ]; do
    if ! kill -0 "$traffic_pid" 2>/dev/null; then
      wait "$traffic_pid" || rc=$?
      traffic_pid=""
      [ "$rc" = 3 ] && return # not shown here; it said why
      echo "demo: the traffic did not start (exit $rc; see the traffic: line above)" >&2
      exit 1
    fi
    sleep 0.5 &
    wait $! || true
  done
}
trap stop_all EXIT
kubectl="$(bash scripts/provision-kube.sh)/kubectl"
metrics_address="${GLIDEPATH_METRICS_ADDRESS:-127.0.0.1:9464}"
core_metrics_address="${GLIDEPATH_CORE_METRICS_ADDRESS:-127.0.0.1:9465}"
prometheus_port="${GLIDEPATH_PROMETHEUS_PORT:-9090}"
ui="http://127.0.0.1:${TEMPORAL_UI_PORT:-8233}"

step "deploying payment-gateway v1"
"$kubectl" apply --server-side -f examples/demo/payment-gateway-v1.yaml >&2
"$kubectl" -n payments rollout status deployment/payment-gateway --timeout=120s >&2

start_traffic

step "starting the worker"
mkdir -p "$GLIDEPATH_STATE/worker"
GLIDEPATH_METRICS_ADDRESS="$metrics_address" GLIDEPATH_CORE_METRICS_ADDRESS="$core_metrics_address" \
  node workers/main.ts >"$GLIDEPATH_STATE/worker/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 1 60); do
  grep -q '"worker started"' "$GLIDEPATH_STATE/worker/worker.log" 2>/dev/null && break
  kill -0 "$worker_pid" 2>/dev/null || { tail -20 "$GLIDEPATH_STATE/worker/worker.log" >&2; exit 1; }
  sleep 1
done

step "starting Prometheus (scrapes the worker's $metrics_address/metrics)"
prom="$GLIDEPATH_STATE/prometheus"
mkdir -p "$prom/data"
cat >"$prom/prometheus.yml" <<YAML
global: { scrape_interval: 5s, evaluation_interval: 5s }
scrape_configs:
  - job_name: glidepath-worker
    static_configs: [{ targets: ['$metrics_address'] }]
YAML
"$PROMETHEUS_BIN" --config.file="$prom/prometheus.yml" --storage.tsdb.path="$prom/data" \
  --web.listen-address="127.0.0.1:$prometheus_port" >"$prom/prometheus.log" 2>&1 &
prometheus_pid=$!
for _ in $(seq 1 60); do
  curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$prometheus_port/-/ready" && break
  kill -0 "$prometheus_pid" 2>/dev/null || { tail -20 "$prom/prometheus.log" >&2; exit 1; }
  sleep 0.5
done

step "starting the canary to v2"
id=release_payments_payment-gateway
previous=$(bin/glidepath -o json release status "$id" 2>/dev/null | grep -o '"phase": "[A-Za-z]*"' | head -1 || true)
case "$previous" in
  *'"Progressing"'* | *'"Paused"'* | *'"AwaitingApproval"'* | *'"Analyzing"'*)
    echo "demo: $id is already in flight; showing it" >&2 ;;
  *)
    # An earlier demo's release that was aborted or rolled back waits for a retry: close it first
    # (as oncall, one of its aborters; a finished workflow is simply replaced).
    case "$previous" in *'"Aborted"'* | *'"RolledBack"'*) bin/glidepath release abort "$id" --as oncall --reason "npm start: a new demo release" >/dev/null ;; esac
    GLIDEPATH_USER=ci-bot bin/glidepath release start -f examples/demo/release.yaml ;;
esac
phase=unknown
for _ in $(seq 1 120); do
  phase=$(bin/glidepath -o json release status "$id" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).phase))')
  [ "$phase" = AwaitingApproval ] && break
  sleep 1
done
bin/glidepath release status "$id"
"$kubectl" -n payments get deployments -o wide

cat <<MSG

The canary of payment-gateway waits for approval (phase $phase).
  Temporal UI:   $ui/namespaces/default/workflows/$id
  Prometheus:    http://127.0.0.1:$prometheus_port/graph?g0.expr=glidepath_releases (worker metrics: http://$metrics_address/metrics)
  Approve:       bin/glidepath release approve $id --as alice --reason "dashboards green"
  Or abort:      bin/glidepath release abort $id --as oncall --reason "latency"
  Follow it:     bin/glidepath release watch $id
  The cluster:   $kubectl --kubeconfig $KUBECONFIG -n payments get deploy,pods
MSG
[ "$phase" = AwaitingApproval ] || { echo "demo: the release did not reach AwaitingApproval (phase $phase); worker log: $GLIDEPATH_STATE/worker/worker.log" >&2; exit 1; }
if [ "$detach" = true ]; then exit 0; fi
echo "Everything keeps running until Ctrl-C." >&2
# Sleep in short `wait`s (a trapped signal interrupts `wait` at once) and stop when the worker exits
# or the parent npm is gone.
while kill -0 "$worker_pid" 2>/dev/null; do
  [ "$(ps -o ppid= -p $$ | tr -d ' ')" = "$parent" ] || { echo "demo: the parent process ($parent) is gone; stopping" >&2; exit 143; }
  sleep 1 &
  wait $! || true
done
echo "demo: the worker exited; stopping" >&2
exit 1
