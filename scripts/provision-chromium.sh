#!/usr/bin/env bash
# Headless Chromium for the Web UI test (test/e2e/ui.test.ts), from Debian's packages: playwright-core
# drives it (it never downloads a browser of its own). Installs the `chromium` package when
# /usr/bin/chromium is missing and prints the binary's path as the only stdout line:
#   export CHROMIUM_BIN=$(bash scripts/provision-chromium.sh)
# CHROMIUM_BIN, when set to an executable, wins over /usr/bin/chromium and over installing.
set -euo pipefail

log() { echo "provision-chromium: $*" >&2; }
default=/usr/bin/chromium

found() {
  if [ -n "${CHROMIUM_BIN:-}" ] && [ -x "$CHROMIUM_BIN" ]; then
    echo "$CHROMIUM_BIN"
    return 0
  fi
  [ -x "$default" ] && echo "$default"
}

if bin=$(found); then
  echo "$bin"
  exit 0
fi

log "installing Chromium from Debian's packages"
source "$(dirname "$0")/apt.sh"
apt_install provision-chromium chromium

bin=$(found) || { log "apt-get installed chromium but $default is missing"; exit 1; }
log "$("$bin" --headless --no-sandbox --version 2>/dev/null | head -1)"
echo "$bin"
