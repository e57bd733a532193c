#!/usr/bin/env bash
# Temporal's Java time-skipping test server (io.temporal:temporal-test-server) from Maven Central.
# Installs the jar and its runtime dependencies into $GLIDEPATH_CACHE/temporal-test-server-<version>/lib,
# trains an AppCDS archive for fast JVM startup, and writes bin/temporal-test-server, a wrapper that
# @temporalio/testing runs as `<path> <port>`. Prints the wrapper's absolute path as the only stdout line:
#   GLIDEPATH_TEST_SERVER=$(bash scripts/provision-test-server.sh)
# Why the tuning: the SDK gives the server 5 s to answer gRPC (sdk-core ephemeral_server/mod.rs, 50 tries
# 100 ms apart); a plain `java -cp` start took up to 4.7 s on 2 busy cores. See docs/servers.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"

version="${GLIDEPATH_TEST_SERVER_VERSION:-1.38.0}"
dir="$GLIDEPATH_CACHE/temporal-test-server-$version"
wrapper="$dir/bin/temporal-test-server"
jsa="$dir/lib/app-cds.jsa"
main_class=io.temporal.testserver.TestServer
# C1 only and the serial GC: fewer compiler/GC threads competing for 2 cores while the server boots.
jvm_opts=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData)

log() { echo "provision-test-server: $*" >&2; }

# Java and Maven come from Debian when the image lacks them (Maven only while the jars are not cached).
if ! command -v java >/dev/null || { [ ! -f "$dir/lib/.complete" ] && ! command -v mvn >/dev/null; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing a JDK and Maven from Debian"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven >&2
  else
    log "java and mvn are needed (apt-get install openjdk-17-jdk-headless maven)"; exit 1
  fi
fi
java_bin=$(readlink -f "$(command -v java)")

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9 # one provisioning at a time per version (parallel CI jobs share the cache)

# 1. Jars: a throwaway pom and maven-dependency-plugin copy the runtime closure. slf4j-nop silences
# SLF4J's "no binding" warning that the server would otherwise print on every start.
if [ ! -f "$dir/lib/.complete" ]; then
  log "resolving io.temporal:temporal-test-server:$version from Maven Central"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>glidepath</groupId><artifactId>temporal-test-server-deps</artifactId><version>0</version>
  <dependencies>
    <dependency><groupId>io.temporal</groupId><artifactId>temporal-test-server</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
  # (Maven 3.8 -q still emits bare ESC[0m resets: strip them.)
  (cd "$tmp" && mvn -B -q \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/lib") 2>&1 | sed $'s/\x1b\\[0m//g' >&2
  [ -f "$tmp/lib/temporal-test-server-$version.jar" ] || { log "Maven produced no temporal-test-server-$version.jar"; exit 1; }
  touch "$tmp/lib/.complete"
  rm -rf "${dir:?}/lib" "${dir:?}/bin"
  mv "$tmp/lib" "$dir/lib"
fi

# An explicit, sorted classpath: CDS checks it against the one the archive was dumped with.
classpath=$(find "$dir/lib" -maxdepth 1 -name '*.jar' | LC_ALL=C sort | paste -sd: -)

# 2. AppCDS (Java 17: -XX:ArchiveClassesAtExit, then -XX:SharedArchiveFile). The archive is tied to this
# JVM build and these jars, so it is checked on every run and dumped again when the JVM rejects it.
cds_ok() { [ -f "$jsa" ] && "$java_bin" -Xshare:on -XX:SharedArchiveFile="$jsa" "${jvm_opts[@]}" -cp "$classpath" -version >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
train_cds() {
  local port pid
  for _ in 1 2 3; do
    port=$((20000 + RANDOM % 40000))
    port_open "$port" && continue
    rm -f "$jsa.tmp"
    "$java_bin" -XX:ArchiveClassesAtExit="$jsa.tmp" -Xlog:cds=off -Xlog:cds+dynamic=off "${jvm_opts[@]}" \
      -cp "$classpath" "$main_class" "$port" </dev/null >"$dir/cds-training.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 300); do
      port_open "$port" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if port_open "$port"; then
      # One gRPC round trip (h2c, empty request) so the request path's classes are archived too.
      if command -v curl >/dev/null; then
        for svc in temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo grpc.health.v1.Health/Check; do
          printf '\0\0\0\0\0' | curl -sS --max-time 10 --http2-prior-knowledge -X POST -H 'content-type: application/grpc' \
            -H 'te: trailers' --data-binary @- -o /dev/null "http://127.0.0.1:$port/$svc" >&2 || true
        done
      fi
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true # the archive is written while the JVM exits
      if [ -s "$jsa.tmp" ]; then mv "$jsa.tmp" "$jsa"; return 0; fi
    else
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  return 1
}
if ! cds_ok; then
  log "training the AppCDS archive ($jsa)"
  if train_cds && cds_ok; then :; else
    rm -f "$jsa" "$jsa.tmp"
    log "warning: could not build a usable CDS archive (see $dir/cds-training.log); the server will start slower"
  fi
fi

# 3. The wrapper. -Xshare:auto: should the archive go stale (JDK upgrade), the JVM starts without it
# instead of failing; the next provisioning run dumps it again.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; } # quote a word for sh
cmd="$(sq "$java_bin") ${jvm_opts[*]}"
[ -f "$jsa" ] && cmd+=" -Xshare:auto -XX:SharedArchiveFile=$(sq "$jsa") -Xlog:cds=off -Xlog:cds+dynamic=off"
cmd+=" \${GLIDEPATH_TEST_SERVER_JAVA_OPTS:-} -cp $(sq "$classpath") $main_class \"\$@\""
mkdir -p "$dir/bin"
cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# Generated by scripts/provision-test-server.sh: Temporal time-skipping test server $version.
# Usage: temporal-test-server <port> [--enable-time-skipping]. Extra JVM flags: GLIDEPATH_TEST_SERVER_JAVA_OPTS.
exec $cmd
EOF
chmod +x "$wrapper.tmp"
if cmp -s "$wrapper.tmp" "$wrapper"; then rm -f "$wrapper.tmp"; else mv "$wrapper.tmp" "$wrapper"; fi
echo "$wrapper"
