# Sourced by the provisioning scripts: installs Debian packages noninteractively, without recommends,
# without starting any service a package ships (policy-rc.d answers 101), one project install at a
# time (/run/glidepath-apt.lock: the policy file is shared, so parallel provisioning must not remove it
# under another install), waiting for anyone else's dpkg lock. Quiet on success; on failure prints apt's output to stderr and returns 1.
# Usage: apt_install <who> <package>...
apt_install() {
  local who=$1
  shift
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "$who: missing $* and cannot apt-get install (run as root on Debian)" >&2
    return 1
  fi
  local policy=/usr/sbin/policy-rc.d made_policy=0 out status=0 lock
  exec {lock}>/run/glidepath-apt.lock
  flock "$lock"
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    made_policy=1
  fi
  out=$(mktemp)
  { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@"; } >"$out" 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    cat "$out" >&2
    echo "$who: apt-get install $* failed" >&2
  fi
  rm -f "$out"
  if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
  exec {lock}>&-
  return "$status"
}
