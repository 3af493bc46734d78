# The hypervisor's worker (docker-compose.yml builds it twice: worker-1, worker-2).
#   docker build -t agent-hypervisor-worker .
# Node 20 on Debian bookworm, as package.json's engines (node >= 20.19) and
# the native cluster's Debian. Not built in this repository's tests (no
# Docker engine there); the compose file that uses it is checked by
# tests/deploy/compose.test.ts.

# Dependencies in their own stage: better-sqlite3 is a native module. npm ci
# takes its prebuilt binary for this Node and platform when one is published
# and compiles it otherwise; the compilers for that stay in this stage.
FROM node:20-bookworm-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only: tsx (which runs the TypeScript) is one of them.
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PATH=/app/node_modules/.bin:$PATH
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# The image's unprivileged user; the worker writes nothing under /app (its
# audit store is PostgreSQL, HV_AUDIT_DATABASE_URL; tsx caches in /tmp).
USER node
# package.json's "worker" script, without npm in between, so SIGTERM reaches
# the worker's graceful shutdown (worker/main.ts); tsx passes it on to node.
CMD ["tsx", "worker/main.ts"]
