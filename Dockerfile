# The Glidepath worker (and the `glidepath` CLI, e.g. `glidepath codec-server`) on Node 24.
# Node runs the TypeScript sources directly (type stripping), so there is no compile step; the
# workflow bundle is prebuilt here so the worker does not bundle at every start.
#   docker build -t glidepath/worker:local .
#   docker run --rm -e TEMPORAL_ADDRESS=host:7233 -e GLIDEPATH_METRICS_ADDRESS=0.0.0.0:9464 glidepath/worker:local
# NODE_VERSION follows GLIDEPATH_NODE_VERSION in scripts/env.sh (test/compose.test.ts checks it).
ARG NODE_VERSION=24.21.0
FROM node:${NODE_VERSION}-bookworm-slim

# Memory (docs/operations.md, "Where the memory goes"): each of the worker's two V8 heaps (the main
# thread's and the workflow thread's) grows its young generation to 128 MiB (two 64 MiB semi-spaces)
# under allocation pressure; 4 MiB semi-spaces bound it to 8 MiB. MALLOC_ARENA_MAX=2: glibc's per-thread malloc arenas (the SDK's
# Rust core and Node's threads) otherwise keep freed memory out of the OS's reach. --expose-gc lets the worker compact
# its main thread's heap when it holds much unused memory (workers/memory-return.ts).
ENV NODE_ENV=production \
    NODE_OPTIONS="--disable-warning=ExperimentalWarning --max-semi-space-size=4 --expose-gc" \
    MALLOC_ARENA_MAX=2 \
    GLIDEPATH_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js \
    GLIDEPATH_METRICS_ADDRESS=0.0.0.0:9464
WORKDIR /app

# Dependencies first, so source edits reuse this layer. The Temporal core bridge ships prebuilt
# linux binaries in its npm package: nothing is compiled here, so install scripts are skipped.
# `npm install` with the lock present installs exactly the locked versions. Not `npm ci`: it rejects
# this lock ("Missing: @swc/core-darwin-arm64 from lock file"), as scripts/setup.sh explains.
COPY package.json package-lock.json ./
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# Only what runs: no tests, docs, hack/ or local state.
COPY bin ./bin
COPY scripts/env.sh ./scripts/env.sh
COPY model ./model
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY starters ./starters

RUN node workers/bundle.ts "$GLIDEPATH_WORKFLOW_BUNDLE" && chown -R node:node /app/dist

USER node
EXPOSE 9464 8888
# SIGTERM lets the worker finish in-flight activities (GLIDEPATH_SHUTDOWN_GRACE, 30 s by default).
STOPSIGNAL SIGTERM
CMD ["node", "workers/main.ts"]
