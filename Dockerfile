# idgate, for docker-compose.yml (README, Deployment). Build: docker build -t idgate .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund
COPY tsconfig.json nest-cli.json ./
COPY src ./src
RUN npx nest build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# In a container, loopback is the container's own: listen on every interface (a published port
# reaches it only through Docker's NAT). idgate's default is 0.0.0.0 with DATABASE_URL anyway;
# this keeps it so for a container started without one.
ENV HOST=0.0.0.0
# The image's folders, mounted as volumes by docker-compose.yml: the data folder (the first start's
# bootstrap admin key, mode 0600) and the audit witness (append-only evidence, kept apart from it).
ENV IDGATE_DATA_DIR=/var/lib/idgate/data
ENV AUDIT_WITNESS_DIR=/var/lib/idgate/witness
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
COPY package.json ./
# Owned by the user idgate runs as, before the volumes exist: a new named volume takes the
# ownership and mode of the folder it is mounted on. Owner-only: no one else reads the key file.
RUN mkdir -p /var/lib/idgate/data /var/lib/idgate/witness \
 && chown -R node:node /var/lib/idgate \
 && chmod 0700 /var/lib/idgate/data \
 && chmod 0755 /var/lib/idgate /var/lib/idgate/witness
USER node
EXPOSE 3000
# For `docker run` without compose too; the image has no curl, so Node's fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]
# Applies pending migrations, then serves. UPSTREAM_MODE (or UPSTREAM_TOKEN) must be given: with
# DATABASE_URL and neither, idgate refuses to start rather than serve simulated results.
CMD ["node", "dist/main.js"]
