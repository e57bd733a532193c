#!/usr/bin/env bash
# Benchmarks (`npm run bench`): each prints its figures. Starts the servers they need.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GLIDEPATH_ROOT"
bash scripts/setup.sh
source scripts/env.sh
source scripts/servers.sh
servers_up temporal kube prometheus chromium build traefik

step "history events per canary step"
node bench/history-events.ts

step "wall time of the state-machine suite (time skipping)"
bash bench/state-machine.sh

for b in bench/*.ts; do
  case "$b" in bench/history-events.ts) continue ;; esac
  step "$b"
  node "$b"
done
