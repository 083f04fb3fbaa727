# rollguard as a container: needs the Docker socket (read-write: it recreates containers), and the
# socket's group so the non-root user may use it.
#   docker build --network host -t rollguard .
#   docker run -d --name rollguard --network host --restart unless-stopped \
#     --group-add "$(stat -c %g /var/run/docker.sock)" -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /etc/rollguard:/etc/rollguard:ro -v rollguard-state:/var/lib/rollguard rollguard
# Without a registry, scripts/make-base-image.sh makes node:20-bookworm-slim locally (README).
FROM node:20-bookworm-slim AS build
# A compiler for better-sqlite3 (the embedded store), built from source in this stage only.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# No lifecycle scripts here: `prepare` would build before src/ is copied, and the optional native
# builds (ssh2, cpu-features) are not needed. The build runs below.
RUN npm ci --no-audit --no-fund --ignore-scripts
# better-sqlite3 from source, against the Node.js headers the image carries (/usr/local/include/node):
# nothing is downloaded (no prebuilt binary, no headers). Only the module itself is kept.
RUN npm rebuild better-sqlite3 --build-from-source --nodedir=/usr/local \
 && node -e "new (require('better-sqlite3'))(':memory:').close()" \
 && find node_modules/better-sqlite3/build -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} + \
 && find node_modules/better-sqlite3/build/Release -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} + \
 && rm -rf node_modules/better-sqlite3/deps node_modules/better-sqlite3/src
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/rollguard && chown node:node /var/lib/rollguard && chmod 0700 /var/lib/rollguard
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config ./config
# The listen address is set here (not with --listen) so the health check asks the same address.
ENV NODE_ENV=production ROLLGUARD_STATE_DIR=/var/lib/rollguard ROLLGUARD_LISTEN=127.0.0.1:9817
USER node
VOLUME ["/var/lib/rollguard"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["node", "-e", "fetch(`http://${process.env.ROLLGUARD_LISTEN}/healthz`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--optimize-for-size", "/app/dist/cli/main.js"]
CMD ["run", "--policy", "/etc/rollguard/policy.yaml"]
