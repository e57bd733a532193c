# The Glidepath worker (and the `glidepath` CLI, e.g. `glidepath codec-server`) on Node 24.
# Node runs the TypeScript sources directly (type stripping), so there is no compile step; the
# workflow bundle is prebuilt here so the worker does not bundle at every start.
#   docker build -t glidepath/worker:local .
#   docker run --rm -e TEMPORAL_ADDRESS=host:7233 -e GLIDEPATH_METRICS_ADDRESS=0.0.0.0:9464 glidepath/worker:local
# NODE_VERSION follows GLIDEPATH_NODE_VERSION in scripts/env.sh (test/compose.test.ts checks it).
ARG NODE_VERSION=24.21.0
FROM node:${NODE_VERSION}-bookworm-slim

ENV NODE_ENV=production \
    NODE_OPTIONS=--disable-warning=ExperimentalWarning \
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
