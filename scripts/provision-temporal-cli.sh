#!/usr/bin/env bash
# The Temporal CLI (`temporal server start-dev` with the Web UI, `temporal workflow ...`), built from the
# Go module proxy into $GLIDEPATH_CACHE/temporal-cli-<version>/bin. Prints the binary's path as the only
# stdout line:  temporal=$(bash scripts/provision-temporal-cli.sh)
# The Go module and build caches stay at their defaults (~/go/pkg/mod, ~/.cache/go-build), so a rebuild
# after the binary is lost takes seconds. A cold build takes minutes: see docs/servers.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"

version="${GLIDEPATH_TEMPORAL_CLI_VERSION:-v1.5.1}"
dir="$GLIDEPATH_CACHE/temporal-cli-$version"
bin="$dir/bin/temporal"

log() { echo "provision-temporal-cli: $*" >&2; }
built() { [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^temporal version ${version#v} "; }

if ! built; then
  if ! command -v go >/dev/null; then
    if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; else log "go is needed on PATH"; exit 1; fi
  fi
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9 # parallel runs share the cache: build once
  if ! built; then
    log "building github.com/temporalio/cli/cmd/temporal@$version with $(go env GOVERSION) (a cold build takes minutes)"
    start=$SECONDS
    rm -rf "$dir/.gobin"
    # As the release builds do (.goreleaser.yml): static, stripped, version stamped.
    GOBIN="$dir/.gobin" CGO_ENABLED=0 go install \
      -ldflags "-s -w -X github.com/temporalio/cli/temporalcli.Version=${version#v}" \
      "github.com/temporalio/cli/cmd/temporal@$version" >&2
    mkdir -p "$dir/bin"
    mv "$dir/.gobin/temporal" "$bin"
    rmdir "$dir/.gobin"
    log "built in $((SECONDS - start)) s: $("$bin" --version)"
  fi
fi
echo "$bin"
