#!/usr/bin/env bash
# BuildKit for the buildctl and buildx image builders, built from the Go module proxy (no prebuilt downloads):
#   buildkitd, buildctl  <- github.com/moby/buildkit  (version pinned in hack/buildkit/go.mod)
#   buildx               <- github.com/docker/buildx  (same module graph: buildx requires that buildkit)
# into $GLIDEPATH_CACHE/buildkit-<version>/bin and $GLIDEPATH_CACHE/buildx-<version>/bin, and Debian's runc
# (buildkitd's OCI worker runs RUN steps with it) via apt. One `go build` through the wrapper module
# hack/buildkit: buildkit's go.mod has `exclude` directives, which `go install pkg@version` refuses.
# Skips whatever is already built (a cached run only reads stamps). Prints shell assignments on stdout:
#   eval "$(bash scripts/provision-buildkit.sh)"   # sets BUILDKITD_BIN, BUILDCTL_BIN, BUILDX_BIN, RUNC_BIN
set -euo pipefail
source "$(dirname "$0")/env.sh"

log() { echo "provision-buildkit: $*" >&2; }

mod_dir="$GLIDEPATH_ROOT/hack/buildkit"
gomod_version() { awk -v m="$1" '$1 == m { print $2; exit }' "$mod_dir/go.mod"; }
bk_version=$(gomod_version github.com/moby/buildkit)
bx_version=$(gomod_version github.com/docker/buildx)
[ -n "$bk_version" ] && [ -n "$bx_version" ] || { log "cannot read versions from $mod_dir/go.mod"; exit 1; }

bk_bin="$GLIDEPATH_CACHE/buildkit-$bk_version/bin"
bx_bin="$GLIDEPATH_CACHE/buildx-$bx_version/bin"
# Version stamping as the projects' release builds do; without it the binaries report v0.0.0+unknown.
ldflags="-s -w -X github.com/moby/buildkit/version.Version=$bk_version -X github.com/docker/buildx/version.Version=$bx_version"
declare -A dir=([buildkitd]="$bk_bin" [buildctl]="$bk_bin" [buildx]="$bx_bin")
declare -A pkg=(
  [buildkitd]="github.com/moby/buildkit/cmd/buildkitd@$bk_version"
  [buildctl]="github.com/moby/buildkit/cmd/buildctl@$bk_version"
  [buildx]="github.com/docker/buildx/cmd/buildx@$bx_version"
)
# A binary is current when it exists and its stamp names the package version and flags it was built from.
current() { [ -x "${dir[$1]}/$1" ] && [ "$(cat "${dir[$1]}/.$1.stamp" 2>/dev/null)" = "${pkg[$1]} $ldflags" ]; }
missing() {
  local n
  want=()
  for n in buildkitd buildctl buildx; do current "$n" || want+=("$n"); done
  [ "${#want[@]}" -gt 0 ]
}

if missing; then
  if ! command -v go >/dev/null; then
    if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; else log "go is needed on PATH"; exit 1; fi
  fi
  mkdir -p "$bk_bin" "$bx_bin"
  exec 9>"$GLIDEPATH_CACHE/buildkit-$bk_version/.lock"
  flock 9 # parallel runs share the cache: build once
  if missing; then
    log "building ${want[*]} (buildkit $bk_version, buildx $bx_version) with $(go env GOVERSION); a cold build takes minutes"
    tmp=$(mktemp -d "$GLIDEPATH_CACHE/buildkit-$bk_version/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    paths=()
    for n in "${want[@]}"; do paths+=("${pkg[$n]%@*}"); done
    start=$SECONDS
    # Static (the release images build buildkitd and buildctl with CGO_ENABLED=0 too); one go build so
    # the shared packages compile once.
    (cd "$mod_dir" && CGO_ENABLED=0 go build -trimpath "-ldflags=$ldflags" -o "$tmp/" "${paths[@]}") >&2
    for n in "${want[@]}"; do
      [ -x "$tmp/$n" ] || { log "go build produced no $n"; exit 1; }
      mv -f "$tmp/$n" "${dir[$n]}/$n"
      echo "${pkg[$n]} $ldflags" >"${dir[$n]}/.$n.stamp"
    done
    log "built ${want[*]} in $((SECONDS - start)) s"
  fi
fi

# buildkitd's OCI worker executes RUN steps (and nothing else here) with runc.
if ! command -v runc >/dev/null 2>&1; then
  source "$GLIDEPATH_ROOT/scripts/apt.sh"
  apt_install provision-buildkit runc
  command -v runc >/dev/null 2>&1 || { log "runc not on PATH after install"; exit 1; }
fi

printf 'BUILDKITD_BIN=%q\nBUILDCTL_BIN=%q\nBUILDX_BIN=%q\nRUNC_BIN=%q\n' "$bk_bin/buildkitd" "$bk_bin/buildctl" "$bx_bin/buildx" "$(command -v runc)"
