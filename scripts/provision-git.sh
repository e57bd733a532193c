#!/usr/bin/env bash
# Git with its smart-HTTP CGI (`git http-backend`), from Debian's `git` package: the Git source's
# activities run the git CLI, and the tests serve repositories with git-http-backend behind a small
# Node server (test/support/git-server.ts); ssh-keygen (Debian's `openssh-client`) verifies SSH-signed
# commits. Installs `git` and `openssh-client` when /usr/bin/git, /usr/lib/git-core/git-http-backend or
# /usr/bin/ssh-keygen is missing and prints the git binary's path as the only stdout line:
#   export GIT_BIN=$(bash scripts/provision-git.sh)
set -euo pipefail

log() { echo "provision-git: $*" >&2; }
bin=/usr/bin/git
backend=/usr/lib/git-core/git-http-backend

keygen=/usr/bin/ssh-keygen   # verifies SSH-signed commits (a repository's signing policy)

found() { [ -x "$bin" ] && [ -x "$backend" ] && [ -x "$keygen" ]; }

if ! found; then
  log "installing git and openssh-client from Debian's packages"
  source "$(dirname "$0")/apt.sh"
  apt_install provision-git git openssh-client
  found || { log "apt-get installed git and openssh-client but $bin, $backend or $keygen is missing"; exit 1; }
  log "$("$bin" --version)"
fi
echo "$bin"
