#!/usr/bin/env bash
# Local Temporal dev server (`temporal server start-dev`, Web UI included) on 127.0.0.1 only.
#   bash scripts/dev-server.sh start    start in the background (survives this shell) and wait until ready
#   bash scripts/dev-server.sh wait     wait until a started server is ready
#   bash scripts/dev-server.sh status   exit 0 if running (prints where), 3 if not
#   bash scripts/dev-server.sh stop     TERM, then KILL after $TEMPORAL_STOP_TIMEOUT s; fine when not running
# Ready = the frontend answers gRPC, the Glidepath search attributes are registered, and the Web UI
# answers (its API reaches the frontend).
# State: $GLIDEPATH_STATE/temporal/{dev.sqlite,server.log,server.pid}; workflows survive restarts.
# Env: TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233), TEMPORAL_START_TIMEOUT (60 s),
#      TEMPORAL_STOP_TIMEOUT (15 s), TEMPORAL_LOG_LEVEL (warn).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

state="$GLIDEPATH_STATE/temporal"
db="$state/dev.sqlite"
log_file="$state/server.log"
pid_file="$state/server.pid"
ports_file="$state/server.ports" # "<port> <ui port>" of the running server, for wait/status without the env
ip=127.0.0.1
start_timeout="${TEMPORAL_START_TIMEOUT:-60}"
stop_timeout="${TEMPORAL_STOP_TIMEOUT:-15}"
search_attributes=(GlidepathService GlidepathPhase GlidepathImage GlidepathGroup GlidepathCommit) # all Keyword

log() { echo "dev-server: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/$ip/$1") 2>/dev/null; }
temporal=""
need_temporal() { [ -n "$temporal" ] || temporal=$(bash "$here/provision-temporal-cli.sh"); }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

server_cmdline='server start-dev'
stop_on_failure_with=do_stop
source "$here/temporal-process.sh"

# The Web UI answers and its backend reaches the frontend (it dials once at start, then backs off ~1 s).
ui_ready() {
  if command -v curl >/dev/null; then
    curl -sf --max-time 2 -o /dev/null "http://$ip:$ui_port/api/v1/namespaces/default"
  else
    port_open "$ui_port"
  fi
}

# Wait until the server is ready. $1 = "start" also registers search attributes a pre-existing database
# lacks (start-dev's --search-attribute applies only when it creates the namespace).
wait_ready() {
  local mode=${1:-wait} missing="unknown (no answer)" sa deadline=$((SECONDS + start_timeout)) registered=""
  need_temporal
  while :; do
    running_pid >/dev/null || fail_with_log "the server is not running (no live pid in $pid_file)"
    if port_open "$port" && missing=$(missing_search_attributes); then
      if [ -z "$missing" ]; then
        ui_ready && return 0
      elif [ "$mode" = start ] && [ -z "$registered" ]; then
        registered=1
        for sa in $missing; do
          log "registering search attribute $sa (Keyword)"
          "$temporal" operator search-attribute create --address "$address" --namespace default \
            --command-timeout 10s --name "$sa" --type Keyword >&2 || true
        done
      fi
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail_with_log \
      "not ready after ${start_timeout}s (frontend $address; search attributes missing: ${missing//$'\n'/ }; UI port $ui_port)"
    sleep 0.2
  done
}

do_start() {
  local pid started args sa p
  mkdir -p "$state"
  if pid=$(running_pid); then
    log "already running (pid $pid)"
    wait_ready start
    return 0
  fi
  rm -f "$pid_file"
  for p in "$port" "$ui_port"; do
    if port_open "$p"; then log "port $ip:$p is already in use by another process (set TEMPORAL_PORT / TEMPORAL_UI_PORT)"; exit 1; fi
  done
  need_temporal
  started=$(now_ms)
  args=(server start-dev --ip "$ip" --port "$port" --ui-port "$ui_port" --db-filename "$db"
    --log-level "${TEMPORAL_LOG_LEVEL:-warn}" --color never
    --dynamic-config-value frontend.enableServerVersionCheck=false)
  for sa in "${search_attributes[@]}"; do args+=(--search-attribute "$sa=Keyword"); done
  echo "$port $ui_port" >"$ports_file"
  echo "=== $(date -u +%FT%TZ) dev-server start: $temporal ${args[*]}" >>"$log_file"
  # setsid + nohup: own session, immune to the caller's hangup; the shell writes its pid and execs the server.
  # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pid_file" "$temporal" "${args[@]}" \
    </dev/null >>"$log_file" 2>&1 &
  disown
  for _ in $(seq 50); do [ -s "$pid_file" ] && break; sleep 0.1; done
  stop_on_failure=1 # a server that never got ready is stopped, so the next start begins afresh
  wait_ready start
  stop_on_failure=
  log "ready in $(($(now_ms) - started)) ms: frontend $address, UI http://$ip:$ui_port (pid $(running_pid))"
}

do_stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pid_file" "$ports_file"
    log "not running"
    return 0
  fi
  stop_pid "$pid" TERM
  rm -f "$pid_file" "$ports_file"
  echo "=== $(date -u +%FT%TZ) dev-server stopped (pid $pid)" >>"$log_file"
  log "stopped (pid $pid)"
}

do_status() {
  local pid
  if pid=$(running_pid); then
    echo "running (pid $pid): frontend $address, UI http://$ip:$ui_port, db $db, log $log_file"
  else
    echo "not running"
    return 3
  fi
}

# Ports: the environment's, else those the running server was started with, else the defaults.
rec_port="" rec_ui_port=""
if running_pid >/dev/null && [ -f "$ports_file" ]; then read -r rec_port rec_ui_port <"$ports_file" || true; fi
port="${TEMPORAL_PORT:-${rec_port:-7233}}"
ui_port="${TEMPORAL_UI_PORT:-${rec_ui_port:-8233}}"
address="$ip:$port"

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  wait)
    wait_ready wait
    log "ready: frontend $address, UI http://$ip:$ui_port"
    ;;
  *)
    echo "usage: $0 start|stop|status|wait" >&2
    exit 2
    ;;
esac
