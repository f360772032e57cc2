import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { spawnNode, Spawned } from '../../support/processes';
import { bearer, send } from './http';

/** An idgate process started from dist/main.js, with the URL it printed. */
export interface Idgate {
  proc: Spawned;
  url: string;
  /** The bootstrap admin key, when this start printed one. */
  bootstrapKey?: string;
}

/**
 * Everything a test started outside jest's own process, stopped in afterAll
 * whatever happened: idgate processes (SIGKILL if still alive), embedded
 * PostgreSQL servers left behind on a data dir, temp dirs.
 */
export class Cleanup {
  private readonly procs: Spawned[] = [];
  private readonly dataDirs: string[] = [];
  private readonly tasks: Array<() => Promise<unknown>> = [];

  track(proc: Spawned): Spawned {
    this.procs.push(proc);
    return proc;
  }

  /** A temp dir that may hold an embedded cluster under `pg/`: its server is stopped, then the dir removed. */
  dataDir(dir: string): string {
    this.dataDirs.push(dir);
    return dir;
  }

  defer(task: () => Promise<unknown>): void {
    this.tasks.push(task);
  }

  async run(): Promise<void> {
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exit;
      }
    }
    for (const task of this.tasks.reverse()) await task().catch(() => undefined);
    for (const dir of this.dataDirs) {
      await stopClusterOn(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The postmaster of the embedded cluster under `<dataDir>/pg`, from PostgreSQL's own pid file. */
export function clusterOn(dataDir: string): { pid: number; port: number } | null {
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? { pid, port: Number(portLine) } : null;
}

/** A superuser URL of the embedded cluster under `<dataDir>/pg` (its generated password is in secrets.json). */
export function clusterUrl(dataDir: string, database = 'idgate'): string {
  const cluster = clusterOn(dataDir);
  if (!cluster) throw new Error(`no embedded PostgreSQL runs in ${dataDir}`);
  const secrets = JSON.parse(readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as {
    EMBEDDED_PG_PASSWORD: string;
  };
  return `postgresql://postgres:${encodeURIComponent(secrets.EMBEDDED_PG_PASSWORD)}@127.0.0.1:${cluster.port}/${database}`;
}

/** Fast shutdown of a cluster left running (its idgate was killed), bounded in time. */
export async function stopClusterOn(dataDir: string): Promise<void> {
  const cluster = clusterOn(dataDir);
  if (!cluster) return;
  process.kill(cluster.pid, 'SIGINT');
  for (let i = 0; i < 100 && alive(cluster.pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive(cluster.pid)) process.kill(cluster.pid, 'SIGKILL');
}

/** The bootstrap admin key a first start wrote to its 0600 file (stdout is not a terminal here), if it did. */
export function bootstrapKeyOf(stdout: string): string | undefined {
  const file = /bootstrap admin API key written to (\S+)/.exec(stdout)?.[1];
  return file ? readFileSync(file, 'utf8').trim() : undefined;
}

/** Starts `node dist/main.js` and waits for it to listen. */
export async function startIdgate(cleanup: Cleanup, env: Record<string, string>): Promise<Idgate> {
  const proc = cleanup.track(spawnNode('dist/main.js', [], { PORT: '0', LOG_LEVEL: 'warn', ...env }));
  const [, url] = await proc.waitFor(/idgate listening on (http:\/\/\S+)/);
  return { proc, url: url.replace('localhost', '127.0.0.1'), bootstrapKey: bootstrapKeyOf(proc.stdout()) };
}

/** A client app and a key for it, made through the admin API. */
export async function clientKey(url: string, adminKey: string, name: string): Promise<string> {
  const created = await send(url, 'POST', '/v1/clients', { headers: bearer(adminKey), body: { name } });
  if (created.status !== 201) throw new Error(`POST /v1/clients: ${created.status} ${created.text}`);
  return staffKey(url, adminKey, 'client', (created.json as { id: string }).id);
}

/** A key of `role` made through the admin API (`clientId` for client keys). */
export async function staffKey(url: string, adminKey: string, role: string, clientId?: string): Promise<string> {
  const issued = await send(url, 'POST', '/v1/api-keys', {
    headers: bearer(adminKey),
    body: { role, name: `reliability ${role}`, ...(clientId ? { client_id: clientId } : {}) },
  });
  if (issued.status !== 201) throw new Error(`POST /v1/api-keys: ${issued.status} ${issued.text}`);
  return (issued.json as { key: string }).key;
}

/** Who holds `<dataDir>/idgate.lock` (the idgate owning that data folder), or null when there is no lock file. */
export function lockOn(dataDir: string): { pid: number; role: string } | null {
  const file = path.join(dataDir, 'idgate.lock');
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as { pid: number; role: string };
}
