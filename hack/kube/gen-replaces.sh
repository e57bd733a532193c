#!/usr/bin/env bash
# Pin k8s.io/kubernetes in hack/kube/go.mod and generate a `replace` for every staging module it needs.
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) as `v0.0.0` and
# replaces them with ./staging/src/... in its own repo; those replaces do not apply to a module that
# depends on it, so we replace each `k8s.io/NAME v0.0.0` with the published `k8s.io/NAME v0.MINOR.PATCH`.
#
# Usage: hack/kube/gen-replaces.sh [vX.Y.Z]   (default: the k8s.io/kubernetes version already in go.mod)
# Reads k8s.io/kubernetes's go.mod from the Go module cache (`go mod download -json`), rewrites the
# k8s.io replaces in hack/kube/go.mod, runs `go mod tidy`, and prints the replace lines it wrote.
# Idempotent: running it again with the same version changes nothing.
set -euo pipefail
cd "$(dirname "$0")"

version="${1:-}"
if [ -z "$version" ]; then
  version=$(go mod edit -json | jq -r '.Require[]? | select(.Path == "k8s.io/kubernetes") | .Version')
  [ -n "$version" ] || { echo "gen-replaces: no k8s.io/kubernetes in go.mod; pass a version (e.g. v1.36.3)" >&2; exit 2; }
fi
case "$version" in
  v1.*.*) ;;
  *) echo "gen-replaces: expected a k8s.io/kubernetes release like v1.36.3, got '$version'" >&2; exit 2 ;;
esac
staging="v0.${version#v1.}"   # v1.36.3 -> v0.36.3

gomod=$(go mod download -json "k8s.io/kubernetes@$version" | jq -r '.GoMod')
[ -f "$gomod" ] || { echo "gen-replaces: go mod download gave no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }

# Every k8s.io/* requirement at v0.0.0 (direct or // indirect) in k8s.io/kubernetes's go.mod.
mapfile -t mods < <(go mod edit -json "$gomod" | jq -r '.Require[] | select(.Version == "v0.0.0") | .Path' | grep '^k8s\.io/' | sort -u)
[ "${#mods[@]}" -gt 0 ] || { echo "gen-replaces: found no k8s.io/* v0.0.0 requirements in $gomod" >&2; exit 1; }

# Drop the k8s.io replaces we wrote before (a new release may add or remove staging modules), then add the new ones.
args=()
while read -r old; do args+=("-dropreplace=$old"); done < <(go mod edit -json | jq -r '.Replace[]? | select(.Old.Path | startswith("k8s.io/")) | .Old.Path')
args+=("-require=k8s.io/kubernetes@$version")
for m in "${mods[@]}"; do args+=("-replace=$m=$m@$staging"); done
go mod edit "${args[@]}"

echo "gen-replaces: k8s.io/kubernetes $version, ${#mods[@]} staging modules at $staging; running go mod tidy" >&2
go mod tidy
for m in "${mods[@]}"; do echo "$m => $m $staging"; done
