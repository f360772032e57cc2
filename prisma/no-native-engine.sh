#!/bin/sh
# Stand-in for Prisma's native schema engine, which cannot be downloaded here.
# Migrations run through @prisma/schema-engine-wasm instead (src/database/schema-engine.ts).
echo "idgate: the native Prisma schema engine is not used; run npm run cli -- migrate" >&2
exit 1
