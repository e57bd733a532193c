#!/usr/bin/env bash
# Image build tooling for the build activity and its tests, from Debian's packages:
#   buildah          builds (chroot isolation, vfs storage: no daemon, no overlay mounts needed) and pushes
#   docker-registry  the CNCF distribution registry binary; tests run their own instance on 127.0.0.1
# Installs whichever is missing (noninteractive, no recommends). Prints nothing on success; errors go
# to stderr. The package's registry service is never started here (policy-rc.d forbids it).
set -euo pipefail

log() { echo "provision-build: $*" >&2; }

missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  log "missing ${missing[*]} and cannot apt-get install (run as root on Debian)"
  exit 1
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

out=$(mktemp)
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$out" 2>&1; then
  cat "$out" >&2
  rm -f "$out"
  log "apt-get install ${missing[*]} failed"
  exit 1
fi
rm -f "$out"

command -v buildah >/dev/null 2>&1 || { log "buildah not on PATH after install"; exit 1; }
[ -x /usr/bin/docker-registry ] || { log "/usr/bin/docker-registry missing after install"; exit 1; }
