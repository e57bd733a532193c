#!/usr/bin/env bash
# Traefik (the real proxy of the data-plane tests: Gateway API HTTPRoutes and NGINX canary Ingress annotations),
# built from the Go module proxy into $GLIDEPATH_CACHE/traefik-<version>/bin. Prints the binary's path as the
# only stdout line:  traefik=$(bash scripts/provision-traefik.sh)
#
# `go install traefik@version` refuses the module (it has replace directives), so the downloaded module is
# copied and built in place with three local changes, none of which touches what the tests exercise:
#   1. the nested module github.com/traefik/traefik/dynamic/ext that a replace points to (./pkg/config/dynamic/ext)
#      is not in the module zip: it is recreated with the two empty extension structs the config embeds;
#   2. github.com/abbot/go-http-auth is replaced by the containous fork version Traefik v3.6 pins (the newer
#      pseudo-version is not served by the proxy);
#   3. the ACME DNS-challenge providers (lego/v5/providers/dns, fourteen cloud SDKs the proxy refuses) are dropped:
#      a DNS challenge reports an error instead. Nothing here uses ACME.
# A cold build takes ~9 min on 2 cores; with Go's module and build caches warm, seconds.
set -euo pipefail
source "$(dirname "$0")/env.sh"

version="${GLIDEPATH_TRAEFIK_VERSION:-v3.7.13}"
module=github.com/traefik/traefik/v3
http_auth_fork="github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e"
dir="$GLIDEPATH_CACHE/traefik-$version"
bin="$dir/bin/traefik"

log() { echo "provision-traefik: $*" >&2; }
built() { [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "^Version: *${version#v}$"; }

if ! built; then
  if ! command -v go >/dev/null; then
    if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; else log "go is needed on PATH"; exit 1; fi
  fi
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9 # parallel runs share the cache: build once
  if ! built; then
    log "building $module@$version with $(go env GOVERSION) (a cold build takes ~9 min on 2 cores)"
    start=$SECONDS
    src_mod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$src_mod" ] || { log "go mod download gave no directory for $module@$version"; exit 1; }
    src="$dir/src"
    rm -rf "$src"
    cp -r "$src_mod" "$src"
    chmod -R u+w "$src"

    # 1. The nested extension module.
    mkdir -p "$src/pkg/config/dynamic/ext"
    printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n' > "$src/pkg/config/dynamic/ext/go.mod"
    cat > "$src/pkg/config/dynamic/ext/ext.go" <<'EOF'
// Package ext holds the extension points embedded in the dynamic configuration; empty in this build.
package ext

// HTTP extends the HTTP configuration.
type HTTP struct{}

// Router extends the HTTP router configuration.
type Router struct{}
EOF
    # 2. The go-http-auth fork at the version the proxy serves.
    sed -i "s#^\(\s*github.com/abbot/go-http-auth => \).*#\1$http_auth_fork#" "$src/go.mod"
    grep -q "go-http-auth => $http_auth_fork" "$src/go.mod" || { log "go.mod: go-http-auth replace not found"; exit 1; }
    # 3. No ACME DNS-challenge providers.
    acme="$src/pkg/provider/acme/provider.go"
    grep -q '"github.com/go-acme/lego/v5/providers/dns"' "$acme" || { log "$acme: DNS providers import not found"; exit 1; }
    sed -i '/"github.com\/go-acme\/lego\/v5\/providers\/dns"/d' "$acme"
    sed -i 's#provider, err = dns.NewDNSChallengeProviderByName(p.DNSChallenge.Provider)#provider, err = nil, fmt.Errorf("DNS challenge provider %q: not built in", p.DNSChallenge.Provider)#' "$acme"
    grep -q '"fmt"' "$acme" || sed -i '0,/^import (/s//import (\n\t"fmt"/' "$acme"

    (
      cd "$src"
      GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X $module/pkg/version.Version=${version#v}" \
        -o "$dir/.traefik.new" ./cmd/traefik
    ) >&2
    mkdir -p "$dir/bin"
    mv -f "$dir/.traefik.new" "$bin"
    rm -rf "$src"
    log "built in $((SECONDS - start)) s: $("$bin" version | head -1)"
  fi
fi
# The definitions of Traefik's own CRDs (IngressRoute, TraefikService, Middleware…), which its kubernetesCRD
# provider needs all of, next to the binary: $dir/crds/kubernetes-crd-definition-v1.yml.
crds="$dir/crds/kubernetes-crd-definition-v1.yml"
if [ ! -s "$crds" ]; then
  if ! command -v go >/dev/null; then
    if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; else log "go is needed on PATH"; exit 1; fi
  fi
  src_mod=$(cd / && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$dir/crds"
  cp "$src_mod/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" "$crds.$$"
  mv "$crds.$$" "$crds"
fi
echo "$bin"
