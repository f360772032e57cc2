/*
 * npm run bench:reconcile — POST /v1/billing/reconciliations with a 1,000,000-line vendor
 * statement against 1,000,000 stored verifications, through the real app over loopback HTTP
 * (text/csv body streamed from disk), on a throwaway database (DATABASE_URL's server when
 * set, otherwise an embedded PostgreSQL in a temp folder). Prints seconds and peak RSS, and,
 * in the same run, the time PostgreSQL's own COPY (FROM STDIN, the same file over the same
 * kind of connection) takes to load the file into a bare table, and the ratio.
 *
 * The data: verifications t-1 … t-N, 10 ms apart. 1 in 1,000 is unknown with a trace id
 * (the statement settles it as charged), 1 in 10,000 unknown with no trace id (paired by
 * time), 1 in 1,000 not charged (-5, not billed); the rest charged at 50. The statement
 * bills every charged or unknown call, 1 in 100,000 at a wrong amount, plus lines for calls
 * that are not ours, so that it has exactly N lines.
 * BENCH_LINES (default 1000000) scales it down for a quick look.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AuditModule } from '../src/audit/audit.module';
import { AuthModule } from '../src/auth/auth.module';
import { BillingModule } from '../src/billing/billing.module';
import { ProblemFilter } from '../src/common/problem.filter';
import { createValidationPipe } from '../src/common/validation';
import { ConfigModule } from '../src/config/config.module';
import { DatabaseModule } from '../src/database/database.module';
import { ApiKeysService } from '../src/auth/api-keys.service';
import { ClientsService } from '../src/auth/clients.service';
import { systemContext } from '../src/audit/audit-vocabulary';
import { AppConfig, buildAppConfig } from '../src/config/app-config';
import { readEnvironment } from '../src/config/environment';
import { applyMigrations } from '../src/database/migrations';
import { throwawayDatabase } from './throwaway-database';

const N = Number(process.env.BENCH_LINES ?? 1_000_000);
const BASE = Date.parse('2026-10-01T00:00:00Z');
const out = (line: string) => process.stdout.write(line + '\n');
const mb = (kb: number) => `${Math.round(kb / 1024)} MB`;

/**
 * The app's own configuration, read from an environment as `npm start` would (keys generated here).
 * Its audit witness folder is the run's own: the default (under .data/) is shared with other runs.
 */
function config(databaseUrl: string, witnessDir: string): AppConfig {
  const key = () => randomBytes(32).toString('base64');
  const env = readEnvironment({
    DATABASE_URL: databaseUrl,
    PII_KEYS: `k1:${key()}`,
    PII_HMAC_KEY: key(),
    AUDIT_SIGNING_KEY: key(),
    AUDIT_WITNESS_DIR: witnessDir,
    UPSTREAM_BASE_URL: 'http://127.0.0.1:1',
    UPSTREAM_TOKEN: 'bench',
    LOG_LEVEL: 'warn',
  });
  return buildAppConfig(env, databaseUrl, false);
}

/** The modules the reconciliation endpoint needs, wired as the app wires them (auth guard, pipes, problem filter). */
@Module({})
class BenchModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: BenchModule,
      imports: [ConfigModule.forRoot(config), DatabaseModule, AuditModule, AuthModule, BillingModule],
    };
  }
}

/** Seeds N verifications in one INSERT … SELECT generate_series (not timed). */
async function seed(db: pg.Client, clientId: string, keyId: string): Promise<void> {
  // Seeded history keeps its own timestamps: the database would stamp them with now (the bench is the owner).
  await db.query('ALTER TABLE verifications DISABLE TRIGGER verifications_stamp_time');
  try {
    await seedRows(db, clientId, keyId);
  } finally {
    await db.query('ALTER TABLE verifications ENABLE TRIGGER verifications_stamp_time');
  }
  await db.query('ANALYZE verifications');
}

async function seedRows(db: pg.Client, clientId: string, keyId: string): Promise<void> {
  await db.query(
    `INSERT INTO verifications (id, client_id, api_key_id, channel, mode, status, result, charge_status,
       unit_price, amount, currency, upstream_trace_id, created_at, completed_at)
     SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'api', 'name_id_card',
       (CASE WHEN i % 1000 = 0 OR i % 10000 = 2 THEN 'unknown' ELSE 'completed' END)::"VerificationStatus",
       CASE WHEN i % 1000 = 0 OR i % 10000 = 2 THEN NULL WHEN i % 1000 = 1 THEN '-5' ELSE '0' END,
       (CASE WHEN i % 1000 = 0 OR i % 10000 = 2 THEN 'unknown' WHEN i % 1000 = 1 THEN 'not_charged' ELSE 'charged' END)::"ChargeStatus",
       50,
       CASE WHEN i % 1000 = 0 OR i % 10000 = 2 THEN NULL WHEN i % 1000 = 1 THEN 0 ELSE 50 END,
       'CNY',
       CASE WHEN i % 10000 = 2 THEN NULL ELSE 't-' || i END,
       $3::timestamptz + i * interval '10 milliseconds',
       $3::timestamptz + i * interval '10 milliseconds' + interval '5 milliseconds'
     FROM generate_series(1, $4::int) AS i`,
    [clientId, keyId, new Date(BASE).toISOString(), N],
  );
}

/** The vendor's statement for the seeded calls, exactly N lines, written to disk. */
async function writeStatement(file: string): Promise<void> {
  const stream = createWriteStream(file);
  const write = (text: string) =>
    stream.write(text) ? Promise.resolve() : new Promise<void>((resolve) => stream.once('drain', resolve));
  await write('trace_id,called_at,result,charged,amount\n');
  let lines = 0;
  let foreign = 0;
  let chunk = '';
  for (let i = 1; i <= N && lines < N; i++) {
    if (i % 1000 !== 1) {
      const amount = i % 100000 === 7 ? 51 : 50;
      chunk += `t-${i},${new Date(BASE + i * 10 + 2).toISOString()},0,true,${amount}\n`;
      lines++;
    } else if (lines < N) {
      // Not ours (the vendor billed a call we never made), between two of ours.
      chunk += `x-${++foreign},${new Date(BASE + i * 10 + 7).toISOString()},-1,true,50\n`;
      lines++;
    }
    if (chunk.length > 1 << 16) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
  await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

async function upload(port: number, key: string, file: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/billing/reconciliations',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'text/csv' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    createReadStream(file).pipe(req);
  });
}

async function copyBaseline(url: string, file: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      'CREATE TABLE bench_copy (trace_id text, called_at timestamptz, result text, charged boolean, amount int)',
    );
    const started = performance.now();
    await pipeline(
      createReadStream(file),
      client.query(copyFrom('COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)')),
    );
    return (performance.now() - started) / 1000;
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const db = await throwawayDatabase();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'idgate-bench-statement-'));
  const file = path.join(dir, 'statement.csv');
  const witnessDir = path.join(dir, 'witness');
  mkdirSync(witnessDir, { mode: 0o700 });
  try {
    await applyMigrations(db.url);
    const app = await NestFactory.create(BenchModule.forRoot(config(db.url, witnessDir)), {
      bodyParser: false,
      logger: ['log', 'warn', 'error'],
    });
    app.useGlobalPipes(createValidationPipe());
    app.useGlobalFilters(new ProblemFilter());
    await app.listen(0, '127.0.0.1');
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const actor = systemContext('bench');
    const clientId = (await app.get(ClientsService).findOrCreateClient('bench-client', actor)).id;
    const clientKey = await app
      .get(ApiKeysService)
      .createKey({ role: 'client', name: 'bench', clientId }, actor, { kind: 'shell' });
    const finance = await app
      .get(ApiKeysService)
      .createKey({ role: 'finance', name: 'bench finance' }, actor, { kind: 'shell' });

    const pgc = new pg.Client({ connectionString: db.url });
    await pgc.connect();
    const version = (await pgc.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0].v;
    out(`idgate bench:reconcile (${os.cpus().length} cores, PostgreSQL ${version}, Node ${process.version})`);
    let t = performance.now();
    await seed(pgc, clientId, clientKey.id);
    out(
      `seeded ${N.toLocaleString('en')} verifications in ${((performance.now() - t) / 1000).toFixed(1)} s (not timed below)`,
    );
    t = performance.now();
    await writeStatement(file);
    const bytes = statSync(file).size;
    out(
      `statement: ${N.toLocaleString('en')} lines, ${(bytes / 1e6).toFixed(1)} MB, written in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );

    const rssBefore = process.resourceUsage().maxRSS;
    t = performance.now();
    const res = await upload(port, finance.key, file);
    const reconcileSeconds = (performance.now() - t) / 1000;
    const rssPeak = process.resourceUsage().maxRSS;
    if (res.status !== 201) throw new Error(`reconciliation answered ${res.status}: ${res.body.slice(0, 500)}`);
    const summary = JSON.parse(res.body) as {
      counts: Record<string, number>;
      settled: Record<string, number>;
      amounts: Record<string, unknown>;
    };
    out(
      `reconciliation (HTTP upload → load → match → settle → summary): ${reconcileSeconds.toFixed(2)} s, ` +
        `${Math.round(N / reconcileSeconds).toLocaleString('en')} lines/s`,
    );
    out(`  peak RSS of this process (app + client): ${mb(rssPeak)} (before the upload: ${mb(rssBefore)})`);
    const nonZero = Object.entries(summary.counts).filter(([, n]) => n > 0);
    out(`  counts: ${nonZero.map(([k, n]) => `${k} ${n.toLocaleString('en')}`).join(', ')}`);
    out(`  settled: charged ${summary.settled.charged}, not charged ${summary.settled.not_charged}`);
    out(
      `  amounts: vendor ${String(summary.amounts.vendor_total)}, ours ${String(summary.amounts.internal_total)}, difference ${String(summary.amounts.difference)}`,
    );
    await pgc.end();
    await app.close();

    const copySeconds = await copyBaseline(db.url, file);
    out(`PostgreSQL COPY FROM STDIN of the same file into a bare table: ${copySeconds.toFixed(2)} s`);
    out(`ratio reconciliation / COPY: ${(reconcileSeconds / copySeconds).toFixed(1)}×`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (process.env.BENCH_KEEP_DB) out(`kept database ${db.url}`);
    else await db.drop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench:reconcile failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
