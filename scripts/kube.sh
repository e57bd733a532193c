#!/usr/bin/env bash
# A real local Kubernetes control plane for end-to-end tests, on 127.0.0.1 only:
#   etcd, kube-apiserver (TLS, RBAC, ServiceAccount tokens), kube-controller-manager, kube-scheduler,
#   and kwok (fake kubelet: fake Nodes, pods that go Running/Ready). Binaries come from scripts/provision-kube.sh.
#
# Usage: scripts/kube.sh up [--crds] | down [--purge] | status | env | crds
#   up      build binaries if needed, start a fresh cluster (empty etcd), wait until usable (readyz, default
#           ServiceAccount, Nodes Ready, a smoke Deployment fully available). Does nothing if already up.
#   down    stop everything (TERM, then KILL); safe when nothing runs. --purge also deletes the state dir.
#   status  one line per component; exit 0 if all run and the apiserver is ready, else 3.
#   env     prints `export KUBECONFIG=...` (eval "$(scripts/kube.sh env)").
#   crds    apply the pinned Istio, Gateway API, SMI and Traefik (TraefikService) CRDs (from the Go module cache) and wait until Established.
# Env: GLIDEPATH_KUBE_NODES (fake nodes, 2), GLIDEPATH_KUBE_API_QPS (the controllers' request rate; Kubernetes' default 20/s).
# State (pki, etcd data, logs, pids, kubeconfigs) lives in $GLIDEPATH_STATE/kube. Messages go to stderr.
set -euo pipefail
source "$(dirname "$0")/env.sh"

KUBE_DIR="$GLIDEPATH_STATE/kube"
PKI="$KUBE_DIR/pki"
KUBECONFIG_PATH="$KUBE_DIR/kubeconfig"
ETCD_PORT="${GLIDEPATH_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${GLIDEPATH_ETCD_PEER_PORT:-12380}"
APISERVER_PORT="${GLIDEPATH_KUBE_APISERVER_PORT:-16443}"
NODE_COUNT="${GLIDEPATH_KUBE_NODES:-2}"
SERVICE_CIDR="10.96.0.0/16"
SERVICE_IP="10.96.0.1"   # first address of SERVICE_CIDR: the `kubernetes` Service
# CRD sources (Go modules, fetched with `go mod download`, pinned here).
ISTIO_API_MODULE="istio.io/api@v1.31.1"
GATEWAY_API_MODULE="sigs.k8s.io/gateway-api@v1.6.3"   # v1.7.0 needs go >= 1.27
SMI_CRD_MODULE="github.com/openservicemesh/osm@v1.2.4" # smi-sdk-go ships only apiextensions/v1beta1 CRDs
TRAEFIK_CRD_MODULE="github.com/traefik/traefik/v3@v3.7.13" # its CRDs: docs/content/reference/dynamic-configuration
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { echo "kube: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Sets BIN to the directory of the built binaries (builds them if needed: see scripts/provision-kube.sh).
ensure_bin() { [ -n "${BIN:-}" ] || BIN=$("$GLIDEPATH_ROOT/scripts/provision-kube.sh") || die "provision-kube.sh failed"; }
kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
kwok_nodes_ready() {
  local ready
  ready=$(kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}') || return 1
  [ "$(grep -c '^True$' <<<"$ready")" -eq "$NODE_COUNT" ]
}

# ---------- processes ----------
pidfile() { echo "$KUBE_DIR/$1.pid"; }
# alive PID: the process exists and is not a zombie (exited, waiting for init to reap it).
alive() {
  local st
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}
# The pid of a component if it is running (and really is that program, not a reused pid).
running_pid() {
  local f pid
  f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "/$1 " || return 1
  echo "$pid"
}
# start NAME ARGS...: run bin/NAME in its own session, detached from this shell, logging to NAME.log.
start() {
  local name=$1; shift
  : > "$KUBE_DIR/$name.log"
  # The inner shell records its own pid, then execs the program (so the pid is the program's).
  setsid nohup bash -c 'echo $$ > "$0"; exec "$@"' "$(pidfile "$name")" "$BIN/$name" "$@" \
    >> "$KUBE_DIR/$name.log" 2>&1 < /dev/null &
  local i
  for i in $(seq 1 50); do [ -s "$(pidfile "$name")" ] && break; sleep 0.1; done
  log "started $name (pid $(cat "$(pidfile "$name")" 2>/dev/null || echo '?'), log $KUBE_DIR/$name.log)"
}
stop() {
  local name=$1 pid i
  pid=$(running_pid "$name") || { rm -f "$(pidfile "$name")"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    log "$name (pid $pid) did not stop after TERM in 10s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$(pidfile "$name")"
  log "stopped $name (pid $pid)"
}
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# The state dir (…/kube) a running control-plane process belongs to, from its arguments.
state_dir_of() {
  local -a args; mapfile -d '' -t args < "/proc/$1/cmdline" 2>/dev/null || return 1
  local i
  for ((i = 1; i < ${#args[@]} - 1; i++)); do
    case "${args[$i]}" in
      --data-dir) dirname "${args[$((i + 1))]}"; return 0 ;;                        # etcd: <dir>/etcd
      --client-ca-file) dirname "$(dirname "${args[$((i + 1))]}")"; return 0 ;;      # apiserver: <dir>/pki/ca.crt
      --kubeconfig) dirname "${args[$((i + 1))]}"; return 0 ;;                       # others: <dir>/NAME.kubeconfig
    esac
  done
  return 1
}
# term_all PID...: TERM them all, wait up to 10s for them to exit, KILL the rest.
term_all() {
  [ "$#" -gt 0 ] || return 0
  local pid i left
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 1 100); do
    left=0
    for pid in "$@"; do alive "$pid" && left=1; done
    [ "$left" = 1 ] || return 0
    sleep 0.1
  done
  for pid in "$@"; do alive "$pid" && { log "pid $pid did not stop after TERM in 10s; sending KILL"; kill -KILL "$pid" 2>/dev/null || true; }; done
  return 0
}
# Stop control-plane processes (binaries from $GLIDEPATH_CACHE/kube-*/bin) that no pid file tracks: left by a
# checkout whose state dir is gone (CI clones anew each run; a killed run leaves its cluster holding the ports),
# or by this checkout after its pid files were lost. A cluster of another checkout that still exists is left alone.
reap_orphans() {
  local p pid exe dir tracked name orphans=() orphan_etcd=()
  tracked=" "
  for name in "${COMPONENTS[@]}"; do tracked+="$(cat "$(pidfile "$name")" 2>/dev/null || true) "; done
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    alive "$pid" || continue
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    exe=${exe% (deleted)}
    case "$exe" in "$GLIDEPATH_CACHE"/kube-*/bin/*) ;; *) continue ;; esac
    case "$tracked" in *" $pid "*) continue ;; esac
    dir=$(state_dir_of "$pid") || continue
    if [ "$dir" = "$KUBE_DIR" ] || [ ! -d "$dir" ]; then
      log "stopping orphaned $(basename "$exe") (pid $pid) of $dir"
      if [ "$(basename "$exe")" = etcd ]; then orphan_etcd+=("$pid"); else orphans+=("$pid"); fi
    fi
  done
  term_all "${orphans[@]}"      # the apiserver stops slowly once etcd is gone: etcd last
  term_all "${orphan_etcd[@]}"
}

log_tails() {
  local name
  for name in "${COMPONENTS[@]}"; do
    [ -f "$KUBE_DIR/$name.log" ] || continue
    echo "----- last 25 lines of $KUBE_DIR/$name.log -----" >&2
    tail -n 25 "$KUBE_DIR/$name.log" >&2
  done
}
# On failure: show the log tails, then stop what was started (logs stay in $KUBE_DIR) unless
# GLIDEPATH_KUBE_KEEP_ON_FAILURE=1 asks to keep it running for a look.
fail() {
  log "ERROR: $*"
  log_tails
  if [ "${GLIDEPATH_KUBE_KEEP_ON_FAILURE:-0}" = 1 ]; then
    log "ERROR: $* (logs above and in $KUBE_DIR/*.log; left running: stop with scripts/kube.sh down)"
  else
    cmd_down 2>/dev/null
    log "ERROR: $* (logs above and in $KUBE_DIR/*.log; stopped everything)"
  fi
  exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds; also fail fast if a component died.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout)) name
  until "$@" >/dev/null 2>&1; do
    for name in "${STARTED[@]}"; do
      running_pid "$name" >/dev/null || fail "$name exited while waiting for $what"
    done
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${timeout}s waiting for $what"
    sleep 0.5
  done
}

# ---------- pki and kubeconfigs ----------
# cert NAME SUBJECT EXTENSIONS: key + certificate signed by the local CA (kept if present).
cert() {
  local name=$1 subj=$2 ext=$3
  [ -s "$PKI/$name.crt" ] && [ -s "$PKI/$name.key" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  printf '%b\n' "$ext" > "$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
  chmod 600 "$PKI/$name.key"
}
ensure_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [ ! -s "$PKI/ca.crt" ] || [ ! -s "$PKI/ca.key" ]; then
    log "creating CA, serving, client and service-account keys in $PKI"
    rm -f "$PKI"/*.crt "$PKI"/*.key "$PKI"/*.pub   # everything below is signed by / tied to this CA
    openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 -sha256 \
      -subj "/CN=glidepath-local-kube-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    chmod 600 "$PKI/ca.key"
  fi
  local server="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth"
  local client="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
  cert apiserver "/CN=kube-apiserver" "$server\nsubjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=glidepath-admin" "$client"
  cert controller-manager "/CN=system:kube-controller-manager" "$client"
  cert scheduler "/CN=system:kube-scheduler" "$client"
  # kwok plays every fake node's kubelet (node status, pod status, leases): cluster-admin is simplest.
  cert kwok "/O=system:masters/CN=kwok" "$client"
  if [ ! -s "$PKI/sa.key" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    chmod 600 "$PKI/sa.key"
  fi
  [ -s "$PKI/sa.pub" ] || openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}
# kubeconfig FILE USER CERTNAME: a kubeconfig with the CA and the client cert/key embedded.
kubeconfig() {
  local file=$1 user=$2 name=$3
  install -m 600 /dev/null "$file.tmp"
  cat > "$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: glidepath-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$name.crt")
    client-key-data: $(base64 -w0 < "$PKI/$name.key")
contexts:
- name: glidepath-local
  context:
    cluster: glidepath-local
    user: $user
current-context: glidepath-local
EOF
  mv "$file.tmp" "$file"
}

# ---------- checks ----------
apiserver_ready() {
  curl -sf --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" | grep -qx ok
}
etcd_healthy() { curl -sf --max-time 3 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
all_running() { local n; for n in "${COMPONENTS[@]}"; do running_pid "$n" >/dev/null || return 1; done; }
deployment_available() {
  local want ready
  want=$(kc get deployment "$1" -n "$2" -o jsonpath='{.spec.replicas}')
  ready=$(kc get deployment "$1" -n "$2" -o jsonpath='{.status.readyReplicas}')
  [ -n "$want" ] && [ "$want" = "$ready" ]
}

# ---------- commands ----------
cmd_up() {
  local with_crds=0 arg
  for arg in "$@"; do
    case "$arg" in
      --crds) with_crds=1 ;;
      *) die "up: unknown argument '$arg'" ;;
    esac
  done
  local t0=$SECONDS
  ensure_bin
  mkdir -p "$KUBE_DIR"
  if all_running && [ -s "$PKI/admin.crt" ] && apiserver_ready; then
    log "already up (KUBECONFIG=$KUBECONFIG_PATH)"
    [ "$with_crds" = 0 ] || cmd_crds
    return 0
  fi
  # Not (fully) up: stop any leftovers and start a fresh cluster. The etcd data is wiped so every `up` starts
  # from the same empty state; the pki (and so the kubeconfig) is kept.
  cmd_down
  rm -rf "$KUBE_DIR/etcd"
  local p
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT"; do
    port_busy "$p" && die "port 127.0.0.1:$p is already in use (another checkout's cluster? set GLIDEPATH_ETCD_PORT, GLIDEPATH_ETCD_PEER_PORT, GLIDEPATH_KUBE_APISERVER_PORT)"
  done
  ensure_pki
  kubeconfig "$KUBECONFIG_PATH" glidepath-admin admin
  kubeconfig "$KUBE_DIR/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  kubeconfig "$KUBE_DIR/scheduler.kubeconfig" system:kube-scheduler scheduler
  kubeconfig "$KUBE_DIR/kwok.kubeconfig" kwok kwok
  STARTED=()

  start etcd --name glidepath --data-dir "$KUBE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "glidepath=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
  STARTED+=(etcd)
  wait_for 60 "etcd health on 127.0.0.1:$ETCD_PORT" etcd_healthy

  # --endpoint-reconciler-type=none: the `kubernetes` Service keeps no Endpoints (127.0.0.1 is not a valid endpoint IP).
  # TaintNodesByCondition off: it taints new Nodes not-ready until the node-lifecycle controller clears it, and that
  # controller is not run here (it would mark the fake Nodes NotReady and evict pods whenever kwok lags on a busy machine).
  start kube-apiserver \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --endpoint-reconciler-type none \
    --disable-admission-plugins TaintNodesByCondition \
    --profiling=false --v 1
  STARTED+=(kube-apiserver)
  wait_for 120 "kube-apiserver /readyz on https://127.0.0.1:$APISERVER_PORT" apiserver_ready

  # Each controller's client is rate limited (Kubernetes' default: 20 requests/s, bursts of 30), which
  # bounds how fast thousands of Deployments become available; GLIDEPATH_KUBE_API_QPS lifts it (benches).
  local controller_rate=()
  [ -z "${GLIDEPATH_KUBE_API_QPS:-}" ] || controller_rate=(--kube-api-qps "$GLIDEPATH_KUBE_API_QPS" --kube-api-burst "$((GLIDEPATH_KUBE_API_QPS * 2))")
  start kube-controller-manager \
    --kubeconfig "$KUBE_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$KUBE_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$KUBE_DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 \
    --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --controllers "deployment-controller,replicaset-controller,serviceaccount-controller,serviceaccount-token-controller,namespace-controller,garbage-collector-controller,endpoints-controller,endpointslice-controller,root-ca-certificate-publisher-controller,pod-garbage-collector-controller,job-controller,statefulset-controller,daemonset-controller" \
    "${controller_rate[@]}" --profiling=false --v 1
  STARTED+=(kube-controller-manager)
  start kube-scheduler \
    --kubeconfig "$KUBE_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$KUBE_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$KUBE_DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 \
    --leader-elect=false --profiling=false --v 1
  STARTED+=(kube-scheduler)
  # No --server-address/--node-port: kwok opens no listener.
  start kwok --kubeconfig "$KUBE_DIR/kwok.kubeconfig" --config "$GLIDEPATH_ROOT/hack/kube/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake
  STARTED+=(kwok)

  local i nodes=""
  for i in $(seq 1 "$NODE_COUNT"); do
    nodes+="---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: \"0\"
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node-role.kubernetes.io/agent: \"\"
status:
  allocatable: {cpu: \"32\", memory: 256Gi, pods: \"110\"}
  capacity: {cpu: \"32\", memory: 256Gi, pods: \"110\"}
"
  done
  echo "$nodes" | kc apply -f - >&2 || fail "could not create the fake Nodes"
  wait_for 60 "the default ServiceAccount in namespace default" kc get serviceaccount default -n default
  # One read of every Node (`kubectl wait` checks them one by one within its timeout: with 20 it ran out).
  wait_for 60 "$NODE_COUNT Ready kwok Nodes" kwok_nodes_ready

  # Smoke test: a Deployment must become fully available (scheduler + controllers + kwok all work).
  kc delete deployment glidepath-smoke -n default --ignore-not-found --wait=true >&2
  kc create deployment glidepath-smoke -n default --image example/x:1 --replicas 2 >&2 || fail "could not create the smoke Deployment"
  wait_for 90 "the smoke Deployment to become available (2/2 ready)" deployment_available glidepath-smoke default
  kc delete deployment glidepath-smoke -n default --wait=true >&2

  [ "$with_crds" = 0 ] || cmd_crds
  log "up in $((SECONDS - t0))s; KUBECONFIG=$KUBECONFIG_PATH (eval \"\$(scripts/kube.sh env)\")"
}

cmd_down() {
  local purge=0 arg i
  for arg in "$@"; do
    case "$arg" in
      --purge) purge=1 ;;
      *) die "down: unknown argument '$arg'" ;;
    esac
  done
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop "${COMPONENTS[$i]}"; done
  reap_orphans
  if [ "$purge" = 1 ]; then rm -rf "$KUBE_DIR"; log "deleted $KUBE_DIR"; fi
}

cmd_status() {
  local name pid ok=0
  for name in "${COMPONENTS[@]}"; do
    if pid=$(running_pid "$name"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: stopped"; ok=3
    fi
  done
  if [ -s "$PKI/admin.crt" ] && apiserver_ready; then
    echo "apiserver: ready at https://127.0.0.1:$APISERVER_PORT (KUBECONFIG=$KUBECONFIG_PATH)"
  else
    echo "apiserver: not ready"; ok=3
  fi
  return "$ok"
}

cmd_env() { echo "export KUBECONFIG=$KUBECONFIG_PATH"; }

# module_dir MODULE@VERSION: the module's directory in the Go module cache (downloads it if missing).
module_dir() {
  local json dir
  if ! command -v go >/dev/null; then
    [ -x /usr/local/go/bin/go ] || die "go is needed on PATH to fetch $1 (the CRD bundle is not cached yet)"
    PATH="/usr/local/go/bin:$PATH"
  fi
  json=$(cd / && go mod download -json "$1") || die "go mod download $1 failed"
  dir=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download $1 gave no directory: $json"
  echo "$dir"
}
# select_crds FILE NAME...: the YAML documents of FILE that define the CRDs called NAME.
select_crds() {
  local file=$1; shift
  awk -v names="$*" '
    BEGIN { n = split(names, want, " "); for (i = 1; i <= n; i++) wanted[want[i]] = 1 }
    function flush() { if (doc != "" && keep) printf "---\n%s", doc; doc = ""; keep = 0 }
    /^---/ { flush(); next }
    { doc = doc $0 "\n" }
    /^  name: / { if (!seen_name && ($2 in wanted)) keep = 1; seen_name = 1 }
    /^metadata:/ { seen_name = 0 }
    END { flush() }
  ' "$file"
}
# The CRD documents, assembled once from the module cache and kept in $GLIDEPATH_CACHE, so a machine
# without Go starts the cluster from the cache.
# Gateway API (standard channel): HTTPRoute and GRPCRoute (the Gateway API router weights both) and what they
# need, plus the kinds a Gateway API proxy watches (Traefik answers 404 to everything while GRPCRoute,
# BackendTLSPolicy or TLSRoute is missing).
GATEWAY_API_CRDS="gatewayclasses gateways httproutes referencegrants grpcroutes backendtlspolicies tlsroutes"
CRD_BUNDLE="$GLIDEPATH_CACHE/kube-crds/$(echo "$ISTIO_API_MODULE $GATEWAY_API_MODULE $SMI_CRD_MODULE $TRAEFIK_CRD_MODULE" | tr '/@ ' '__-')-$(echo "$GATEWAY_API_CRDS" | cksum | cut -d' ' -f1).yaml"
crd_bundle() {
  [ -s "$CRD_BUNDLE" ] && return 0
  local istio gw smi traefik
  istio=$(module_dir "$ISTIO_API_MODULE")
  gw=$(module_dir "$GATEWAY_API_MODULE")
  smi=$(module_dir "$SMI_CRD_MODULE")
  traefik=$(module_dir "$TRAEFIK_CRD_MODULE")
  mkdir -p "$(dirname "$CRD_BUNDLE")"
  {
    select_crds "$istio/kubernetes/customresourcedefinitions.gen.yaml" \
      virtualservices.networking.istio.io destinationrules.networking.istio.io
    local f
    for f in $GATEWAY_API_CRDS; do
      echo "---"; cat "$gw/config/crd/standard/gateway.networking.k8s.io_$f.yaml"
    done
    echo "---"; cat "$smi/cmd/osm-bootstrap/crds/smi_traffic_split.yaml"
    printf "\n---\n"; cat "$traefik/docs/content/reference/dynamic-configuration/traefik.io_traefikservices.yaml"  # the SMI file has no final newline
  } > "$CRD_BUNDLE.$$"
  mv "$CRD_BUNDLE.$$" "$CRD_BUNDLE"
}
cmd_crds() {
  [ -s "$KUBECONFIG_PATH" ] && apiserver_ready || die "the cluster is not up (scripts/kube.sh up)"
  ensure_bin
  crd_bundle
  local tmp
  tmp=$(mktemp)
  cp "$CRD_BUNDLE" "$tmp"
  local names=(virtualservices.networking.istio.io destinationrules.networking.istio.io
    trafficsplits.split.smi-spec.io traefikservices.traefik.io)
  local f
  for f in $GATEWAY_API_CRDS; do names+=("$f.gateway.networking.k8s.io"); done
  local count
  count=$(grep -c '^kind: CustomResourceDefinition' "$tmp")
  [ "$count" = "${#names[@]}" ] || { rm -f "$tmp" "$CRD_BUNDLE"; die "expected ${#names[@]} CRDs from the modules, found $count"; }
  log "applying ${#names[@]} CRDs from $ISTIO_API_MODULE, $GATEWAY_API_MODULE, $SMI_CRD_MODULE, $TRAEFIK_CRD_MODULE"
  kc apply --server-side --force-conflicts -f "$tmp" >&2 || { rm -f "$tmp"; die "kubectl apply of the CRDs failed"; }
  rm -f "$tmp"
  local n
  for n in "${names[@]}"; do
    kc wait --for=condition=Established "crd/$n" --timeout=60s >&2 || die "CRD $n did not become Established"
  done
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  crds) cmd_crds ;;
  *) echo "usage: $0 up [--crds] | down [--purge] | status | env | crds" >&2; exit 2 ;;
esac
