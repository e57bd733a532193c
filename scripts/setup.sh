#!/usr/bin/env bash
# Installs what the project needs to run on this machine: Node 24 (from the npm registry when the
# system Node is older) and the npm dependencies. Idempotent and quick when nothing changed.
# Servers are provisioned by their own scripts (scripts/provision-*.sh), called where needed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash "$GLIDEPATH_ROOT/scripts/provision-node.sh"
source "$GLIDEPATH_ROOT/scripts/env.sh" # Node 24 is on PATH now
cd "$GLIDEPATH_ROOT"
stamp=node_modules/.glidepath-lock.sha256
want=$( (sha256sum package-lock.json; node --version) | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci from package-lock.json (Node $(node --version))" >&2
  # `npm ci` installs exactly the lock and never writes it, so a fresh clone stays clean. The lock lists
  # every platform's optional packages (@swc/core-darwin-arm64, …): regenerate it with
  # `npm install --package-lock-only`, never on one machine's partial view.
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi
