# Sourced by test.sh, bench.sh and demo.sh: provisions and starts the real servers on loopback and
# registers a trap that stops the ones this shell started.
# Usage: servers_up [temporal] [kube] [prometheus] [chromium] [build] [traefik] [temporal-sql]
# temporal-sql is only provisioned here (temporal-server, PostgreSQL): the caller runs
# scripts/temporal-sql.sh up on ports of its choice and adds temporal-sql to started_servers.
started_servers=()

servers_down() {
  local s
  for s in "${started_servers[@]}"; do
    case "$s" in
      temporal) bash "$GLIDEPATH_ROOT/scripts/dev-server.sh" stop >&2 || true ;;
      kube) bash "$GLIDEPATH_ROOT/scripts/kube.sh" down >&2 || true ;;
      temporal-sql) bash "$GLIDEPATH_ROOT/scripts/temporal-sql.sh" down >&2 || true ;;
    esac
  done
  started_servers=()
}

step() { echo "== $* ($(date +%T))" >&2; }

# On a cold machine the parts are independent builds and installs (Go builds download modules while
# others compile; Debian installs wait on the network): start them all at once in the background. Each
# provisioning script takes its own lock and skips what is cached, so servers_up's steps below then find
# the part built, or wait for the build in flight. Logs: $GLIDEPATH_STATE/provision/<part>.log.
provisioning_started=0
servers_provision_in_background() {
  [ "$provisioning_started" = 1 ] && return 0
  provisioning_started=1
  local logs="$GLIDEPATH_STATE/provision" want go_parts=() apt_parts=() part
  mkdir -p "$logs"
  for want in "$@"; do
    case "$want" in
      temporal) go_parts+=(temporal-cli) ;;
      temporal-sql) go_parts+=(temporal-server) ;;
      kube) go_parts+=(kube) ;;
      traefik) go_parts+=(traefik) ;;
      build) go_parts+=(buildkit) apt_parts+=(build) ;;
      prometheus | chromium) apt_parts+=("$want") ;;
    esac
  done
  go_parts+=(test-server)
  for part in "${go_parts[@]}"; do
    [ -f "$GLIDEPATH_ROOT/scripts/provision-$part.sh" ] || continue
    bash "$GLIDEPATH_ROOT/scripts/provision-$part.sh" >/dev/null 2>"$logs/$part.log" &
  done
  # One after another: Debian's installs share dpkg's lock anyway.
  (for part in "${apt_parts[@]}"; do
    [ -f "$GLIDEPATH_ROOT/scripts/provision-$part.sh" ] || continue
    bash "$GLIDEPATH_ROOT/scripts/provision-$part.sh" >/dev/null 2>"$logs/$part.log" || true
  done) &
  # Failures are not judged here: the step that needs the part runs its script again and fails there,
  # naming what broke.
}

servers_up() {
  trap servers_down EXIT
  local want
  servers_provision_in_background "$@"
  step "provisioning the time-skipping test server"
  GLIDEPATH_TEST_SERVER=$(bash "$GLIDEPATH_ROOT/scripts/provision-test-server.sh")
  export GLIDEPATH_TEST_SERVER
  for want in "$@"; do
    case "$want" in
      temporal)
        step "provisioning the Temporal CLI (dev server + Web UI)"
        TEMPORAL_CLI=$(bash "$GLIDEPATH_ROOT/scripts/provision-temporal-cli.sh")
        export TEMPORAL_CLI
        export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:${TEMPORAL_PORT:-7233}}"
        if ! bash "$GLIDEPATH_ROOT/scripts/dev-server.sh" status >/dev/null 2>&1; then
          step "starting the Temporal dev server"
          bash "$GLIDEPATH_ROOT/scripts/dev-server.sh" start >&2
          started_servers+=(temporal)
        fi
        ;;
      kube)
        step "provisioning the Kubernetes control plane"
        bash "$GLIDEPATH_ROOT/scripts/provision-kube.sh" >/dev/null
        if ! bash "$GLIDEPATH_ROOT/scripts/kube.sh" status >/dev/null 2>&1; then
          step "starting the Kubernetes control plane"
          bash "$GLIDEPATH_ROOT/scripts/kube.sh" up --crds >&2
          started_servers+=(kube)
        fi
        eval "$(bash "$GLIDEPATH_ROOT/scripts/kube.sh" env)"
        export KUBECONFIG
        ;;
      build)
        if [ -f "$GLIDEPATH_ROOT/scripts/provision-build.sh" ]; then
          step "provisioning buildah and the OCI registry"
          bash "$GLIDEPATH_ROOT/scripts/provision-build.sh"
        fi
        if [ -f "$GLIDEPATH_ROOT/scripts/provision-buildkit.sh" ]; then
          step "provisioning BuildKit (buildkitd, buildctl, buildx) and runc"
          local buildkit_env
          buildkit_env=$(bash "$GLIDEPATH_ROOT/scripts/provision-buildkit.sh")
          eval "$buildkit_env"
          export BUILDKITD_BIN BUILDCTL_BIN BUILDX_BIN RUNC_BIN
        fi
        ;;
      chromium)
        if [ -f "$GLIDEPATH_ROOT/scripts/provision-chromium.sh" ]; then
          step "provisioning Chromium (Temporal UI tests)"
          CHROMIUM_BIN=$(bash "$GLIDEPATH_ROOT/scripts/provision-chromium.sh")
          export CHROMIUM_BIN
        fi
        ;;
      temporal-sql)
        step "provisioning the Temporal server and its SQL tool, and PostgreSQL"
        bash "$GLIDEPATH_ROOT/scripts/provision-temporal-server.sh" >/dev/null
        ;;
      traefik)
        step "provisioning Traefik (the proxy of the data-plane tests)"
        TRAEFIK_BIN=$(bash "$GLIDEPATH_ROOT/scripts/provision-traefik.sh")
        export TRAEFIK_BIN
        ;;
      prometheus)
        if [ -f "$GLIDEPATH_ROOT/scripts/provision-prometheus.sh" ]; then
          step "provisioning Prometheus"
          PROMETHEUS_BIN=$(bash "$GLIDEPATH_ROOT/scripts/provision-prometheus.sh")
          export PROMETHEUS_BIN
        fi
        ;;
    esac
  done
}
