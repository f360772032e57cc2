import path from 'node:path';
import { AppConfig, buildAppConfig } from './config/app-config';
import { readEnvironment } from './config/environment';
import { withLocalSecrets } from './config/local-secrets';
import { startEmbeddedPostgres } from './database/embedded-postgres';
import { applyMigrations } from './database/migrations';

export interface Runtime {
  config: AppConfig;
  appliedMigrations: string[];
  /** Stops what prepareRuntime started (the embedded PostgreSQL), after the app has closed. */
  stop(): Promise<void>;
}

export interface RuntimeOptions {
  /** Adopt an embedded PostgreSQL left running by a killed idgate (the server does; the CLI does not). */
  adoptOrphanDatabase?: boolean;
  log?: (line: string) => void;
}

/**
 * Everything that must happen before Nest starts: validate the environment,
 * find or start the database, and apply pending migrations.
 */
export async function prepareRuntime(env: NodeJS.ProcessEnv, options: RuntimeOptions = {}): Promise<Runtime> {
  const checked = readEnvironment(env);
  if (checked.DATABASE_URL) {
    const config = buildAppConfig(checked, checked.DATABASE_URL, false);
    const appliedMigrations = await applyMigrations(config.databaseUrl);
    return { config, appliedMigrations, stop: async () => undefined };
  }
  const dataDir = path.resolve(checked.IDGATE_DATA_DIR);
  const withSecrets = readEnvironment(withLocalSecrets(env, dataDir));
  const db = await startEmbeddedPostgres({
    dataDir,
    port: checked.EMBEDDED_PG_PORT,
    adoptOrphan: options.adoptOrphanDatabase,
    onLog: () => undefined,
  });
  try {
    const config = buildAppConfig(withSecrets, db.url, true);
    const appliedMigrations = await applyMigrations(config.databaseUrl);
    return { config, appliedMigrations, stop: () => db.stop() };
  } catch (err) {
    await db.stop();
    throw err;
  }
}
