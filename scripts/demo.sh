#!/usr/bin/env bash
# The main job (`npm start`): the Temporal dev server with its Web UI, a local Kubernetes control
# plane, Prometheus, the Glidepath worker, the demo payment-gateway v1, and a canary to v2 that
# waits for approval. Prints the UI link and the approve command, then keeps everything running
# until Ctrl-C (which stops what it started). `--detach-after-start` exits once the release waits
# for approval (used by the test suite).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GLIDEPATH_ROOT"
detach=false
for a in "$@"; do
  case "$a" in
    --detach-after-start) detach=true ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh
source scripts/env.sh
source scripts/servers.sh
worker_pid=""
stop_all() {
  [ -n "$worker_pid" ] && kill -TERM "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
  servers_down
}
servers_up temporal kube prometheus
trap stop_all EXIT
kubectl="$(bash scripts/provision-kube.sh)/kubectl"

step "deploying payment-gateway v1"
"$kubectl" apply --server-side -f examples/demo/payment-gateway-v1.yaml >&2
"$kubectl" -n payments rollout status deployment/payment-gateway --timeout=120s >&2

step "starting the worker"
mkdir -p "$GLIDEPATH_STATE/worker"
GLIDEPATH_METRICS_ADDRESS="${GLIDEPATH_METRICS_ADDRESS:-127.0.0.1:9464}" node workers/main.ts >"$GLIDEPATH_STATE/worker/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 1 60); do
  grep -q '"worker started"' "$GLIDEPATH_STATE/worker/worker.log" 2>/dev/null && break
  kill -0 "$worker_pid" 2>/dev/null || { tail -20 "$GLIDEPATH_STATE/worker/worker.log" >&2; exit 1; }
  sleep 1
done

step "starting the canary to v2"
id=release-payments-payment-gateway
if bin/glidepath -o json release status "$id" 2>/dev/null | grep -q '"phase": "\(Progressing\|Paused\|AwaitingApproval\|Analyzing\)"'; then
  echo "demo: $id is already in flight; showing it" >&2
else
  GLIDEPATH_USER=ci-bot bin/glidepath release start -f examples/demo/release.yaml
fi
for _ in $(seq 1 120); do
  phase=$(bin/glidepath -o json release status "$id" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).phase))')
  [ "$phase" = AwaitingApproval ] && break
  sleep 1
done
bin/glidepath release status "$id"
"$kubectl" -n payments get deployments -o wide

cat <<MSG

The canary of payment-gateway waits for approval (phase $phase).
  Temporal UI:   http://127.0.0.1:8233/namespaces/default/workflows/$id
  Approve:       bin/glidepath release approve $id --as alice --reason "dashboards green"
  Or abort:      bin/glidepath release abort $id --as oncall --reason "latency"
  Follow it:     bin/glidepath release watch $id
  The cluster:   $kubectl --kubeconfig $KUBECONFIG -n payments get deploy,pods
MSG
[ "$phase" = AwaitingApproval ] || { echo "demo: the release did not reach AwaitingApproval (phase $phase); worker log: $GLIDEPATH_STATE/worker/worker.log" >&2; exit 1; }
if [ "$detach" = true ]; then exit 0; fi
echo "Everything keeps running until Ctrl-C." >&2
wait "$worker_pid"
