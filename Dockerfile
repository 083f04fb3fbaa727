# rollguard as a container: needs the Docker socket (read-write: it recreates containers).
#   docker run -d --name rollguard --network host \
#     -v /var/run/docker.sock:/var/run/docker.sock -v /etc/rollguard:/etc/rollguard:ro \
#     -v rollguard-state:/var/lib/rollguard rollguard run --policy /etc/rollguard/policy.yaml
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/rollguard && chown node:node /var/lib/rollguard && chmod 0700 /var/lib/rollguard
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config ./config
ENV NODE_ENV=production ROLLGUARD_STATE_DIR=/var/lib/rollguard ROLLGUARD_LISTEN=127.0.0.1:9817
# The node user must be able to use the Docker socket: run with --group-add <gid of docker.sock>.
USER node
VOLUME ["/var/lib/rollguard"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9817/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--optimize-for-size", "/app/dist/cli/main.js"]
CMD ["run", "--policy", "/etc/rollguard/policy.yaml"]
