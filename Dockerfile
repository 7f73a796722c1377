# syntax=docker/dockerfile:1
# Brána on a Node LTS image: dependencies are built in the first stage (sqlite3 compiles a native
# addon), only production dependencies and the sources reach the runtime stage, which runs as a
# non-root user. Node 22 strips TypeScript types itself, so there is no build step.
FROM node:22-bookworm-slim AS dependencies
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# patch-package applies these at install (postinstall): see docs/BENCHMARKS.md, "Patches".
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
ENV NODE_ENV=production BRANA_MODE=production BRANA_BIND_HOST=0.0.0.0 BRANA_PORT=3000
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
COPY providers ./providers
COPY metadata ./metadata
RUN mkdir -p /app/data /app/keys && chown -R node:node /app/data /app/keys
USER node
EXPOSE 3000
VOLUME ["/app/data", "/app/keys"]
# /healthz: the process is up (restart it if not). Load balancers should use /readyz instead.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.BRANA_PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM: finish logins in flight (BRANA_SHUTDOWN_GRACE_SECONDS, keep it below the orchestrator's
# stop timeout) and stop. SIGHUP: re-read the signing keys at once.
STOPSIGNAL SIGTERM
# --experimental-async-context-frame, --heap-growing-percent=50: README, "Performance" (AsyncLocalStorage
# without promise hooks; a heap that grows to 1.5x what is live, not capped).
CMD ["node", "--experimental-async-context-frame", "--heap-growing-percent=50", "src/main.ts"]
