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

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  log "no $default and cannot apt-get install it (run as root on Debian, or set CHROMIUM_BIN)"
  exit 1
fi

log "installing Chromium from Debian's packages"
# Another install may hold the dpkg lock (other provisioning scripts use apt too): wait for it.
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >&2

bin=$(found) || { log "apt-get installed chromium but $default is missing"; exit 1; }
log "$("$bin" --headless --no-sandbox --version 2>/dev/null | head -1)"
echo "$bin"
