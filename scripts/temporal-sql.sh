#!/usr/bin/env bash
# A production-shaped Temporal on 127.0.0.1 only: PostgreSQL (Debian's) holding the persistence and
# visibility databases, and temporal-server (scripts/provision-temporal-server.sh) running all four
# services (frontend, history, matching, worker) in one process, each on its own ports.
#   bash scripts/temporal-sql.sh up              initdb + start PostgreSQL, create/migrate the schemas with
#                                                temporal-sql-tool, write the server config, start the server,
#                                                register the namespace and search attributes, wait until ready
#   bash scripts/temporal-sql.sh down            stop the server and PostgreSQL, remove everything `up` made
#   bash scripts/temporal-sql.sh status          exit 0 if both run (prints where), 3 if not
#   bash scripts/temporal-sql.sh env             prints `export TEMPORAL_ADDRESS=...` for eval
#   bash scripts/temporal-sql.sh restart-server [--kill]
#                                                stop (TERM, or KILL with --kill) and start the server only;
#                                                PostgreSQL keeps the state; prints how long it was down
# Ready = the frontend answers the health check, namespace `default` exists with Glidepath's search
# attributes, and visibility answers a list.
# State: $GLIDEPATH_STATE/temporal-sql/{pg/,config/,server.log,postgres.log,server.pid,ports}.
# Env: TEMPORAL_PORT (7233): the frontend's gRPC port; history, matching and worker gRPC, the frontend's
#      HTTP API and the Prometheus metrics take the next five.
#      TEMPORAL_SQL_MEMBERSHIP_PORT (6933, or TEMPORAL_PORT - 300): the first of four membership ports
#      (frontend, history, matching, worker). They must be below 32768: the PostgreSQL schema stores
#      them as SMALLINT (cluster_membership.rpc_port), and the server exits at start otherwise
#      ("value "41237" is out of range for type smallint").
#      TEMPORAL_SQL_PG_PORT (55432), TEMPORAL_SQL_HISTORY_SHARDS (4; fixed once the database exists),
#      TEMPORAL_START_TIMEOUT (120 s), TEMPORAL_STOP_TIMEOUT (30 s), TEMPORAL_LOG_LEVEL (warn).
# PostgreSQL refuses to run as root (initdb: "cannot be run as root"): as root it runs as the
# `postgres` user the Debian package creates.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

state="$GLIDEPATH_STATE/temporal-sql"
pgdata="$state/pg"
pid_file="$state/server.pid"
ports_file="$state/ports" # "<frontend port> <pg port> <membership port>" of what runs, for status/down without the env
log_file="$state/server.log"
pg_log="$state/postgres.log"
ip=127.0.0.1
pg_major="${GLIDEPATH_POSTGRES_MAJOR:-15}"
pg_bin="/usr/lib/postgresql/$pg_major/bin"
start_timeout="${TEMPORAL_START_TIMEOUT:-120}"
stop_timeout="${TEMPORAL_STOP_TIMEOUT:-30}"
# workers/search-attributes.ts registers the same list (all Keyword).
search_attributes=(GlidepathService GlidepathPhase GlidepathImage GlidepathGroup GlidepathCommit)

log() { echo "temporal-sql: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/$ip/$1") 2>/dev/null; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
server_dir="" temporal=""
need_server() { [ -n "$server_dir" ] || server_dir=$(bash "$here/provision-temporal-server.sh"); }
need_cli() { [ -n "$temporal" ] || temporal=$(bash "$here/provision-temporal-cli.sh"); }

# PostgreSQL commands run as `postgres` when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_running() { [ -f "$pgdata/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; }

server_cmdline='temporal-server.* start'
stop_on_failure_with=stop_server
source "$here/temporal-process.sh"

start_postgres() {
  local pw
  mkdir -p "$state"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$state"; fi
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    # A random password for the `temporal` role, readable only by its owner; host connections need it.
    pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    as_pg sh -c 'umask 077; cat >"$1"' _ "$state/pg.password" <<<"$pw"
    as_pg "$pg_bin/initdb" -D "$pgdata" -U temporal --pwfile="$state/pg.password" --auth=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 || { cat "$state/initdb.log" >&2; log "initdb failed"; exit 1; }
  fi
  pg_running && return 0
  for p in "$pg_port"; do port_open "$p" && { log "port $ip:$p is in use by another process (set TEMPORAL_SQL_PG_PORT)"; exit 1; }; done
  # Loopback TCP only, no Unix socket; more connections than the default 100 for the server's pools.
  as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$pg_log" -w -t 60 \
    -o "-c listen_addresses=$ip -p $pg_port -c unix_socket_directories='' -c max_connections=300 -c shared_buffers=256MB" \
    start >&2 || { tail -n 20 "$pg_log" >&2; log "PostgreSQL did not start"; exit 1; }
}

stop_postgres() {
  pg_running || return 0
  as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >&2
}

# Create and migrate both databases (update-schema applies only the versions not applied yet).
migrate() {
  local db dir
  need_server
  # The password by environment, not on a command line other users can read.
  SQL_PASSWORD=$(as_pg cat "$state/pg.password")
  export SQL_PASSWORD
  local tool=("$server_dir/bin/temporal-sql-tool" --plugin postgres12 --ep "$ip" -p "$pg_port" -u temporal)
  for db in temporal temporal_visibility; do
    dir=temporal
    [ "$db" = temporal_visibility ] && dir=visibility
    # Each step is idempotent (v1.29.1 exits 0 on a database that exists and a schema that is set up).
    { "${tool[@]}" --db "$db" create && "${tool[@]}" --db "$db" setup-schema -v 0.0 &&
      "${tool[@]}" --db "$db" update-schema -d "$server_dir/schema/postgresql/v12/$dir/versioned"; } >>"$state/migrate.log" 2>&1 ||
      { tail -n 20 "$state/migrate.log" >&2; log "schema migration of $db failed"; exit 1; }
  done
}

write_config() {
  local pw
  pw=$(as_pg cat "$state/pg.password")
  mkdir -p "$state/config/dynamicconfig"
  cat >"$state/config/dynamicconfig/glidepath.yaml" <<'EOF'
# No calls home (the version check reaches temporal.io).
frontend.enableServerVersionCheck:
  - value: false
# New search attributes are usable at once.
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
EOF
  (
    umask 077
    cat >"$state/config/glidepath.yaml" <<EOF
# Written by scripts/temporal-sql.sh: all services in one process, loopback only, PostgreSQL.
log:
  stdout: true
  level: ${TEMPORAL_LOG_LEVEL:-warn}
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: ${TEMPORAL_SQL_HISTORY_SHARDS:-4}
  datastores:
    postgres-default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "$ip:$pg_port"
        connectProtocol: tcp
        user: temporal
        password: "$pw"
        maxConns: 40
        maxIdleConns: 40
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "$ip:$pg_port"
        connectProtocol: tcp
        user: temporal
        password: "$pw"
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "$ip"
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "$ip:$((port + 5))"
services:
  frontend:
    rpc: { grpcPort: $port, membershipPort: $membership_port, httpPort: $((port + 4)), bindOnIP: "$ip" }
  history:
    rpc: { grpcPort: $((port + 1)), membershipPort: $((membership_port + 1)), bindOnIP: "$ip" }
  matching:
    rpc: { grpcPort: $((port + 2)), membershipPort: $((membership_port + 2)), bindOnIP: "$ip" }
  worker:
    rpc: { grpcPort: $((port + 3)), membershipPort: $((membership_port + 3)), bindOnIP: "$ip" }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "$ip:$port"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: "$state/config/dynamicconfig/glidepath.yaml"
  pollInterval: 10s
EOF
  )
}

start_server() {
  local p
  need_server
  if running_pid >/dev/null; then return 0; fi
  rm -f "$pid_file"
  for p in $(seq "$port" $((port + 5))) $(seq "$membership_port" $((membership_port + 3))); do
    port_open "$p" && { log "port $ip:$p is in use by another process (set TEMPORAL_PORT, TEMPORAL_SQL_MEMBERSHIP_PORT)"; exit 1; }
  done
  echo "=== $(date -u +%FT%TZ) temporal-sql start" >>"$log_file"
  # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pid_file" \
    "$server_dir/bin/temporal-server" --root "$state" --config config --env glidepath --allow-no-auth start \
    </dev/null >>"$log_file" 2>&1 &
  disown
  for _ in $(seq 50); do [ -s "$pid_file" ] && break; sleep 0.1; done
}

# TERM (or $1 = KILL), then KILL after $TEMPORAL_STOP_TIMEOUT s.
stop_server() {
  local pid
  pid=$(running_pid) || { rm -f "$pid_file"; return 0; }
  stop_pid "$pid" "${1:-TERM}"
  rm -f "$pid_file"
  echo "=== $(date -u +%FT%TZ) temporal-sql server stopped (pid $pid, SIG${1:-TERM})" >>"$log_file"
}

# Wait until ready; registers the namespace and the search attributes when missing.
wait_ready() {
  local deadline missing="unknown (no answer)" stage="frontend health" sa
  need_cli # first: on a cold machine this builds the CLI, which the timeout does not cover
  deadline=$((SECONDS + start_timeout))
  while :; do
    running_pid >/dev/null || fail_with_log "the server is not running (no live pid in $pid_file)"
    if port_open "$port" && "$temporal" operator cluster health --address "$address" --command-timeout 3s >/dev/null 2>&1; then
      stage="namespace default"
      if "$temporal" operator namespace describe --address "$address" --namespace default --command-timeout 3s >/dev/null 2>&1 ||
        "$temporal" operator namespace create --address "$address" --namespace default --retention 72h --command-timeout 5s >/dev/null 2>&1; then
        stage="search attributes"
        if missing=$(missing_search_attributes); then
          for sa in $missing; do
            "$temporal" operator search-attribute create --address "$address" --namespace default \
              --command-timeout 10s --name "$sa" --type Keyword >/dev/null 2>&1 || true
          done
          if [ -z "$missing" ]; then
            stage="visibility list"
            "$temporal" workflow list --address "$address" --namespace default --limit 1 --command-timeout 5s >/dev/null 2>&1 && return 0
          fi
        fi
      fi
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail_with_log "not ready after ${start_timeout}s (frontend $address; waiting for: $stage)"
    sleep 0.3
  done
}

do_up() {
  local started
  started=$(now_ms)
  need_server # and PostgreSQL, when missing
  [ -x "$pg_bin/initdb" ] || { log "no $pg_bin/initdb (postgresql-$pg_major)"; exit 1; }
  mkdir -p "$state"
  echo "$port $pg_port $membership_port" >"$ports_file"
  start_postgres
  migrate
  write_config
  start_server
  stop_on_failure=1 # a server that never got ready is stopped; PostgreSQL and the data stay for a retry
  wait_ready
  stop_on_failure=
  log "ready in $(($(now_ms) - started)) ms: frontend $address, PostgreSQL $ip:$pg_port (server pid $(running_pid); log $log_file)"
}

do_down() {
  stop_server
  stop_postgres
  rm -rf "$state"
  log "stopped; removed $state"
}

do_restart_server() {
  local signal=TERM t0 t1
  [ "${1:-}" = --kill ] && signal=KILL
  running_pid >/dev/null || { log "the server is not running"; exit 3; }
  t0=$(now_ms)
  stop_server "$signal"
  t1=$(now_ms)
  start_server
  wait_ready
  log "restarted (SIG$signal): stopped in $((t1 - t0)) ms, ready again $(($(now_ms) - t1)) ms after, down $(($(now_ms) - t0)) ms in all (pid $(running_pid))"
}

do_status() {
  local pid ok=0
  if pg_running; then echo "PostgreSQL running: $ip:$pg_port, data $pgdata"; else echo "PostgreSQL not running"; ok=3; fi
  if pid=$(running_pid); then echo "temporal-server running (pid $pid): frontend $address, log $log_file"; else echo "temporal-server not running"; ok=3; fi
  return "$ok"
}

# Ports: the environment's, else those of what runs, else the defaults.
rec_port="" rec_pg_port="" rec_membership_port=""
if [ -f "$ports_file" ]; then read -r rec_port rec_pg_port rec_membership_port <"$ports_file" || true; fi
port="${TEMPORAL_PORT:-${rec_port:-7233}}"
pg_port="${TEMPORAL_SQL_PG_PORT:-${rec_pg_port:-55432}}"
membership_port="${TEMPORAL_SQL_MEMBERSHIP_PORT:-${rec_membership_port:-$((port - 300))}}"
if [ $((membership_port + 3)) -gt 32767 ] || [ "$membership_port" -lt 1024 ]; then
  log "membership ports $membership_port-$((membership_port + 3)): set TEMPORAL_SQL_MEMBERSHIP_PORT to 1024-32764 (PostgreSQL stores them as SMALLINT)"
  exit 2
fi
address="$ip:$port"

case "${1:-}" in
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  env) echo "export TEMPORAL_ADDRESS=$address" ;;
  restart-server) do_restart_server "${2:-}" ;;
  *)
    echo "usage: $0 up|down|status|env|restart-server [--kill]" >&2
    exit 2
    ;;
esac
