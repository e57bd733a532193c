#!/usr/bin/env bash
# The Argo Rollouts controller (bench/argo-compare.ts runs it next to Glidepath on the same local control
# plane), built from the Go module proxy into $GLIDEPATH_CACHE/argo-rollouts-<version>/bin. Prints the
# bin dir as the only stdout line; it holds rollouts-controller and crds/ (the module's manifests/crds):
#   argo=$(bash scripts/provision-argo-rollouts.sh); "$argo/rollouts-controller" version
# The version is pinned in hack/argo-rollouts/go.mod: Argo's go.mod replaces the k8s.io staging modules,
# replaces that `go install …@version` ignores, so a small wrapper module carries the same replaces.
# v1.10.1 is the newest release the Go here (1.26.8, GOTOOLCHAIN=local) builds: v1.10.2 and v1.9.3 need go ≥ 1.26.10.
set -euo pipefail
source "$(dirname "$0")/env.sh"

mod_dir="$GLIDEPATH_ROOT/hack/argo-rollouts"
module=github.com/argoproj/argo-rollouts
version=$(awk -v m="$module" '$1 == "require" && $2 == m { print $3; exit } $1 == m { print $2; exit }' "$mod_dir/go.mod")
[ -n "$version" ] || { echo "provision-argo-rollouts: cannot read the $module version from $mod_dir/go.mod" >&2; exit 1; }
bin="$GLIDEPATH_CACHE/argo-rollouts-$version/bin"

log() { echo "provision-argo-rollouts: $*" >&2; }
# Version stamping as Argo's Makefile does (its VERSION file has no "v"); gitCommit stays unset: a module
# download carries no commit, so `rollouts-controller --version` prints v1.10.1+unknown.
ldflags="-s -w -X $module/utils/version.version=${version#v} -X $module/utils/version.gitTreeState=clean"
stamp="$module/cmd/rollouts-controller@$version $ldflags"
built() { [ -x "$bin/rollouts-controller" ] && [ "$(cat "$bin/.rollouts-controller.stamp" 2>/dev/null)" = "$stamp" ] && [ -s "$bin/crds/rollout-crd.yaml" ]; }

if ! built; then
  if ! command -v go >/dev/null; then
    if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; else log "go is needed on PATH"; exit 1; fi
  fi
  mkdir -p "$bin"
  exec 9>"$bin/.lock"
  flock 9 # parallel runs share the cache: build once
  if ! built; then
    log "building $module/cmd/rollouts-controller@$version with $(go env GOVERSION) (a cold build takes minutes)"
    start=$SECONDS
    tmp=$(mktemp -d "$bin/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    (cd "$mod_dir" && CGO_ENABLED=0 go build -trimpath "-ldflags=$ldflags" -o "$tmp/rollouts-controller" "$module/cmd/rollouts-controller") >&2
    # The CRDs of the same version, from the module cache (the build just downloaded the module).
    src=$(cd "$mod_dir" && go list -m -f '{{.Dir}}' "$module")
    mkdir -p "$tmp/crds"
    cp "$src"/manifests/crds/*-crd.yaml "$tmp/crds/"
    chmod -R u+w "$tmp/crds"
    rm -rf "$bin/crds"
    mv "$tmp/crds" "$bin/crds"
    mv -f "$tmp/rollouts-controller" "$bin/rollouts-controller"
    echo "$stamp" >"$bin/.rollouts-controller.stamp"
    log "built in $((SECONDS - start)) s: $("$bin/rollouts-controller" --version)"
  fi
fi
echo "$bin"
