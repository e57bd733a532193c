#!/usr/bin/env bash
# Type check and lint (deterministic workflow code, no floating promises).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GLIDEPATH_ROOT"
node node_modules/typescript/bin/tsc -p .
node node_modules/eslint/bin/eslint.js --max-warnings 0 .
