#!/usr/bin/env bash
# Runs a command and fails (exit 1) when it changed a tracked file, or left a new file git does not
# ignore: `bash scripts/unchanged.sh bash scripts/setup.sh`. Ignored state (node_modules/, .state/) is
# fine. Compares `git status --porcelain` and the content of the working tree's diff before and after,
# so a file that was already modified counts when the command changes it again.
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
cd "$(dirname "$0")/.."
snapshot() { git status --porcelain; git diff HEAD --no-ext-diff --binary | sha256sum; }
before=$(snapshot)
"$@"
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "unchanged.sh: '$*' changed files of the checkout:" >&2
  diff <(echo "$before") <(echo "$after") | sed -n 's/^> /  /p' >&2
  git diff --no-ext-diff --stat >&2
  exit 1
fi
