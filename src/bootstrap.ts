import path from 'node:path';
import { AppConfig, buildAppConfig } from './config/app-config';
import { ConfigError, EnvironmentVariables, readEnvironment } from './config/environment';
import { localDatabasePassword, withLocalSecrets } from './config/local-secrets';
import {
  DataDirHolder,
  DataDirInUseError,
  DataDirLock,
  dataDirHolder,
  lockDataDir,
  tryLockDataDir,
} from './database/data-dir-lock';
import { runningEmbeddedServer, startEmbeddedPostgres } from './database/embedded-postgres';
import { deriveRuntimePassword, prepareDatabase } from './database/runtime-role';

export interface Runtime {
  /** `config.databaseUrl` is the runtime role's: what the app and the CLI commands connect with. */
  config: AppConfig;
  /**
   * The owner role's URL, which applied the migrations and grants: only for what must own
   * the schema (writing a migration needs a shadow database). Never for the app.
   */
  ownerUrl: string;
  appliedMigrations: string[];
  /** Stops what prepareRuntime started (the embedded PostgreSQL), after the app has closed, and frees the data folder. */
  stop(): Promise<void>;
}

export interface RuntimeOptions {
  /**
   * The server (`npm start`): it must own the data folder, refuses one another idgate
   * holds, and adopts an embedded PostgreSQL left running by a killed idgate. Without
   * it (the CLI), a running server's database is used as is.
   */
  adoptOrphanDatabase?: boolean;
  log?: (line: string) => void;
}

/** How long a CLI command waits for another command to free the data folder. */
const COMMAND_WAIT_MS = 30_000;
/** How long a CLI command waits for a server that holds the folder to have its database up. */
const SERVER_DATABASE_WAIT_MS = 60_000;

/**
 * Everything that must happen before Nest starts: validate the environment, find or start
 * the database, apply pending migrations as the owner, and set up the runtime role the app
 * runs as (see src/database/runtime-role.ts):
 * - DATABASE_URL and DATABASE_OWNER_URL: the owner migrates and grants; DATABASE_URL is the
 *   runtime role, refused if it is the owner, a superuser, or owns anything.
 * - DATABASE_URL alone: it is the owner; idgate makes the runtime role `<database>_runtime`,
 *   its password derived from PII_HMAC_KEY (which every instance shares and which never changes).
 * - Embedded: the cluster's superuser is the owner; the runtime role `idgate_runtime` has a
 *   password derived from the superuser's generated one (secrets.json), which the server and
 *   every CLI command on the folder read alike.
 */
export async function prepareRuntime(env: NodeJS.ProcessEnv, options: RuntimeOptions = {}): Promise<Runtime> {
  const checked = readEnvironment(env);
  if (checked.DATABASE_URL) {
    const base = buildAppConfig(checked, checked.DATABASE_URL, false);
    const ownerUrl = checked.DATABASE_OWNER_URL ?? checked.DATABASE_URL;
    const prepared = await prepareDatabase({
      ownerUrl,
      runtime: checked.DATABASE_OWNER_URL
        ? { url: checked.DATABASE_URL }
        : { password: (role) => deriveRuntimePassword(base.pii.hmacKey, role) },
      settings: { runtime: 'DATABASE_URL', owner: checked.DATABASE_OWNER_URL ? 'DATABASE_OWNER_URL' : 'DATABASE_URL' },
    });
    return {
      config: { ...base, databaseUrl: prepared.runtimeUrl },
      ownerUrl,
      appliedMigrations: prepared.appliedMigrations,
      stop: async () => undefined,
    };
  }
  if (checked.DATABASE_OWNER_URL) {
    // The embedded cluster has an owner of its own: an owner URL alone is a half-made setup.
    throw new ConfigError('DATABASE_OWNER_URL', 'is set without DATABASE_URL (the runtime role): set both or neither');
  }
  const dataDir = path.resolve(checked.IDGATE_DATA_DIR);
  if (options.adoptOrphanDatabase) {
    // Before anything in the folder is touched: a second server leaves it all alone.
    const lock = await lockDataDir(dataDir, 'server');
    return ownedRuntime(env, checked, dataDir, lock, true);
  }
  return commandRuntime(env, checked, dataDir);
}

/** The embedded database, as its superuser (the owner), prepared with the runtime role the app uses. */
async function embeddedRuntime(
  withSecrets: EnvironmentVariables,
  db: { url: string },
  superuserPassword: string,
  stop: () => Promise<void>,
): Promise<Runtime> {
  const base = buildAppConfig(withSecrets, db.url, true);
  const prepared = await prepareDatabase({
    ownerUrl: db.url,
    runtime: { password: (role) => deriveRuntimePassword(superuserPassword, role) },
  });
  return {
    config: { ...base, databaseUrl: prepared.runtimeUrl },
    ownerUrl: db.url,
    appliedMigrations: prepared.appliedMigrations,
    stop,
  };
}

/**
 * A CLI command uses the database of a server that holds the folder, without ever
 * stopping it; with no server, it holds the folder itself while it runs.
 */
async function commandRuntime(
  env: NodeJS.ProcessEnv,
  checked: EnvironmentVariables,
  dataDir: string,
): Promise<Runtime> {
  const giveUpAt = Date.now() + COMMAND_WAIT_MS;
  for (;;) {
    const attempt = await tryLockDataDir(dataDir, 'command');
    if ('lock' in attempt) return ownedRuntime(env, checked, dataDir, attempt.lock, false);
    if (attempt.heldBy.role === 'server') {
      const runtime = await borrowedRuntime(env, dataDir, attempt.heldBy);
      if (runtime) return runtime;
      continue; // the server went away meanwhile: look again
    }
    // Another command: they are short, wait for it rather than share a database it will stop.
    if (Date.now() >= giveUpAt) throw new DataDirInUseError(dataDir, attempt.heldBy);
    await sleep(200);
  }
}

/** Starts (or, for the server, adopts) the embedded PostgreSQL under a lock already held. */
async function ownedRuntime(
  env: NodeJS.ProcessEnv,
  checked: EnvironmentVariables,
  dataDir: string,
  lock: DataDirLock,
  adoptOrphan: boolean,
): Promise<Runtime> {
  try {
    const withSecrets = readEnvironment(withLocalSecrets(env, dataDir));
    const password = localDatabasePassword(dataDir);
    const db = await startEmbeddedPostgres({
      dataDir,
      password,
      port: checked.EMBEDDED_PG_PORT,
      adoptOrphan,
      onLog: () => undefined,
    });
    try {
      return await embeddedRuntime(withSecrets, db, password, async () => {
        try {
          await db.stop();
        } finally {
          lock.release();
        }
      });
    } catch (err) {
      await db.stop();
      throw err;
    }
  } catch (err) {
    lock.release();
    throw err;
  }
}

/**
 * The database of the server holding the folder, used as is: never started, adopted
 * or stopped here. Null when that server stopped holding the folder while we waited.
 */
async function borrowedRuntime(
  env: NodeJS.ProcessEnv,
  dataDir: string,
  server: DataDirHolder,
): Promise<Runtime | null> {
  // The server takes the lock before it writes secrets and starts PostgreSQL: wait for both.
  const giveUpAt = Date.now() + SERVER_DATABASE_WAIT_MS;
  while (!runningEmbeddedServer(dataDir)) {
    if (dataDirHolder(dataDir)?.token !== server.token) return null;
    if (Date.now() >= giveUpAt) {
      throw new Error(
        `the data folder ${dataDir} is in use by another idgate (pid ${server.pid}) whose database is not running; try again when it is ready`,
      );
    }
    await sleep(200);
  }
  const withSecrets = readEnvironment(withLocalSecrets(env, dataDir));
  const password = localDatabasePassword(dataDir, 'read');
  const db = await startEmbeddedPostgres({ dataDir, attachOnly: true, password, onLog: () => undefined });
  // The same derivation as the server's: setting the runtime role's password again changes nothing for it.
  return embeddedRuntime(withSecrets, db, password, () => db.stop());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
