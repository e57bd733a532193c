#!/usr/bin/env bash
# Node 24 LTS from the npm registry (package `node` ships the binary) when the system Node is older.
set -euo pipefail
source "$(dirname "$0")/env.sh"
need_major=24
have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$have" -ge "$need_major" ]; then exit 0; fi
if [ ! -x "$GLIDEPATH_NODE_DIR/bin/node" ]; then
  echo "provision-node: installing node@$GLIDEPATH_NODE_VERSION from the npm registry into $GLIDEPATH_NODE_DIR" >&2
  tmp=$(mktemp -d)
  npm install --no-save --no-package-lock --prefix "$tmp" "node@$GLIDEPATH_NODE_VERSION" >&2
  bin=$(find "$tmp/node_modules" -path '*node-linux-*/bin/node' -type f | head -n1)
  [ -n "$bin" ] || { echo "provision-node: the node package shipped no binary" >&2; exit 1; }
  mkdir -p "$GLIDEPATH_NODE_DIR/bin"
  cp "$bin" "$GLIDEPATH_NODE_DIR/bin/node.tmp" && mv "$GLIDEPATH_NODE_DIR/bin/node.tmp" "$GLIDEPATH_NODE_DIR/bin/node"
  rm -rf "$tmp"
fi
"$GLIDEPATH_NODE_DIR/bin/node" --version >&2
