# syntax=docker/dockerfile:1
#
# dicom-gateway container image.
#
#   docker build -t dicom-gateway .
#   docker run -p 11112:11112 -v dicomgw-data:/var/lib/dicom-gateway \
#     -e DATABASE_URL=postgres://... -e S3_ENDPOINT=... -e S3_BUCKET=... dicom-gateway
#
# Ports: 11112 DICOM, 2762 DICOM TLS (when dicom.tls is configured), 8080 admin HTTP
# (/healthz, /readyz, /metrics, /status; set admin.host 0.0.0.0 and ADMIN_TOKEN to reach it
# from outside the container). Relative data paths (./data/...) resolve under
# /var/lib/dicom-gateway, the working directory: mount a volume there, it holds the spool of
# acknowledged instances. In a container, point DATABASE_URL at a PostgreSQL server rather
# than using the embedded one.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript, then drop the dev dependencies -------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds, and the sources are not copied yet (no dependency has
# an install script); the build runs below.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-migrations.mjs scripts/
COPY src/ src/
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# --- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="dicom-gateway" \
      org.opencontainers.image.description="DICOM C-STORE SCP storing Part-10 files unchanged in S3-compatible storage, indexed in PostgreSQL" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
RUN groupadd --system --gid 10001 dicomgw \
 && useradd --system --uid 10001 --gid dicomgw --home-dir /var/lib/dicom-gateway \
      --shell /usr/sbin/nologin dicomgw \
 && mkdir -p /var/lib/dicom-gateway /etc/dicom-gateway \
 && chown dicomgw:dicomgw /var/lib/dicom-gateway
# The application stays owned by root: the gateway cannot modify its own code.
COPY --from=build /app/package.json /app/package.json
COPY --from=build /app/node_modules /app/node_modules
COPY --from=build /app/dist /app/dist
WORKDIR /var/lib/dicom-gateway
# Acknowledged instances may wait in the spool here: never let them live only in a container layer.
VOLUME ["/var/lib/dicom-gateway"]
USER 10001:10001
EXPOSE 11112 2762 8080
# /healthz needs no token and answers while the process runs. The admin listener must be
# reachable on 127.0.0.1 inside the container (admin.host 127.0.0.1 or 0.0.0.0).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ADMIN_PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["serve"]
