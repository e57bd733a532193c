#!/usr/bin/env bash
# Builds the local Kubernetes control plane from Go modules (no downloads of prebuilt binaries):
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  <- k8s.io/kubernetes (pinned in hack/kube/go.mod)
#   etcd                                                             <- go.etcd.io/etcd/server/v3 (same module, the version k8s requires)
#   kwok                                                             <- sigs.k8s.io/kwok/cmd/kwok (go install, its own go.mod)
# into $GLIDEPATH_CACHE/kube-<k8s version>/bin. Skips what is already built (then Go is not needed at all).
# Prints the bin dir as its only stdout line.
set -euo pipefail
source "$(dirname "$0")/env.sh"

KWOK_VERSION="${GLIDEPATH_KWOK_VERSION:-v0.8.0}"
mod_dir="$GLIDEPATH_ROOT/hack/kube"
gomod_version() { awk -v m="$1" '$1 == m { print $2; exit }' "$mod_dir/go.mod"; }
k8s_version=$(gomod_version k8s.io/kubernetes)
etcd_version=$(gomod_version go.etcd.io/etcd/server/v3)
[ -n "$k8s_version" ] && [ -n "$etcd_version" ] || { echo "provision-kube: cannot read versions from $mod_dir/go.mod" >&2; exit 1; }

bin="$GLIDEPATH_CACHE/kube-$k8s_version/bin"
mkdir -p "$bin"
exec 9>"$bin/.lock"
flock 9 # parallel runs share the cache: build once
# Go only when something is to be built: a machine with every binary cached needs none.
need_go() {
  command -v go >/dev/null && return 0
  if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; return 0; fi
  echo "provision-kube: go is needed on PATH to build $* (nothing is cached in $bin)" >&2
  exit 1
}

# A binary is current when it exists and its stamp names the module version it was built from.
current() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.stamp" 2>/dev/null)" = "$2" ]; }

export CGO_ENABLED=0   # static binaries, no C toolchain needed, less to compile
build_flags=(-trimpath "-ldflags=-s -w")
# Version stamping as Kubernetes' own build does (hack/lib/version.sh); without it the binaries report
# v0.0.0-master. gitCommit stays unset: a module download carries no commit.
minor=${k8s_version#v1.}; minor=${minor%%.*}
k8s_ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

# kube-* and kubectl from k8s.io/kubernetes, etcd from the same module graph: one `go build` so shared packages compile once.
declare -A pkg=(
  [kube-apiserver]="k8s.io/kubernetes/cmd/kube-apiserver@$k8s_version"
  [kube-controller-manager]="k8s.io/kubernetes/cmd/kube-controller-manager@$k8s_version"
  [kube-scheduler]="k8s.io/kubernetes/cmd/kube-scheduler@$k8s_version"
  [kubectl]="k8s.io/kubernetes/cmd/kubectl@$k8s_version"
  [etcd]="go.etcd.io/etcd/server/v3@$etcd_version"
)
want=()
for name in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do
  current "$name" "${pkg[$name]} $k8s_ldflags" || want+=("$name")
done
if [ "${#want[@]}" -gt 0 ]; then
  need_go "${want[*]}"
  echo "provision-kube: building ${want[*]} (k8s $k8s_version, etcd $etcd_version) into $bin" >&2
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  paths=()
  for name in "${want[@]}"; do paths+=("${pkg[$name]%@*}"); done
  start=$SECONDS
  (cd "$mod_dir" && go build -trimpath "-ldflags=$k8s_ldflags" -o "$tmp/" "${paths[@]}") >&2
  # go names the etcd binary after its module path element before /v3: "server".
  [ ! -e "$tmp/server" ] || mv "$tmp/server" "$tmp/etcd"
  for name in "${want[@]}"; do
    [ -x "$tmp/$name" ] || { echo "provision-kube: go build produced no $name" >&2; exit 1; }
    mv -f "$tmp/$name" "$bin/$name"
    echo "${pkg[$name]} $k8s_ldflags" > "$bin/.$name.stamp"
  done
  echo "provision-kube: built ${want[*]} in $((SECONDS - start))s" >&2
fi

# kwok: its dependency graph (newer grpc/otel, k8s.io v0.36.1) differs from k8s.io/kubernetes's, so it is
# go-installed from its own module at a pinned version rather than added to hack/kube's graph.
if ! current kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"; then
  need_go kwok
  echo "provision-kube: building kwok $KWOK_VERSION into $bin" >&2
  start=$SECONDS
  GOBIN="$bin" go install "${build_flags[@]}" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  echo "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" > "$bin/.kwok.stamp"
  echo "provision-kube: built kwok in $((SECONDS - start))s" >&2
fi

echo "$bin"
