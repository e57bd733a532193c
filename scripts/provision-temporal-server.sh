#!/usr/bin/env bash
# The Temporal server as users run it with a SQL database: temporal-server (go.temporal.io/server/cmd/server)
# and its schema tool temporal-sql-tool (go.temporal.io/server/cmd/tools/sql), built from the Go module
# proxy into $GLIDEPATH_CACHE/temporal-server-<version>/bin, with the module's PostgreSQL schema files
# copied to .../schema/postgresql/v12/{temporal,visibility}. PostgreSQL itself comes from Debian
# (installed with scripts/apt.sh when initdb is missing). Prints the install dir as the only stdout line:
#   dir=$(bash scripts/provision-temporal-server.sh)   # $dir/bin/temporal-server, $dir/schema/...
# The default version is the server the Temporal CLI of scripts/provision-temporal-cli.sh embeds
# (CLI v1.5.1 requires go.temporal.io/server v1.29.1), so both speak the same server.
# Built as the server's Makefile builds releases: CGO off, tag disable_grpc_modules.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
source "$here/apt.sh"

version="${GLIDEPATH_TEMPORAL_SERVER_VERSION:-v1.29.1}"
pg_major="${GLIDEPATH_POSTGRES_MAJOR:-15}"
dir="$GLIDEPATH_CACHE/temporal-server-$version"
stamp="go.temporal.io/server@$version tags=disable_grpc_modules"

log() { echo "provision-temporal-server: $*" >&2; }
built() {
  [ -x "$dir/bin/temporal-server" ] && [ -x "$dir/bin/temporal-sql-tool" ] &&
    [ -f "$dir/schema/postgresql/v12/temporal/schema.sql" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]
}

if [ ! -x "/usr/lib/postgresql/$pg_major/bin/initdb" ]; then
  log "installing postgresql-$pg_major (Debian)"
  apt_install provision-temporal-server "postgresql-$pg_major" >&2
fi

if ! built; then
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9 # parallel runs share the cache: build once
  if ! built; then
    if ! command -v go >/dev/null; then
      if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; else log "go is needed on PATH"; exit 1; fi
    fi
    log "building go.temporal.io/server/cmd/{server,tools/sql}@$version with $(go env GOVERSION) (a cold build takes minutes)"
    start=$SECONDS
    rm -rf "$dir/.gobin" "$dir/bin" "$dir/schema"
    # The server module has no replace directives, so `go install pkg@version` builds it as released.
    GOBIN="$dir/.gobin" CGO_ENABLED=0 go install -trimpath -tags disable_grpc_modules -ldflags "-s -w" \
      "go.temporal.io/server/cmd/server@$version" "go.temporal.io/server/cmd/tools/sql@$version" >&2
    mkdir -p "$dir/bin" "$dir/schema"
    mv "$dir/.gobin/server" "$dir/bin/temporal-server"
    mv "$dir/.gobin/sql" "$dir/bin/temporal-sql-tool"
    rmdir "$dir/.gobin"
    # The schema files ship in the module, not in the binaries: keep a copy next to them.
    mod=$(go mod download -json "go.temporal.io/server@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$mod/schema/postgresql/v12" ] || { log "no schema/postgresql/v12 in $mod"; exit 1; }
    mkdir -p "$dir/schema/postgresql"
    cp -r "$mod/schema/postgresql/v12" "$dir/schema/postgresql/"
    chmod -R u+w "$dir/schema"
    echo "$stamp" >"$dir/.stamp"
    log "built in $((SECONDS - start)) s: $("$dir/bin/temporal-server" --version 2>&1 | head -n 1)"
  fi
fi
echo "$dir"
