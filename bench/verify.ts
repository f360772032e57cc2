/*
 * npm run bench:verify — the verification path end to end beside its SQL floor, in one run.
 *
 *   idgate   createApp() as `npm start` builds it, on a throwaway database (DATABASE_URL's server
 *            when set, otherwise an embedded PostgreSQL in a temp folder), listening on loopback;
 *            the sandbox upstream at latency 0 in a worker thread; 64 concurrent keep-alive HTTP
 *            clients (a worker thread) send BENCH_N (default 20,000) POST /v1/verifications after
 *            a warm-up: verifications/s, p50/p99.
 *   floor    the same number of verifications' worth of the SQL statements that path issues
 *            (bench/verify-floor.ts), sent straight to PostgreSQL with `pg` from 64 connections,
 *            values copied from the rows the app just wrote; the ratio idgate / floor.
 *   sealer   the audit sealer runs in the app: its backlog during the load and its catch-up after.
 *
 * The sides run interleaved in BENCH_ROUNDS rounds (default 4: idgate, floor, floor spread, ...),
 * so that other work on a shared machine weighs on all of them alike. The floor writes to a
 * second throwaway database with the same migrations, so the app's sealer never sees its rows.
 * Bounded by BENCH_N and BENCH_MAX_SECONDS (per side); loopback only; everything is stopped and
 * the databases dropped at the end. Knobs: BENCH_N, BENCH_WARMUP, BENCH_ROUNDS, BENCH_MAX_SECONDS, BENCH_POOL
 * (app pool, default 20), BENCH_CLIENTS (idgate clients the connections are spread over, default 1),
 * BENCH_LOAD=inline (load generator on the app's event loop), BENCH_LOG_LEVEL, BENCH_PROFILE=<file>
 * (CPU profile of the app's thread during the first measured round).
 */
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { INestApplication } from '@nestjs/common';
import pg from 'pg';
import { createApp } from '../src/app.factory';
import { systemContext } from '../src/audit/audit-vocabulary';
import { hashApiKey } from '../src/auth/api-key-secret';
import { ApiKeysService } from '../src/auth/api-keys.service';
import { ClientsService } from '../src/auth/clients.service';
import { ADMISSION_QUEUE_PER_CONNECTION, AppConfig } from '../src/config/app-config';
import { startEmbeddedPostgres } from '../src/database/embedded-postgres';
import { applyMigrations } from '../src/database/migrations';
import { projectRoot } from '../src/database/project-paths';
import {
  FLOOR_STATEMENTS,
  FloorIdentity,
  FloorKind,
  MINIMAL_STATEMENTS,
  runFloor,
  sampleTemplates,
} from './verify-floor';
import { LoadOrder, LoadReport, runLoad } from './verify-load';
import { startSandbox } from './sandbox';

const N = Number(process.env.BENCH_N ?? 20_000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1_000);
const CONCURRENCY = 64;
const POOL_SIZE = Number(process.env.BENCH_POOL ?? 20);
const ADMISSION_CONCURRENCY = Number(process.env.BENCH_ADMISSION_CONCURRENCY ?? POOL_SIZE);
const MAX_SECONDS = Number(process.env.BENCH_MAX_SECONDS ?? 900);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 4));
const LOAD_MODE = process.env.BENCH_LOAD === 'inline' ? 'inline' : 'worker';
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';
/** idgate clients (one API key each) the 64 connections are spread over; 1 = one client app sending 64 at a time. */
const CLIENTS = Math.min(CONCURRENCY, Math.max(1, Number(process.env.BENCH_CLIENTS ?? 1)));
const RATE_LIMIT_PER_MINUTE = 1_000_000;
const ACTOR = systemContext('bench');

const out = (line: string) => process.stdout.write(line + '\n');
const int = (n: number) => Math.round(n).toLocaleString('en');

/** CPU spent while `during` runs: this process (all its threads), the whole machine, and this thread's event loop. */
interface CpuUse {
  /** Wall-clock seconds measured. */
  seconds: number;
  /** Seconds of CPU this Node process used (main thread, load generator and sandbox workers). */
  processSeconds: number;
  /** Share of the machine's cores busy, split user / system. */
  machineUser: number;
  machineSystem: number;
  /** Event-loop utilisation of the main thread (the app's, during the app side). */
  mainLoop: number;
}

function cpuTimes() {
  const t = os.cpus().map((c) => c.times);
  const sum = (k: keyof os.CpuInfo['times']) => t.reduce((a, c) => a + c[k], 0);
  return {
    user: sum('user') + sum('nice'),
    system: sum('sys') + sum('irq'),
    total: t.reduce((a, c) => a + c.user + c.nice + c.sys + c.irq + c.idle, 0),
  };
}

async function measured<T>(during: () => Promise<T>): Promise<{ value: T; cpu: CpuUse }> {
  const t0 = performance.now();
  const p0 = process.cpuUsage();
  const m0 = cpuTimes();
  const l0 = performance.eventLoopUtilization();
  const value = await during();
  const p = process.cpuUsage(p0);
  const m1 = cpuTimes();
  const total = m1.total - m0.total || 1;
  return {
    value,
    cpu: {
      seconds: (performance.now() - t0) / 1000,
      processSeconds: (p.user + p.system) / 1e6,
      machineUser: (m1.user - m0.user) / total,
      machineSystem: (m1.system - m0.system) / total,
      mainLoop: performance.eventLoopUtilization(l0).utilization,
    },
  };
}

/** With BENCH_PROFILE=<file>, a CPU profile of the main thread (the app) while `during` runs. */
async function profiled<T>(during: () => Promise<T>): Promise<T> {
  const file = process.env.BENCH_PROFILE;
  if (!file) return during();
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.start');
  try {
    return await during();
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: object };
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
}

/**
 * Statements the app sends to PostgreSQL (each one round trip: the pg adapter sends parse, bind
 * and execute in one flight), counted on the app's own pool (application_name idgate): the
 * request path's, and the background workers' (sealer, sweeper) while the load runs.
 */
const appStatements = { count: 0 };
{
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (
    this: pg.Client & { connectionParameters?: { application_name?: string } },
    ...args: unknown[]
  ) {
    if (this.connectionParameters?.application_name === 'idgate') appStatements.count++;
    return query.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** DATABASE_URL's server, or an embedded PostgreSQL in a temp folder; makes throwaway databases on it. */
async function databaseServer(): Promise<{ label: string; create(): Promise<string>; close(): Promise<void> }> {
  let adminUrl = process.env.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | undefined;
  let dataDir: string | undefined;
  if (!adminUrl) {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-bench-verify-'));
    const db = await startEmbeddedPostgres({ dataDir, database: 'postgres', ephemeral: true });
    adminUrl = db.adminUrl;
    stopEmbedded = () => db.stop();
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  admin.on('error', () => undefined);
  const created: string[] = [];
  try {
    await admin.connect();
  } catch (err) {
    await stopEmbedded?.();
    throw err;
  }
  const [{ server_version }] = (await admin.query<{ server_version: string }>('SHOW server_version')).rows;
  return {
    label: `PostgreSQL ${server_version.split(' ')[0]}${stopEmbedded ? ' (embedded, temp dir)' : ' (DATABASE_URL)'}`,
    async create() {
      const name = `idgate_bench_verify_${randomBytes(4).toString('hex')}`;
      await admin.query(`CREATE DATABASE "${name}"`);
      created.push(name);
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async close() {
      try {
        for (const name of created) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.end();
      } finally {
        await stopEmbedded?.();
        if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * `tsc -p tsconfig.bench.json` compiles src/ but does not copy the static files nest-cli's `assets`
 * copies for `nest build` (e.g. the console's): copy them next to the compiled modules, as nest-cli does.
 */
function copyNestAssets(): void {
  const root = projectRoot();
  const nestCli = path.join(root, 'nest-cli.json');
  if (!existsSync(nestCli)) return;
  const cli = JSON.parse(readFileSync(nestCli, 'utf8')) as {
    sourceRoot?: string;
    compilerOptions?: { assets?: Array<string | { include: string }> };
  };
  for (const asset of cli.compilerOptions?.assets ?? []) {
    const include = typeof asset === 'string' ? asset : asset.include;
    const dir = include.split('/').filter((part) => !/[*?[{]/.test(part));
    const from = path.join(root, cli.sourceRoot ?? 'src', ...dir);
    if (existsSync(from)) cpSync(from, path.join(__dirname, '..', 'src', ...dir), { recursive: true });
  }
}

function benchConfig(databaseUrl: string, upstreamUrl: string): AppConfig {
  // Production defaults (src/config/environment.ts) except the pool, the log level and throwaway keys.
  const config = {
    port: 0,
    databaseUrl,
    databasePoolSize: POOL_SIZE,
    embeddedDatabase: false,
    dataDir: '.data',
    upstream: {
      baseUrl: upstreamUrl,
      timeoutMs: 10_000,
      maxAttempts: 3,
      retryBaseDelayMs: 200,
      retryMaxDelayMs: 2000,
      breakerThreshold: 5,
      breakerCooldownMs: 30_000,
      keepAliveIdleMs: 3000,
      mode: 'sandbox',
    },
    // Admission control as idgate derives it from the pool, unless BENCH_ADMISSION_* say otherwise.
    admission: {
      concurrency: ADMISSION_CONCURRENCY,
      queue: Number(process.env.BENCH_ADMISSION_QUEUE ?? ADMISSION_CONCURRENCY * ADMISSION_QUEUE_PER_CONNECTION),
      queueWaitMs: 2000,
    },
    settleWaitMs: 5000,
    shutdownDrainMs: 25_000,
    backgroundWorkers: true,
    sandbox: { port: 0 },
    pii: { keys: [{ id: 'bench', key: randomBytes(32) }], hmacKey: randomBytes(32) },
    billing: { pricePerChargedCall: 50, currency: 'CNY' },
    logLevel: LOG_LEVEL,
    bodyLimitBytes: 5 * 1024 * 1024,
    audit: {
      signingKeySeed: randomBytes(32),
      macKey: randomBytes(32),
      witnessDir: mkdtempSync(path.join(os.tmpdir(), 'idgate-bench-witness-')),
      orderToleranceMs: 300_000,
      sealIntervalMs: 200,
      checkpointIntervalMs: 60_000,
      sealStallMs: 60_000,
    },
    http: { host: '127.0.0.1', trustProxy: [] },
    // Production defaults for searches; refusals never happen in this bench.
    abuse: { piiSearchesPerHour: 100, authFailuresPerMinute: 30 },
    imageUrlPorts: [443],
  } satisfies Omit<AppConfig, 'rateLimit'>;
  // The per-key rate limit still runs (in-process counters), set high enough never to refuse the bench.
  return { ...config, rateLimit: { perMinute: RATE_LIMIT_PER_MINUTE } } as AppConfig;
}

/** The load generator: a worker thread (default) or the app's own event loop (BENCH_LOAD=inline). */
function loadGenerator(): { run(order: LoadOrder): Promise<LoadReport>; close(): Promise<void> } {
  if (LOAD_MODE === 'inline') return { run: runLoad, close: async () => undefined };
  const worker = new Worker(path.join(__dirname, 'verify-load.js'));
  return {
    run: (order) =>
      new Promise((resolve, reject) => {
        worker.once('error', reject);
        worker.once('message', (report: LoadReport) => {
          worker.off('error', reject);
          resolve(report);
        });
        worker.postMessage(order);
      }),
    close: async () => {
      await worker.terminate();
    },
  };
}

/** Counts of audit events and of chained ones; the difference is the sealer's backlog. */
async function auditCounts(db: pg.Client): Promise<{ events: number; sealed: number }> {
  const { rows } = await db.query<{ events: string; sealed: string }>(
    'SELECT (SELECT count(*) FROM audit_events) AS events, (SELECT count(*) FROM audit_chain) AS sealed',
  );
  return { events: Number(rows[0].events), sealed: Number(rows[0].sealed) };
}

interface Idgate {
  /** Keys the load uses (the first CLIENTS). */
  order: Omit<LoadOrder, 'count' | 'referencePrefix' | 'deadlineMs'>;
  /** One client and key per connection, for the floor. */
  identities: FloorIdentity[];
  load: { run(order: LoadOrder): Promise<LoadReport>; close(): Promise<void> };
  monitor: pg.Client;
  sandboxCalls(): Promise<number>;
  close(): Promise<void>;
}

/** The app as `npm start` builds it, the sandbox, the load generator and a monitoring connection. */
async function startIdgate(dbUrl: string): Promise<Idgate> {
  copyNestAssets();
  const sandbox = await startSandbox();
  const load = loadGenerator();
  const monitor = new pg.Client({ connectionString: dbUrl });
  monitor.on('error', () => undefined);
  let app: INestApplication | undefined;
  const close = async () => {
    await app?.close();
    await load.close();
    await monitor.end();
    await sandbox.close();
  };
  try {
    await monitor.connect();
    app = await createApp(benchConfig(dbUrl, sandbox.url));
    await app.listen(0, '127.0.0.1');
    const url = await app.getUrl();
    const apiKeys: string[] = [];
    const identities: FloorIdentity[] = [];
    for (let c = 0; c < CONCURRENCY; c++) {
      const client = await app.get(ClientsService).findOrCreateClient(`bench client ${c}`, ACTOR);
      const key = await app
        .get(ApiKeysService)
        .createKey({ role: 'client', name: 'bench', clientId: client.id }, ACTOR, { kind: 'shell' });
      apiKeys.push(key.key);
      identities.push({ clientId: client.id, apiKeyId: key.id, keyHash: hashApiKey(key.key) });
    }
    return {
      order: { url, apiKeys: apiKeys.slice(0, CLIENTS), concurrency: CONCURRENCY },
      identities,
      load,
      monitor,
      sandboxCalls: () => sandbox.calls(),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The floor's own database: same migrations, and the clients and keys its statements name. */
async function prepareFloorDatabase(floorUrl: string, appDb: pg.Client): Promise<void> {
  await applyMigrations(floorUrl);
  const db = new pg.Client({ connectionString: floorUrl });
  await db.connect();
  try {
    for (const table of ['clients', 'api_keys']) {
      const { rows } = await appDb.query<{ rows: unknown }>(`SELECT json_agg(t) AS rows FROM ${table} t`);
      await db.query(`INSERT INTO ${table} SELECT * FROM json_populate_recordset(null::${table}, $1)`, [
        JSON.stringify(rows[0].rows),
      ]);
    }
  } finally {
    await db.end();
  }
}

/** One side's results, summed over rounds. */
class Tally {
  private readonly chunks: Float64Array[] = [];
  elapsedMs = 0;
  errors = 0;
  timedOut = false;
  firstError: string | null = null;
  private cpu = { seconds: 0, processSeconds: 0, user: 0, system: 0, loop: 0 };
  /** Statements the app sent while this side ran (idgate's side only). */
  statements = 0;

  constructor(readonly label: string) {}

  add(
    r: { latencies: Float64Array; elapsedMs: number; timedOut: boolean; firstError: string | null },
    errors: number,
    cpu: CpuUse,
  ) {
    this.chunks.push(r.latencies);
    this.elapsedMs += r.elapsedMs;
    this.errors += errors;
    this.timedOut ||= r.timedOut;
    this.firstError ??= r.firstError;
    this.cpu.seconds += cpu.seconds;
    this.cpu.processSeconds += cpu.processSeconds;
    this.cpu.user += cpu.machineUser * cpu.seconds;
    this.cpu.system += cpu.machineSystem * cpu.seconds;
    this.cpu.loop += cpu.mainLoop * cpu.seconds;
  }

  get count(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  get rate(): number {
    return this.count / (this.elapsedMs / 1000);
  }

  /** Milliseconds left of this side's time budget. */
  get budgetMs(): number {
    return Math.max(0, MAX_SECONDS * 1000 - this.elapsedMs);
  }

  row(): string {
    const all = new Float64Array(this.count);
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    all.sort();
    const s = this.cpu.seconds || 1;
    return (
      this.label.padEnd(LABEL) +
      int(this.rate).padStart(8) +
      percentile(all, 50).toFixed(1).padStart(9) +
      percentile(all, 99).toFixed(1).padStart(9) +
      (this.elapsedMs / 1000).toFixed(1).padStart(8) +
      String(this.errors).padStart(8) +
      ((this.cpu.processSeconds * 1000) / Math.max(1, this.count)).toFixed(2).padStart(19) +
      `${pct((this.cpu.user + this.cpu.system) / s)} (${pct(this.cpu.user / s)}+${pct(this.cpu.system / s)})`.padStart(
        22,
      ) +
      pct(this.cpu.loop / s).padStart(16) +
      ((this.cpu.loop * 1000) / Math.max(1, this.count)).toFixed(2).padStart(19) +
      (this.statements ? (this.statements / Math.max(1, this.count)).toFixed(2) : '').padStart(14)
    );
  }
}

const LABEL = 42;
const pct = (x: number) => `${Math.round(x * 100)}%`;
const HEADER =
  ''.padEnd(LABEL) +
  'verif/s'.padStart(8) +
  'p50 ms'.padStart(9) +
  'p99 ms'.padStart(9) +
  'wall s'.padStart(8) +
  'errors'.padStart(8) +
  'node CPU ms/verif'.padStart(19) +
  'machine busy usr+sys'.padStart(22) +
  'main loop busy'.padStart(16) +
  'main ms/verif'.padStart(19) +
  'round trips'.padStart(14);

function summarize(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ×${int(v)}`)
    .join(', ');
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  const before = await measured(() => new Promise((r) => setTimeout(r, 1000)));
  const overrides = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_') || k === 'DATABASE_URL')
    .map(([k, v]) => (k === 'DATABASE_URL' ? 'DATABASE_URL=…' : `${k}=${v}`));
  out(`bench:verify — ${[...overrides, 'npm run bench:verify'].join(' ')}`);
  out(
    `node ${process.version}, ${cpus.length} CPU(s) (${cpus[0]?.model ?? 'unknown'}); the app, the load generator, ` +
      `the sandbox and PostgreSQL all share them. Before start: load average ${os.loadavg()[0].toFixed(1)}, ` +
      `machine ${pct(before.cpu.machineUser + before.cpu.machineSystem)} busy (other processes)`,
  );
  const server = await databaseServer();
  let idgate: Idgate | undefined;
  let floorPool: pg.Pool | undefined;
  try {
    const appUrl = await server.create();
    const floorUrl = await server.create();
    await applyMigrations(appUrl);
    out(`database: ${server.label}; two throwaway databases (idgate's, the floor's) with the real migrations`);
    out(
      `idgate: createApp() listening on 127.0.0.1, Prisma pool ${POOL_SIZE}, log level ${LOG_LEVEL}, ` +
        `per-key rate limit ${int(RATE_LIMIT_PER_MINUTE)}/min (runs, never refuses); sandbox upstream at latency 0 in a worker thread`,
    );
    out(
      `load: ${CONCURRENCY} concurrent keep-alive HTTP clients in ${LOAD_MODE === 'worker' ? 'a worker thread' : "the app's own event loop"}, ` +
        `${CLIENTS === 1 ? 'one idgate client (one API key)' : `${CLIENTS} idgate clients (a key each)`}, name + id_card of the ` +
        `sandbox's fixture identities in turn, distinct references, no Idempotency-Key`,
    );
    out(
      `each side: ${int(WARMUP)} warm-up, then ${int(N)} verifications in ${ROUNDS} interleaved round(s) ` +
        `(cap ${MAX_SECONDS} s per side)`,
    );

    idgate = await startIdgate(appUrl);
    const { monitor } = idgate;
    await prepareFloorDatabase(floorUrl, monitor);
    floorPool = new pg.Pool({ connectionString: floorUrl, max: CONCURRENCY });
    floorPool.on('error', () => undefined); // idle connections cut when the database is dropped

    const appSide = new Tally('idgate: POST /v1/verifications');
    const floorSide = new Tally(`floor: same ${FLOOR_STATEMENTS} statements via pg`);
    const minimalSide = new Tally(`minimal floor: ${MINIMAL_STATEMENTS} one-statement writes`);
    const statuses: Record<string, number> = {};
    const outcomes: Record<string, number> = {};
    let sent = 0;
    const sealer = { backlogMax: 0, backlogAtEndMax: 0, catchUpMaxMs: 0 as number | null };

    const warm = await idgate.load.run({
      ...idgate.order,
      count: WARMUP,
      referencePrefix: 'warmup',
      deadlineMs: MAX_SECONDS * 1000,
    });
    if (warm.firstError) throw new Error(`warm-up failed: ${warm.firstError}`);
    const templates = await sampleTemplates(monitor);
    const floors: Array<{ side: Tally; identities: FloorIdentity[]; prefix: string; kind: FloorKind }> = [
      { side: floorSide, identities: idgate.identities.slice(0, CLIENTS), prefix: 'floor', kind: 'replay' },
      { side: minimalSide, identities: idgate.identities.slice(0, CLIENTS), prefix: 'minimal', kind: 'minimal' },
    ];
    for (const f of floors) {
      const order = {
        concurrency: CONCURRENCY,
        count: WARMUP,
        referencePrefix: `${f.prefix}-warmup`,
        deadlineMs: MAX_SECONDS * 1000,
      };
      const w = await runFloor(floorPool, templates, f.identities, order, f.kind);
      if (w.firstError) throw new Error(`floor warm-up failed: ${w.firstError}`);
    }

    for (let round = 0; round < ROUNDS; round++) {
      const count = Math.floor(N / ROUNDS) + (round < N % ROUNDS ? 1 : 0);
      // idgate, with the sealer's backlog sampled each second and its catch-up timed after.
      let sampling = Promise.resolve();
      const timer = setInterval(() => {
        sampling = sampling.then(async () => {
          const c = await auditCounts(monitor);
          sealer.backlogMax = Math.max(sealer.backlogMax, c.events - c.sealed);
        });
      }, 1000);
      const order = { ...idgate.order, count, referencePrefix: `bench-${round}`, deadlineMs: appSide.budgetMs };
      const run = () => measured(() => idgate!.load.run(order));
      const statementsBefore = appStatements.count;
      const { value: r, cpu } = round === 0 ? await profiled(run) : await run();
      appSide.statements += appStatements.count - statementsBefore;
      clearInterval(timer);
      await sampling;
      appSide.add(r, r.latencies.length - (r.statuses['201'] ?? 0), cpu);
      sent += r.sent;
      for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v;
      const loadEnded = performance.now();
      let counts = await auditCounts(monitor);
      sealer.backlogAtEndMax = Math.max(sealer.backlogAtEndMax, counts.events - counts.sealed);
      sealer.backlogMax = Math.max(sealer.backlogMax, counts.events - counts.sealed);
      while (counts.events > counts.sealed && performance.now() - loadEnded < 60_000) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        counts = await auditCounts(monitor);
      }
      sealer.catchUpMaxMs =
        counts.events > counts.sealed || sealer.catchUpMaxMs === null
          ? null
          : Math.max(sealer.catchUpMaxMs, performance.now() - loadEnded);

      // The floors, while the app is idle.
      for (const f of floors) {
        const fo = {
          concurrency: CONCURRENCY,
          count,
          referencePrefix: `${f.prefix}-${round}`,
          deadlineMs: f.side.budgetMs,
        };
        const { value: fr, cpu: fc } = await measured(() => runFloor(floorPool!, templates, f.identities, fo, f.kind));
        f.side.add(fr, fr.errors, fc);
      }
    }
    const final = await auditCounts(monitor);
    const sandboxCalls = await idgate.sandboxCalls();

    out('');
    out(HEADER);
    out(appSide.row());
    out(floorSide.row());
    out(minimalSide.row());
    out(
      `${'idgate / floor (statement replay)'.padEnd(LABEL)}${(appSide.rate / floorSide.rate).toFixed(2).padStart(8)}`,
    );
    out(`${'idgate / minimal floor'.padEnd(LABEL)}${(appSide.rate / minimalSide.rate).toFixed(2).padStart(8)}`);
    out('');
    out(
      `idgate answers: HTTP ${summarize(statuses)}; status/result ${summarize(outcomes)}; ` +
        `the sandbox counted ${int(sandboxCalls)} calls for ${int(WARMUP + sent)} verifications sent (warm-up included)`,
    );
    for (const side of [appSide, floorSide, minimalSide]) {
      if (side?.firstError) out(`first error, ${side.label}: ${side.firstError}`);
    }
    if (appSide.timedOut || floorSide.timedOut || minimalSide.timedOut) {
      out(`a side stopped at its ${MAX_SECONDS} s cap before ${int(N)}: the figures cover what completed`);
    }
    out(
      `audit sealer (in the app, every 200 ms): at most ${int(sealer.backlogMax)} events unsealed (sampled each second), ` +
        `at most ${int(sealer.backlogAtEndMax)} at a round's last response, ` +
        (sealer.catchUpMaxMs === null
          ? `and some still unsealed 60 s after a round (${int(final.events - final.sealed)} at the end)`
          : `all chained within ${int(sealer.catchUpMaxMs)} ms after each round; ${int(final.sealed)} of ${int(final.events)} events chained at the end`),
    );
    out(
      `floor, per verification: key lookup; BEGIN, client_policies read, INSERT verifications ` +
        `(pending), INSERT audit_events, COMMIT; BEGIN, SELECT the row, UPDATE to completed, INSERT audit_events, COMMIT ` +
        `(Prisma's SQL text, values copied from the app's rows, ${CONCURRENCY} connections, the floor's own database)`,
    );
    out(
      `minimal floor, per verification: one statement writes the pending row and its audit event, one settles it ` +
        `and writes its event (data-modifying CTEs, autocommit); the key lookup cached as idgate caches it ` +
        `(same values, connections and database as the floor)`,
    );
    out(
      `main ms/verif = the main thread's busy time (event-loop utilisation × wall time) per verification; ` +
        `round trips = statements the app's pool sent per verification during its rounds (sealer and sweeper included)`,
    );
    out(
      `node CPU = this process's CPU time (app, load generator and sandbox threads; floor: the pg client) per verification; ` +
        `machine busy = all cores, all processes, PostgreSQL included; main loop busy = event-loop utilisation of the main thread`,
    );
  } finally {
    await idgate?.close();
    await floorPool?.end();
    await server.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
