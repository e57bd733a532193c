#!/usr/bin/env bash
# The fleet demo (`npm run demo:fleet`): the Temporal dev server with its Web UI, three local
# Kubernetes control planes (staging, prod-eu, prod-us), a worker per cluster polling
# glidepath@<cluster> with that cluster's kubeconfig only, the group's own worker, the services
# ledger, payments and checkout on v1 in every cluster, and the ReleaseGroup examples/fleet/group.yaml
# (staging, an approval gate, then prod-eu and prod-us). Prints the links and the approve command,
# then keeps everything running until Ctrl-C, SIGINT or SIGTERM, which stops everything it started.
# `--detach-after-start` stops it all and exits 0 once the group waits at the gate (a smoke run).
# Ports (127.0.0.1): TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233); per cluster, in the order staging
# prod-eu prod-us: GLIDEPATH_FLEET_APISERVER_PORTS ("16443 17443 18443"), GLIDEPATH_FLEET_ETCD_PORTS
# ("12379 13379 14379"; each peer port is the next one); workers' metrics from GLIDEPATH_FLEET_METRICS_PORT
# (9464: two ports per worker, four workers). State: $GLIDEPATH_STATE/fleet/<cluster>.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GLIDEPATH_ROOT"
detach=false
for a in "$@"; do
  case "$a" in
    --detach-after-start) detach=true ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo-fleet: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
trap 'trap "" INT TERM; exit 130' INT # further signals ignored first: see scripts/demo.sh
trap 'trap "" INT TERM; exit 143' TERM
parent=$PPID

clusters=(staging prod-eu prod-us)
read -r -a api_ports <<<"${GLIDEPATH_FLEET_APISERVER_PORTS:-16443 17443 18443}"
read -r -a etcd_ports <<<"${GLIDEPATH_FLEET_ETCD_PORTS:-12379 13379 14379}"
metrics_port="${GLIDEPATH_FLEET_METRICS_PORT:-9464}"
[ "${#api_ports[@]}" = 3 ] && [ "${#etcd_ports[@]}" = 3 ] || { echo "demo-fleet: GLIDEPATH_FLEET_APISERVER_PORTS and GLIDEPATH_FLEET_ETCD_PORTS take three ports each" >&2; exit 2; }

bash scripts/setup.sh
source scripts/env.sh
source scripts/servers.sh
fleet_state="$GLIDEPATH_STATE/fleet"
worker_pids=() started_clusters=() up_pids=()
# cluster_env I: the environment of scripts/kube.sh for cluster I (its ports and state dir).
cluster_env() {
  echo "GLIDEPATH_STATE=$fleet_state/${clusters[$1]} GLIDEPATH_KUBE_APISERVER_PORT=${api_ports[$1]}" \
    "GLIDEPATH_ETCD_PORT=${etcd_ports[$1]} GLIDEPATH_ETCD_PEER_PORT=$((etcd_ports[$1] + 1)) GLIDEPATH_KUBE_NODES=1"
}
# kube_of I CMD...: scripts/kube.sh for cluster I.
kube_of() {
  local i=$1; shift
  # shellcheck disable=SC2046 # word splitting of the assignments is intended (no spaces in them)
  env $(cluster_env "$i") bash scripts/kube.sh "$@"
}
stop_all() {
  trap '' INT TERM # a second Ctrl-C does not cut the cleanup short
  local pid i
  for pid in "${worker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${worker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # A control plane still coming up stops coming up first; then each is taken down.
  for pid in "${up_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${up_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for i in "${started_clusters[@]}"; do kube_of "$i" down >&2 || true; done
  servers_down
}
servers_up temporal
trap stop_all EXIT
kubectl="$(bash scripts/provision-kube.sh)/kubectl"
ui="http://127.0.0.1:${TEMPORAL_UI_PORT:-8233}"

step "starting three control planes: ${clusters[*]}"
for i in 0 1 2; do
  mkdir -p "$fleet_state/${clusters[$i]}"
  if kube_of "$i" status >/dev/null 2>&1; then continue; fi
  started_clusters+=("$i")
  # The job is scripts/kube.sh itself (env execs it), so a signal reaches it, not a subshell.
  # shellcheck disable=SC2046
  env $(cluster_env "$i") bash scripts/kube.sh up >"$fleet_state/${clusters[$i]}/up.log" 2>&1 &
  up_pids+=($!)
done
for pid in "${up_pids[@]}"; do wait "$pid" || { tail -20 "$fleet_state"/*/up.log >&2; exit 1; }; done
up_pids=()
kubeconfig_of() { echo "$fleet_state/${clusters[$1]}/kube/kubeconfig"; }

step "deploying ledger, payments and checkout v1 in every cluster"
for i in 0 1 2; do
  "$kubectl" --kubeconfig "$(kubeconfig_of "$i")" apply --server-side -f examples/fleet/services-v1.yaml >&2
done
for i in 0 1 2; do
  for d in ledger payments checkout; do
    "$kubectl" --kubeconfig "$(kubeconfig_of "$i")" -n shop rollout status "deployment/$d" --timeout=120s >&2
  done
done

# start_worker NAME LOG ENV...: a worker with exactly the given environment additions, ready when it says so.
start_worker() {
  local name=$1 log=$2; shift 2
  env "$@" node workers/main.ts >"$log" 2>&1 &
  worker_pids+=($!)
  local pid=$! _
  for _ in $(seq 1 120); do
    grep -q '"worker started"' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "demo-fleet: the $name worker exited:" >&2; tail -20 "$log" >&2; exit 1; }
    sleep 1
  done
  echo "demo-fleet: the $name worker did not start in 120 s ($log)" >&2
  exit 1
}
step "building the workflow bundle once for the four workers"
bundle="$fleet_state/workflow-bundle.js"
node workers/bundle.ts "$bundle" >"$fleet_state/bundle.log" 2>&1 || { tail -20 "$fleet_state/bundle.log" >&2; exit 1; }
step "starting the workers: one per cluster (its own kubeconfig), one for the group"
mkdir -p "$fleet_state/workers"
none="$fleet_state/workers/no-cluster.kubeconfig"
cat >"$none" <<'YAML'
apiVersion: v1
kind: Config
clusters: [{ name: none, cluster: { server: "https://127.0.0.1:1" } }]
users: [{ name: none, user: {} }]
contexts: [{ name: none, context: { cluster: none, user: none } }]
current-context: none
YAML
start_worker group "$fleet_state/workers/group.log" KUBECONFIG="$none" GLIDEPATH_WORKFLOW_BUNDLE="$bundle" \
  GLIDEPATH_METRICS_ADDRESS="127.0.0.1:$metrics_port" GLIDEPATH_CORE_METRICS_ADDRESS="127.0.0.1:$((metrics_port + 1))"
for i in 0 1 2; do
  start_worker "${clusters[$i]}" "$fleet_state/workers/${clusters[$i]}.log" GLIDEPATH_CLUSTER="${clusters[$i]}" KUBECONFIG="$(kubeconfig_of "$i")" \
    GLIDEPATH_WORKFLOW_BUNDLE="$bundle" GLIDEPATH_METRICS_ADDRESS="127.0.0.1:$((metrics_port + 2 * i + 2))" GLIDEPATH_CORE_METRICS_ADDRESS="127.0.0.1:$((metrics_port + 2 * i + 3))"
done

step "starting the release group"
id=group_shop_shop
phase=$(bin/glidepath -o json group status "$id" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).phase)}catch{console.log("none")}})' || echo none)
case "$phase" in
  Running | Gate | Paused | Compensating) echo "demo-fleet: $id is already in flight; showing it" >&2 ;;
  *) GLIDEPATH_USER=ci-bot bin/glidepath group start -f examples/fleet/group.yaml ;;
esac
for _ in $(seq 1 300); do
  phase=$(bin/glidepath -o json group status "$id" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).phase))')
  case "$phase" in Gate | Promoted | RolledBack | Aborted | Failed) break ;; esac
  sleep 1
done
bin/glidepath group status "$id"

cat <<MSG

The group released staging and waits at its gate (phase $phase).
  Temporal UI:   $ui/namespaces/default/workflows/$id  (its children: GlidepathGroup = "shop/shop")
  Approve:       bin/glidepath group approve $id --as alice --reason "staging green"
  Or abort:      bin/glidepath group abort $id --as oncall --reason "latency"
  Follow it:     bin/glidepath group watch $id
  The clusters:  $kubectl --kubeconfig $(kubeconfig_of 1) -n shop get deploy -o wide   (staging: $(kubeconfig_of 0), prod-us: $(kubeconfig_of 2))
  Worker logs:   $fleet_state/workers/
MSG
[ "$phase" = Gate ] || { echo "demo-fleet: the group did not reach its gate (phase $phase); worker logs in $fleet_state/workers" >&2; exit 1; }
if [ "$detach" = true ]; then exit 0; fi
echo "Everything keeps running until Ctrl-C." >&2
while :; do
  for pid in "${worker_pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "demo-fleet: a worker exited; stopping" >&2; exit 1; }; done
  [ "$(ps -o ppid= -p $$ | tr -d ' ')" = "$parent" ] || { echo "demo-fleet: the parent process ($parent) is gone; stopping" >&2; exit 143; }
  sleep 1 &
  wait $! || true
done
