# syntax=docker/dockerfile:1
# One image for every comanda process (api, worker, notifier, relay, migrate): the command picks the process.
# It runs the JavaScript that `npm run build` compiles (docs/adr/0007): plain node, no loader at run time.

# Compiles TypeScript to dist/ with the full (dev) install; only dist/ leaves this stage.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# The production dependencies alone: no TypeScript, no tsx, no test tools.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    PORT=3000
WORKDIR /app
# The code and its dependencies belong to root and are only readable by the user that runs them.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# `node` (uid 1000) comes with the base image.
USER node
EXPOSE 3000
# The api answers /healthz; compose replaces this check for the processes without an HTTP port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The same command as `npm run start:prod:api`, without npm and `sh -c` in between: those do not pass SIGTERM on
# to node, and comanda's graceful shutdown (finish in-flight work, ack, close) depends on receiving it.
CMD ["node", "--import", "./dist/lib/telemetry-register.js", "dist/api/main.js"]
