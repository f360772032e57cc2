import path from 'node:path';
import { defineConfig } from 'prisma/config';

// Every Prisma CLI command first downloads a native schema engine, which this
// environment cannot reach. Pointing it at a stub skips the download; migrations
// are run by Prisma's WebAssembly schema engine instead (src/database/).
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= path.join(__dirname, 'prisma', 'no-native-engine.sh');

export default defineConfig({
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
});
