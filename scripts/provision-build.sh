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

source "$(dirname "$0")/apt.sh"
apt_install provision-build "${missing[@]}"

command -v buildah >/dev/null 2>&1 || { log "buildah not on PATH after install"; exit 1; }
[ -x /usr/bin/docker-registry ] || { log "/usr/bin/docker-registry missing after install"; exit 1; }
