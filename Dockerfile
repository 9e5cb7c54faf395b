# syntax=docker/dockerfile:1
# One image for every comanda process (api, worker, notifier, relay, migrate): the command picks the process.
# There is no build step: TypeScript runs through tsx, as the package scripts do.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# tsx is a runtime dependency, so the production install is enough to run every entry point.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    PORT=3000
WORKDIR /app
# The code and its dependencies belong to root and are only readable by the user that runs them.
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# `node` (uid 1000) comes with the base image; tsx keeps its transform cache in /tmp, which it can write.
USER node
EXPOSE 3000
# The api answers /healthz; compose replaces this check for the processes without an HTTP port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The same command as `npm run start:api`, without npm and `sh -c` in between: those do not pass SIGTERM on to
# node, and comanda's graceful shutdown (finish in-flight work, ack, close) depends on receiving it.
CMD ["node", "--import", "tsx", "api/main.ts"]
