#!/usr/bin/env bash
# Prometheus for the metric provider tests and the analysis benchmark, from Debian's packages.
# Installs the `prometheus` package when no binary is found (it is only the server binary we use: the
# package's systemd unit is not started here, and tests run their own instance on 127.0.0.1 with a temp
# data dir). Prints the binary's absolute path as the only stdout line:
#   export PROMETHEUS_BIN=$(bash scripts/provision-prometheus.sh)
# PROMETHEUS_BIN, when set to an executable, wins over PATH and over installing.
set -euo pipefail

log() { echo "provision-prometheus: $*" >&2; }

found() {
  if [ -n "${PROMETHEUS_BIN:-}" ] && [ -x "$PROMETHEUS_BIN" ]; then
    readlink -f "$PROMETHEUS_BIN"
    return 0
  fi
  local p
  p=$(command -v prometheus 2>/dev/null) || return 1
  readlink -f "$p"
}

if bin=$(found); then
  echo "$bin"
  exit 0
fi

log "installing Prometheus from Debian's packages"
source "$(dirname "$0")/apt.sh"
apt_install provision-prometheus prometheus

bin=$(found) || { log "apt-get installed prometheus but no binary is on PATH"; exit 1; }
log "$("$bin" --version 2>&1 | head -1)"
echo "$bin"
