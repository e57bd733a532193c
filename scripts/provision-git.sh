#!/usr/bin/env bash
# Git with its smart-HTTP CGI (`git http-backend`), from Debian's `git` package: the Git source's
# activities run the git CLI, and the tests serve repositories with git-http-backend behind a small
# Node server (test/support/git-server.ts). Installs `git` when /usr/bin/git or
# /usr/lib/git-core/git-http-backend is missing and prints the git binary's path as the only stdout line:
#   export GIT_BIN=$(bash scripts/provision-git.sh)
set -euo pipefail

log() { echo "provision-git: $*" >&2; }
bin=/usr/bin/git
backend=/usr/lib/git-core/git-http-backend

found() { [ -x "$bin" ] && [ -x "$backend" ]; }

if ! found; then
  log "installing git from Debian's packages"
  source "$(dirname "$0")/apt.sh"
  apt_install provision-git git
  found || { log "apt-get installed git but $bin or $backend is missing"; exit 1; }
  log "$("$bin" --version)"
fi
echo "$bin"
