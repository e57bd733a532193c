# Sourced by the project's scripts: where cached tools live, and Node 24 first on PATH.
# GLIDEPATH_CACHE survives fresh clones (CI clones anew each run), so builds are paid once per machine.
export GLIDEPATH_CACHE="${GLIDEPATH_CACHE:-$HOME/.cache/glidepath}"
GLIDEPATH_NODE_VERSION="${GLIDEPATH_NODE_VERSION:-24.21.0}"
GLIDEPATH_NODE_DIR="$GLIDEPATH_CACHE/node-$GLIDEPATH_NODE_VERSION"
export GLIDEPATH_ROOT="${GLIDEPATH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
if [ -x "$GLIDEPATH_NODE_DIR/bin/node" ]; then
  export PATH="$GLIDEPATH_NODE_DIR/bin:$PATH"
fi
# Runtime state of local servers (pids, logs, data dirs, kubeconfig). Per checkout, never committed.
export GLIDEPATH_STATE="${GLIDEPATH_STATE:-$GLIDEPATH_ROOT/.state}"
