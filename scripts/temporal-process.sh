# Sourced by dev-server.sh and temporal-sql.sh: what both Temporal servers' scripts need to find their
# process, fail with its log, and check the namespace's search attributes. The caller sets:
#   pid_file, log_file     where the server's pid and output are
#   server_cmdline         an extended regex its command line matches (so a reused pid is not ours)
#   stop_on_failure_with   the caller's stop function, run by fail_with_log when stop_on_failure is set
#   temporal, address, search_attributes   the CLI's path, the frontend, the attributes to find
# and defines log(); stop_pid also reads stop_timeout.

# The pid from the pid file, if that process is still our server.
running_pid() {
  local pid
  [ -f "$pid_file" ] || return 1
  pid=$(cat "$pid_file" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "$server_cmdline" || return 1
  echo "$pid"
}

fail_with_log() {
  log "$1"
  [ -n "${stop_on_failure:-}" ] && { "$stop_on_failure_with" || true; }
  if [ -f "$log_file" ]; then
    log "last lines of $log_file:"
    tail -n 40 "$log_file" | sed 's/^/  | /' >&2
  fi
  exit 1
}

# Names of the search attributes the namespace lacks (one per line); fails if the frontend does not answer.
missing_search_attributes() {
  local list sa
  list=$("$temporal" operator search-attribute list --address "$address" --namespace default \
    --command-timeout 5s -o json 2>/dev/null) || return 1
  for sa in "${search_attributes[@]}"; do
    grep -q "\"$sa\"" <<<"$list" || echo "$sa"
  done
}

# Sends $2 (TERM) to pid $1 and waits for it to exit; KILL after $stop_timeout s.
stop_pid() {
  local pid=$1 signal=${2:-TERM} i
  kill "-$signal" "$pid" 2>/dev/null || true
  for ((i = 0; i < stop_timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid still alive after ${stop_timeout}s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
}
