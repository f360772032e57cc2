/*
 * npm run bench:overhead — the latency idgate adds on top of the upstream.
 *   (script: "tsc -p tsconfig.bench.json && node dist/bench/bench/overhead.js")
 *
 * The same verifications (name + id_card of the sandbox's fixture identities, in the same order)
 * are sent to the sandbox upstream directly (POST /identity/idcard/ocr, 200 expected) and through
 * idgate (POST /v1/verifications with a client key, 201 and a completed verification expected),
 * at 1, 8 and 64 concurrent keep-alive clients. idgate adds its p50 minus the direct p50 (and p99
 * minus p99). Target: at most 3 ms added p50 at 8 clients.
 *
 *   idgate    createApp() in this process (main thread), configured as `npm start` configures it
 *             from its environment (production defaults: pool 10, log level info, here written to
 *             /dev/null) except a per-key rate limit that never refuses the bench; a throwaway
 *             database (bench/throwaway-database.ts: DATABASE_URL's server, else an embedded
 *             PostgreSQL) with the real migrations; one client and its API key.
 *   upstream  the sandbox at latency 0 in a worker thread (bench/sandbox-worker.ts), one instance
 *             for both paths; its call count must equal the requests sent on both paths.
 *   clients   a second worker thread (this file) sends every request, timed with
 *             process.hrtime.bigint() from the request to the end of the answer; a fresh
 *             http.Agent per run (keepAlive, maxSockets = the concurrency) whose connections are
 *             opened by `concurrency` untimed requests first.
 *
 * Per concurrency: a warm-up on each path, then OVERHEAD_ROUNDS rounds interleaved (direct,
 * idgate, direct, idgate, ...), the same request sequence on both paths of a round. Every answer's
 * status is checked; any error (or a sandbox call count that does not match) is reported on
 * stderr and the exit code is 1. Everything is stopped and the database dropped at the end.
 *
 * Knobs: OVERHEAD_CLIENTS (default 1,8,64), OVERHEAD_REQUESTS (per round and path: one number for
 * every concurrency, or pairs such as 1:300,8:1000,64:2000, the default), OVERHEAD_ROUNDS
 * (default 4), OVERHEAD_WARMUP (per path and concurrency; default half a round),
 * OVERHEAD_POOL (idgate's DATABASE_POOL_SIZE), OVERHEAD_LOG_LEVEL (default info), DATABASE_URL.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import type { INestApplication } from '@nestjs/common';
import pino from 'pino';
import identities from '../src/upstream/sandbox/fixtures/identities.json';
import { startSandbox } from './sandbox';
import { throwawayDatabase } from './throwaway-database';

const TARGET_CLIENTS = 8;
const TARGET_ADDED_P50_MS = 3;

/** One run of the load worker: `prime` untimed requests, then `count` timed ones, from `concurrency` connections. */
interface RunOrder {
  side: Side;
  url: string;
  authorization: string;
  concurrency: number;
  prime: number;
  count: number;
  /** Request i sends identities[(offset + i) mod length]. */
  offset: number;
}

interface RunReport {
  /** Milliseconds, one per timed request, in completion order. */
  latencies: Float64Array;
  /** Requests sent, untimed ones included. */
  sent: number;
  /** Wall-clock time of the timed requests. */
  elapsedMs: number;
  /** HTTP status (or 'error') → count, timed and untimed. */
  statuses: Record<string, number>;
  /** What the answers said (idgate: status/result; sandbox: result code) → count. */
  outcomes: Record<string, number>;
  errors: number;
  firstError: string | null;
}

type Side = 'direct' | 'idgate';

// ---------------------------------------------------------------------------------------------
// The load worker (this file in a worker thread).
// ---------------------------------------------------------------------------------------------

const bodies = identities.map((p) => Buffer.from(JSON.stringify({ name: p.name, id_card: p.id_card })));

function post(target: URL, agent: http.Agent, authorization: string, body: Buffer) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      target,
      {
        method: 'POST',
        agent,
        headers: {
          accept: 'application/json',
          authorization,
          'content-type': 'application/json',
          'content-length': body.length,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The outcome an answer reports, or throws what is wrong with it. */
function outcomeOf(side: Side, status: number, text: string): string {
  const expected = side === 'idgate' ? 201 : 200;
  if (status !== expected) throw new Error(`HTTP ${status} (expected ${expected}): ${text.slice(0, 300)}`);
  let body: { status?: unknown; result?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`HTTP ${status}, unparseable body: ${text.slice(0, 300)}`);
  }
  if (side === 'direct') {
    if (typeof body.result !== 'string') throw new Error(`sandbox answer without a result: ${text.slice(0, 300)}`);
    return `result ${body.result}`;
  }
  if (body.status !== 'completed') throw new Error(`verification not completed: ${text.slice(0, 300)}`);
  return `${body.status}/${String(body.result)}`;
}

async function runOrder(order: RunOrder): Promise<RunReport> {
  const target = new URL(order.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: order.concurrency });
  const latencies = new Float64Array(order.count);
  const statuses: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  let errors = 0;
  let firstError: string | null = null;
  let sent = 0;
  let done = 0;

  const phase = async (count: number, timed: boolean, offset: number) => {
    let next = 0;
    const loop = async () => {
      while (next < count) {
        const i = next++;
        const body = bodies[(offset + i) % bodies.length];
        sent++;
        const t0 = process.hrtime.bigint();
        let reply: { status: number; text: string };
        try {
          reply = await post(target, agent, order.authorization, body);
        } catch (err) {
          reply = { status: 0, text: err instanceof Error ? err.message : String(err) };
        }
        if (timed) latencies[done++] = Number(process.hrtime.bigint() - t0) / 1e6;
        const status = reply.status === 0 ? 'error' : String(reply.status);
        statuses[status] = (statuses[status] ?? 0) + 1;
        try {
          if (reply.status === 0) throw new Error(`transport error: ${reply.text}`);
          const outcome = outcomeOf(order.side, reply.status, reply.text);
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(order.concurrency, Math.max(1, count)) }, loop));
  };

  try {
    // Opens the connections (to idgate, and idgate's own to the sandbox) before anything is timed.
    await phase(order.prime, false, order.offset + order.count);
    const started = process.hrtime.bigint();
    await phase(order.count, true, order.offset);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    return { latencies: latencies.slice(0, done), sent, elapsedMs, statuses, outcomes, errors, firstError };
  } finally {
    agent.destroy();
  }
}

function serveAsWorker(port: NonNullable<typeof parentPort>): void {
  port.on('message', (order: RunOrder) => {
    void runOrder(order).then((report) => port.postMessage(report, [report.latencies.buffer as ArrayBuffer]));
  });
}

// ---------------------------------------------------------------------------------------------
// The main thread: idgate, the sandbox worker, the rounds and the table.
// ---------------------------------------------------------------------------------------------

const out = (line: string) => process.stdout.write(line + '\n');
const progress = (line: string) => process.stderr.write(line + '\n');
const int = (n: number) => Math.round(n).toLocaleString('en');
const ms = (n: number) => n.toFixed(2);

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: "${text}" is not a positive whole number`);
  return n;
}

const CLIENTS = (process.env.OVERHEAD_CLIENTS ?? '1,8,64').split(',').map((c) => positiveInt('OVERHEAD_CLIENTS', c));
const ROUNDS = positiveInt('OVERHEAD_ROUNDS', process.env.OVERHEAD_ROUNDS ?? '4');
const DEFAULT_REQUESTS: Record<number, number> = { 1: 300, 8: 1000, 64: 2000 };

/** Timed requests per round and path at `clients` concurrent clients. */
function requestsPerRound(clients: number): number {
  const setting = process.env.OVERHEAD_REQUESTS?.trim();
  if (setting && /^\d+$/.test(setting)) return positiveInt('OVERHEAD_REQUESTS', setting);
  const pairs = new Map<number, number>(
    (setting ?? '')
      .split(',')
      .filter(Boolean)
      .map((pair) => {
        const [c, n] = pair.split(':');
        return [positiveInt('OVERHEAD_REQUESTS', c), positiveInt('OVERHEAD_REQUESTS', n ?? '')];
      }),
  );
  return pairs.get(clients) ?? DEFAULT_REQUESTS[clients] ?? Math.max(300, clients * 32);
}

function warmupRequests(clients: number): number {
  const setting = process.env.OVERHEAD_WARMUP;
  if (setting !== undefined) return setting === '0' ? 0 : positiveInt('OVERHEAD_WARMUP', setting);
  return Math.ceil(requestsPerRound(clients) / 2);
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function sortedCopy(chunks: Float64Array[]): Float64Array {
  const all = new Float64Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all.sort();
}

/** One path at one concurrency, summed over its rounds. */
class Tally {
  readonly rounds: Float64Array[] = [];
  elapsedMs = 0;

  add(r: RunReport): void {
    this.rounds.push(r.latencies);
    this.elapsedMs += r.elapsedMs;
  }

  get count(): number {
    return this.rounds.reduce((n, c) => n + c.length, 0);
  }

  get rate(): number {
    return this.count / (this.elapsedMs / 1000 || 1);
  }

  percentiles(): { p50: number; p99: number } {
    const all = sortedCopy(this.rounds);
    return { p50: percentile(all, 50), p99: percentile(all, 99) };
  }

  roundP50(round: number): number {
    return percentile(sortedCopy([this.rounds[round]]), 50);
  }
}

/** Everything the run went through, for the summary and the exit code. */
class Totals {
  sent = 0;
  errors = 0;
  readonly firstErrors: Partial<Record<Side, string>> = {};
  readonly statuses: Record<Side, Record<string, number>> = { direct: {}, idgate: {} };
  readonly outcomes: Record<Side, Record<string, number>> = { direct: {}, idgate: {} };

  add(side: Side, r: RunReport): void {
    this.sent += r.sent;
    this.errors += r.errors;
    if (r.firstError) this.firstErrors[side] ??= r.firstError;
    for (const [k, v] of Object.entries(r.statuses)) this.statuses[side][k] = (this.statuses[side][k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.outcomes)) this.outcomes[side][k] = (this.outcomes[side][k] ?? 0) + v;
  }
}

function summarize(counts: Record<string, number>): string {
  return (
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ×${int(v)}`)
      .join(', ') || 'none'
  );
}

interface Load {
  run(order: RunOrder): Promise<RunReport>;
  close(): Promise<void>;
}

function startLoadWorker(): Load {
  const worker = new Worker(__filename);
  return {
    run: (order) =>
      new Promise((resolve, reject) => {
        worker.once('error', reject);
        worker.once('message', (report: RunReport) => {
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

interface Idgate {
  url: string;
  apiKey: string;
  poolSize: number;
  logLevel: string;
  close(): Promise<void>;
}

/** idgate as `npm start` configures it from its environment, on `databaseUrl`, calling `upstreamUrl`. */
async function startIdgate(databaseUrl: string, upstreamUrl: string, dataDir: string): Promise<Idgate> {
  // Loaded here, not at the top: the load worker runs this file too and needs none of it.
  const { createApp } = await import('../src/app.factory.js');
  const { systemContext } = await import('../src/audit/audit-vocabulary.js');
  const { ApiKeysService } = await import('../src/auth/api-keys.service.js');
  const { ClientsService } = await import('../src/auth/clients.service.js');
  const { buildAppConfig } = await import('../src/config/app-config.js');
  const { readEnvironment } = await import('../src/config/environment.js');
  const { applyMigrations } = await import('../src/database/migrations.js');

  await applyMigrations(databaseUrl);
  const env = readEnvironment({
    UPSTREAM_MODE: 'sandbox',
    UPSTREAM_BASE_URL: upstreamUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    IDGATE_DATA_DIR: dataDir,
    AUDIT_WITNESS_DIR: path.join(dataDir, 'witness'),
    PII_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    PII_HMAC_KEY: randomBytes(32).toString('base64'),
    AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: process.env.OVERHEAD_LOG_LEVEL ?? 'info',
    // The per-key rate limit still runs, set high enough never to refuse the bench (the default is 6,000/min).
    RATE_LIMIT_PER_MINUTE: '1000000',
    ...(process.env.OVERHEAD_POOL ? { DATABASE_POOL_SIZE: process.env.OVERHEAD_POOL } : {}),
  });
  const config = buildAppConfig(env, databaseUrl, false);
  // Log lines are made and written as in production (synchronously, one write each), to /dev/null.
  const app: INestApplication = await createApp(config, { logStream: pino.destination({ dest: os.devNull }) });
  try {
    await app.listen(0, '127.0.0.1');
    const actor = systemContext('bench');
    const client = await app.get(ClientsService).findOrCreateClient('bench overhead', actor);
    const key = await app
      .get(ApiKeysService)
      .createKey({ role: 'client', name: 'bench overhead', clientId: client.id }, actor, { kind: 'shell' });
    return {
      url: new URL('/v1/verifications', await app.getUrl()).toString(),
      apiKey: key.key,
      poolSize: config.databasePoolSize,
      logLevel: config.logLevel,
      close: () => app.close(),
    };
  } catch (err) {
    await app.close();
    throw err;
  }
}

interface Row {
  clients: number;
  direct: Tally;
  idgate: Tally;
  /** Failed requests at this concurrency, both paths, warm-up and untimed included. */
  errors: number;
}

function printTable(rows: Row[]): void {
  const head =
    'clients'.padStart(7) +
    'direct p50'.padStart(12) +
    'p99'.padStart(8) +
    'idgate p50'.padStart(12) +
    'p99'.padStart(8) +
    'added p50'.padStart(11) +
    'p99'.padStart(8) +
    'direct req/s'.padStart(14) +
    'idgate req/s'.padStart(14) +
    'errors'.padStart(8) +
    '   added p50 by round';
  out(head);
  for (const { clients, direct, idgate, errors } of rows) {
    const d = direct.percentiles();
    const g = idgate.percentiles();
    const byRound = direct.rounds.map((_, r) => ms(idgate.roundP50(r) - direct.roundP50(r))).join(' ');
    out(
      String(clients).padStart(7) +
        ms(d.p50).padStart(12) +
        ms(d.p99).padStart(8) +
        ms(g.p50).padStart(12) +
        ms(g.p99).padStart(8) +
        ms(g.p50 - d.p50).padStart(11) +
        ms(g.p99 - d.p99).padStart(8) +
        int(direct.rate).padStart(14) +
        int(idgate.rate).padStart(14) +
        int(errors).padStart(8) +
        `   ${byRound}`,
    );
  }
  out('(latencies in ms, per request from sending it to the last byte of the answer; added = idgate − direct)');
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  const overrides = Object.entries(process.env)
    .filter(([k]) => k.startsWith('OVERHEAD_') || k === 'DATABASE_URL')
    .map(([k, v]) => (k === 'DATABASE_URL' ? 'DATABASE_URL=…' : `${k}=${v}`));
  out(`bench:overhead — ${[...overrides, 'node dist/bench/bench/overhead.js'].join(' ')}`);
  out(
    `node ${process.version}, ${cpus.length} CPU(s) (${cpus[0]?.model ?? 'unknown'}), load average ` +
      `${os.loadavg()[0].toFixed(1)} at start; idgate (main thread), the clients and the sandbox (worker threads) ` +
      `and PostgreSQL share them`,
  );

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-bench-overhead-'));
  const cleanups: Array<() => Promise<void>> = [async () => rmSync(dataDir, { recursive: true, force: true })];
  const totals = new Totals();
  let mismatch: string | null = null;
  const rows: Row[] = [];
  try {
    const db = await throwawayDatabase();
    cleanups.unshift(() => db.drop());
    const sandbox = await startSandbox();
    cleanups.unshift(() => sandbox.close());
    const load = startLoadWorker();
    cleanups.unshift(() => load.close());
    const idgate = await startIdgate(db.url, sandbox.url, dataDir);
    cleanups.unshift(() => idgate.close());

    out(
      `idgate: createApp() with npm start's configuration from its environment (UPSTREAM_MODE=sandbox, pool ` +
        `${idgate.poolSize}, log level ${idgate.logLevel} to /dev/null, rate limit 1,000,000/min), a throwaway ` +
        `database with the migrations (${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}), one client key`,
    );
    out(
      `upstream: one sandbox at latency 0 in a worker thread for both paths; direct = POST /identity/idcard/ocr ` +
        `(200), through idgate = POST /v1/verifications (201, completed); same {name, id_card} bodies`,
    );
    out(
      `per concurrency: a warm-up on each path, then ${ROUNDS} rounds interleaved (direct, idgate, ...), each ` +
        `opening its connections with untimed requests first; timed per round and path: ` +
        CLIENTS.map((c) => `${int(requestsPerRound(c))} at ${c}`).join(', '),
    );

    const paths: Record<Side, { url: string; authorization: string }> = {
      direct: { url: new URL('/identity/idcard/ocr', sandbox.url).toString(), authorization: 'Bearer sandbox' },
      idgate: { url: idgate.url, authorization: `Bearer ${idgate.apiKey}` },
    };
    const run = async (row: Row, side: Side, count: number, offset: number) => {
      const order = { side, ...paths[side], concurrency: row.clients, prime: row.clients, count, offset };
      const report = await load.run(order);
      totals.add(side, report);
      row.errors += report.errors;
      return report;
    };

    const started = process.hrtime.bigint();
    for (const clients of CLIENTS) {
      const count = requestsPerRound(clients);
      const warmup = warmupRequests(clients);
      const row: Row = { clients, direct: new Tally(), idgate: new Tally(), errors: 0 };
      if (warmup > 0) for (const side of ['direct', 'idgate'] as const) await run(row, side, warmup, 0);
      for (let round = 0; round < ROUNDS; round++) {
        // The same request sequence on both paths of a round.
        for (const side of ['direct', 'idgate'] as const) row[side].add(await run(row, side, count, round * count));
      }
      rows.push(row);
      progress(
        `  ${clients} client(s): done, ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s so far`,
      );
    }

    const calls = await sandbox.calls();
    if (calls !== totals.sent) {
      mismatch = `the sandbox counted ${int(calls)} calls for ${int(totals.sent)} requests sent (direct and through idgate)`;
    }

    out('');
    printTable(rows);
    out('');
    const target = rows.find((r) => r.clients === TARGET_CLIENTS);
    if (target) {
      const added = target.idgate.percentiles().p50 - target.direct.percentiles().p50;
      out(
        `target: added p50 ≤ ${TARGET_ADDED_P50_MS} ms at ${TARGET_CLIENTS} clients: ` +
          `${added <= TARGET_ADDED_P50_MS ? 'met' : 'NOT MET'} (${ms(added)} ms)`,
      );
    } else out(`target: added p50 ≤ ${TARGET_ADDED_P50_MS} ms at ${TARGET_CLIENTS} clients: not measured`);
    out('');
    out(
      `answers, warm-up and untimed included: direct HTTP ${summarize(totals.statuses.direct)} (${summarize(totals.outcomes.direct)}); ` +
        `idgate HTTP ${summarize(totals.statuses.idgate)} (${summarize(totals.outcomes.idgate)})`,
    );
    out(`sandbox: ${int(calls)} calls counted for ${int(totals.sent)} requests sent on both paths`);
  } finally {
    for (const cleanup of cleanups) {
      try {
        await cleanup();
      } catch (err) {
        progress(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exitCode = 1;
      }
    }
  }

  if (totals.errors > 0 || mismatch) {
    const lines = ['', '*** bench:overhead: THE FIGURES ABOVE ARE NOT VALID ***'];
    if (totals.errors > 0) {
      lines.push(`${int(totals.errors)} request(s) failed (warm-up and untimed included)`);
      for (const [side, first] of Object.entries(totals.firstErrors)) lines.push(`  first on ${side}: ${first}`);
    }
    if (mismatch) lines.push(mismatch);
    process.stderr.write(lines.join('\n') + '\n');
    process.exitCode = 1;
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:overhead failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
} else if (parentPort) {
  serveAsWorker(parentPort);
}
