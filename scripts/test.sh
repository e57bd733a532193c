#!/usr/bin/env bash
# The test command (`npm test`): provisions and starts every real server the tests meet, on
# loopback, runs type check, lint and every test file, and stops what it started.
#   time-skipping suites → Temporal's Java test server (Maven Central)
#   dev-server suites    → `temporal server start-dev` (Temporal CLI built from the Go module proxy)
#   Kubernetes suites    → etcd, kube-apiserver, controller-manager, scheduler, kwok (Go modules)
#   analysis suites      → Prometheus (Debian package), started by each test
#   Web UI suites        → headless Chromium (Debian package) driven by playwright-core
#   data-plane suites    → Traefik (Go module proxy) in front of the pods' network namespace (needs root)
#   build suites         → buildah, docker-registry, runc (Debian packages), a registry per test;
#                          buildkitd, buildctl, buildx (Go module proxy), a buildkitd per test file
# A subset: npm test -- 'test/model/*.test.ts'
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GLIDEPATH_ROOT"
bash scripts/setup.sh
source scripts/env.sh
source scripts/servers.sh
parts=(temporal kube prometheus chromium build traefik)
# Type check and lint while the parts build (a cold machine builds for many minutes).
servers_provision_in_background "${parts[@]}"
step "type check and lint"
bash scripts/lint.sh
servers_up "${parts[@]}"

step "tests"
if [ "$#" -gt 0 ]; then files=("$@"); else files=('test/**/*.test.ts'); fi
# One file at a time: suites share the dev server, the control plane and 2 cores. The time-skipping
# suites share one Java test server, started by the global setup (test/support/time-skipping-pool.ts);
# V8's compile cache spares each file's process compiling the same modules again.
export NODE_COMPILE_CACHE="${NODE_COMPILE_CACHE:-$GLIDEPATH_CACHE/node-compile-cache}"
node --test --test-concurrency=1 --test-timeout=300000 --test-global-setup=test/support/time-skipping-servers.ts "${files[@]}"
