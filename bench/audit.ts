/*
 * npm run bench:audit — the audit trail at scale, on a throwaway database
 * (DATABASE_URL's server when set, otherwise an embedded PostgreSQL in a temp folder):
 *   1. write throughput of business-shaped transactions (insert one row + one audit event),
 *      64 concurrent writers, with the sealer running — without the witness, and with it (a signed
 *      head record per sealing pass that moved, each after verifying the segment, and a checkpoint
 *      every second), alternated twice in the same run; beside the same transactions keeping a
 *      chain head locked in every transaction (the design performance.md measured at 5–7× slower);
 *   2. seeds 1,000,000 events as idgate writes them (UUIDv7 ids and MACs, in batches of 10,000) and
 *      seals them, a head record per batch of 1,000 and a checkpoint per 60 batches: events/s;
 *   3. p50/p95 of filtered page queries (GET /v1/audit/events shapes);
 *   4. the integrity check's entries/s, comparing with the witness, beside its floor measured in the same
 *      run: the same rows read with COPY … TO STDOUT (chainCopySql) and each hashed with node:crypto, no
 *      checks; alternated twice, with the ratio and the process's peak RSS during the check; then the
 *      NDJSON export's events/s.
 * BENCH_EVENTS (default 1000000) and BENCH_SECONDS (default 5) scale it down for a quick look;
 * BENCH_SKIP=writes,queries skips sections 1 and 3.
 */
import type { ModuleRef } from '@nestjs/core';
import * as crypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { AuditCheckpoints } from '../src/audit/audit-checkpoints.service';
import { AuditIntegrity, IntegrityReport } from '../src/audit/audit-integrity.service';
import { chainCopySql } from '../src/audit/integrity/chain-rows';
import { to as copyTo } from 'pg-copy-streams';
import { eventMac, MacFields, UuidV7Source } from '../src/audit/event-authenticity';
import { AuditEventAuthenticity } from '../src/audit/event-authenticity.service';
import { AuditSealer } from '../src/audit/audit-sealer.service';
import { AuditService } from '../src/audit/audit.service';
import { AuditContext } from '../src/audit/audit-vocabulary';
import { AuditWitness } from '../src/audit/witness/audit-witness.service';
import { AuditWitnessWriter } from '../src/audit/witness/witness-writer.service';
import { AppConfig } from '../src/config/app-config';
import { PrismaService } from '../src/database/prisma.service';
import { applyMigrations } from '../src/database/migrations';
import { throwawayDatabase } from './throwaway-database';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean));
const WRITERS = 64;
const CONTEXT: AuditContext = {
  actor: { type: 'api_key', id: 'bench', role: 'client' },
  requestId: 'bench',
  ip: '127.0.0.1',
};

const out = (line: string) => process.stdout.write(line + '\n');
const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en')}/s`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `tx` from WRITERS loops for SECONDS; returns transactions/s. */
async function writeLoad(
  prisma: PrismaService,
  body: (tx: Parameters<Parameters<PrismaService['$transaction']>[0]>[0], i: number) => Promise<void>,
) {
  let stop = false;
  let done = 0;
  let i = 0;
  const loop = async () => {
    while (!stop) {
      await prisma.$transaction((tx) => body(tx, i++));
      done++;
    }
  };
  const started = performance.now();
  const loops = Array.from({ length: WRITERS }, loop);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  await Promise.all(loops);
  return { done, ms: performance.now() - started };
}

/** The audit services as Nest wires them (witness folder `witnessDir`), with the sealer's witness on or off. */
function auditServices(prisma: PrismaService, config: AppConfig, witnessOn: boolean) {
  const witness = new AuditWitness(config);
  witness.onModuleInit();
  const integrity = new AuditIntegrity(prisma, config, new AuditEventAuthenticity(config), witness);
  // A refusal would raise an alert through the module; none is expected here.
  const moduleRef = {
    get: () => {
      throw new Error('bench: the audit chain was refused');
    },
  } as unknown as ModuleRef;
  const writer = new AuditWitnessWriter(prisma, config, witness, integrity, moduleRef);
  const off = { publishHead: async () => ({ outcome: 'current' as const }) } as unknown as AuditWitnessWriter;
  const sealer = new AuditSealer(prisma, config, witnessOn ? writer : off);
  const checkpoints = new AuditCheckpoints(prisma, config, writer, witness);
  const audit = new AuditService(prisma, config, sealer, checkpoints, integrity);
  return { witness, integrity, writer, sealer, checkpoints, audit };
}

async function main(): Promise<void> {
  const db = await throwawayDatabase();
  const witnessDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-bench-witness-'));
  try {
    await applyMigrations(db.url);
    const config = {
      databaseUrl: db.url,
      databasePoolSize: WRITERS,
      embeddedDatabase: false,
      backgroundWorkers: true,
      pii: { keys: [], hmacKey: randomBytes(32) },
      audit: {
        signingKeySeed: randomBytes(32),
        macKey: randomBytes(32),
        witnessDir,
        orderToleranceMs: 300_000,
        sealIntervalMs: 200,
        checkpointIntervalMs: 1_000,
      },
      shutdownDrainMs: 0,
    } as unknown as AppConfig;
    const prisma = new PrismaService(config);
    const plain = auditServices(prisma, config, false);
    const witnessed = auditServices(prisma, config, true);
    const { audit, writer, checkpoints, integrity } = witnessed;
    await prisma.$executeRawUnsafe(`CREATE TABLE bench_rows (id bigserial PRIMARY KEY, note text NOT NULL)`);
    await prisma.$executeRawUnsafe(
      `CREATE TABLE bench_chain_head (id int PRIMARY KEY, seq bigint NOT NULL, hash text NOT NULL)`,
    );
    await prisma.$executeRawUnsafe(`INSERT INTO bench_chain_head VALUES (1, 0, repeat('0', 64))`);
    const machine = `${os.cpus().length} cores, PostgreSQL ${(await prisma.$queryRaw<{ v: string }[]>`SELECT current_setting('server_version') AS v`)[0].v}`;
    out(`idgate bench:audit (${machine}; ${WRITERS} writers, ${SECONDS} s per write measurement)`);

    // 1. Writers: our design (event in the business transaction, sealer apart), without and with the
    //    witness, alternated; then a chain head locked per transaction.
    const business = async (tx: Parameters<Parameters<PrismaService['$transaction']>[0]>[0], i: number) => {
      await tx.$executeRaw`INSERT INTO bench_rows (note) VALUES ('verification')`;
      await audit.record(tx, CONTEXT, {
        action: 'verification.created',
        target: { type: 'verification', id: String(i) },
      });
    };
    const rates: Record<'without' | 'with', number[]> = { without: [], with: [] };
    // Round 0 warms up (JIT, caches, the table's first pages) and is not counted.
    for (const round of SKIP.has('writes') ? [] : [0, 1, 2, 3]) {
      for (const variant of ['without', 'with'] as const) {
        // Fresh services each run: a stopped sealer does not start again.
        const services = auditServices(prisma, config, variant === 'with');
        const recordsBefore = await countRecords(witnessed);
        services.sealer.onApplicationBootstrap();
        if (variant === 'with') services.checkpoints.onApplicationBootstrap();
        const run = await writeLoad(prisma, business);
        const lagStart = performance.now();
        // Sealed (and, with the witness, its head written) after the writers stop.
        await services.sealer.sealNow();
        const drainMs = performance.now() - lagStart;
        await services.sealer.onModuleDestroy();
        if (variant === 'with') await clearSigner(services.checkpoints);
        if (variant === 'without') await witnessed.writer.publishHead(true); // the next run starts from a witnessed head
        const after = await countRecords(witnessed);
        const heads = after.heads - recordsBefore.heads;
        const signed = after.checkpoints - recordsBefore.checkpoints;
        if (round > 0) rates[variant].push((run.done / run.ms) * 1000);
        out(
          `writes, row + audit event per transaction, sealer running, ${variant} the witness ` +
            `(${round === 0 ? 'warm-up' : `round ${round}`}): ${rate(run.done, run.ms)} ` +
            `(backlog sealed ${Math.round(drainMs)} ms after writers stopped` +
            (variant === 'with' ? `; ${heads} head and ${signed} checkpoint records written)` : ')'),
        );
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    if (!SKIP.has('writes')) {
      out(
        `witness overhead on write throughput: ${(100 * (1 - mean(rates.with) / mean(rates.without))).toFixed(1)}% ` +
          `(mean ${Math.round(mean(rates.with)).toLocaleString('en')}/s with vs ${Math.round(mean(rates.without)).toLocaleString('en')}/s without)`,
      );
      const locked = await writeLoad(prisma, async (tx, i) => {
        await business(tx, i);
        await tx.$executeRaw`UPDATE bench_chain_head SET seq = seq + 1, hash = encode(sha256(convert_to(hash || seq::text, 'UTF8')), 'hex') WHERE id = 1`;
      });
      out(`writes, same + chain head locked in every transaction:   ${rate(locked.done, locked.ms)}`);
    }
    await witnessed.sealer.sealNow();

    // 2. Seed (as idgate writes events: UUIDv7 ids and MACs) and seal: half without the witness, then the
    //    witness caught up in one go, then half with a head record per batch and a checkpoint per 60 batches.
    const half = Math.floor(EVENTS / 2);
    let started = performance.now();
    await seedWithMacs(db.url, config.audit.macKey, half);
    out(`seeded ${half.toLocaleString('en')} events in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    started = performance.now();
    let sealed = await plain.sealer.sealNow(3_600_000);
    let sealMs = performance.now() - started;
    out(
      `sealing without the witness: ${sealed.toLocaleString('en')} events in ${(sealMs / 1000).toFixed(1)} s = ${rate(sealed, sealMs)} (batches of 1000, one transaction each)`,
    );
    started = performance.now();
    await writer.publishHead(true);
    const catchUpMs = performance.now() - started;
    out(
      `the witness catching up: one head record after verifying those ${sealed.toLocaleString('en')} entries from its latest record, ${(catchUpMs / 1000).toFixed(1)} s = ${rate(sealed, catchUpMs)}`,
    );
    started = performance.now();
    await seedWithMacs(db.url, config.audit.macKey, EVENTS - half);
    out(
      `seeded ${(EVENTS - half).toLocaleString('en')} more in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    started = performance.now();
    sealed = 0;
    for (let batch = 1; ; batch++) {
      const n = await witnessed.sealer.sealBatch(true);
      sealed += n;
      if (n === 0) break;
      await writer.publishHead(true);
      if (batch % 60 === 0) await checkpoints.signHead(null);
    }
    sealed += await witnessed.sealer.sealNow(3_600_000);
    sealMs = performance.now() - started;
    out(
      `sealing with the witness: ${sealed.toLocaleString('en')} events in ${(sealMs / 1000).toFixed(1)} s = ${rate(sealed, sealMs)} ` +
        `(each batch of 1000 then verified and written as a head record; a checkpoint per 60 batches)`,
    );
    await checkpoints.signHead(null);

    // 3. Filtered page queries, as GET /v1/audit/events runs them (50 per page, newest first).
    const shapes: [string, (i: number) => Parameters<AuditService['listEvents']>[0]][] = [
      ['actor', (i) => ({ actor: `key-${i % 500}` })],
      ['actor + action', (i) => ({ actor: `key-${i % 500}`, action: 'verification.completed' })],
      ['target', (i) => ({ targetType: 'verification', targetId: `v-${1 + ((i * 7919) % EVENTS)}` })],
      ['outcome=denied + last hour', () => ({ outcome: 'denied', from: new Date(Date.now() - 3_600_000) })],
      ['id_card hmac', (i) => ({ idCardHmac: hmacOf(i % 20000) })],
    ];
    for (const [name, filters] of SKIP.has('queries') ? [] : shapes) {
      const times: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        const page = await audit.listEvents(filters(i), undefined, 50);
        if (i % 2 === 1 && page.next_cursor) await audit.listEvents(filters(i), page.next_cursor, 50);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      out(
        `page query [${name}]: p50 ${percentile(times, 50).toFixed(1)} ms, p95 ${percentile(times, 95).toFixed(1)} ms`,
      );
    }

    // 4. Integrity (with the witness comparison) beside its floor, alternated; then the export.
    const [{ head }] = await prisma.$queryRaw<{ head: bigint }[]>`SELECT max(seq) AS head FROM audit_chain`;
    const floors: number[] = [];
    const checks: number[] = [];
    let peakRss = 0;
    let rssBefore = 0;
    for (const round of [1, 2]) {
      const floor = await copyFloor(db.url, 1, Number(head));
      floors.push((floor.rows / floor.ms) * 1000);
      out(
        `integrity floor (round ${round}): COPY … TO STDOUT of the same ${floor.rows.toLocaleString('en')} rows, each hashed ` +
          `(sha256), no checks: ${rate(floor.rows, floor.ms)} (${(floor.ms / 1000).toFixed(1)} s)`,
      );
      rssBefore = process.memoryUsage().rss;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 10);
      started = performance.now();
      const report: IntegrityReport = await integrity.verifyChain();
      const verifyMs = performance.now() - started;
      clearInterval(sampler);
      checks.push((report.checked / verifyMs) * 1000);
      const w = report.witness[0];
      out(
        `integrity check with witness comparison (round ${round}): ${report.checked.toLocaleString('en')} entries, ok=${report.ok}, ` +
          `${rate(report.checked, verifyMs)} (${(verifyMs / 1000).toFixed(1)} s; ${w.records.toLocaleString('en')} witness ` +
          `records read, ${w.matched.toLocaleString('en')} matched, ${report.checkpoints_verified} checkpoints verified)`,
      );
      if (!report.ok) out(`  first fault: seq ${report.first_bad_seq}: ${report.reason}`);
    }
    out(
      `integrity check / floor: ${(mean(checks) / mean(floors)).toFixed(2)} (mean ${Math.round(mean(checks)).toLocaleString('en')}/s vs ` +
        `${Math.round(mean(floors)).toLocaleString('en')}/s); peak RSS during the check ${Math.round(peakRss / 2 ** 20)} MB ` +
        `(${Math.round(rssBefore / 2 ** 20)} MB before it)`,
    );
    // Would reading in segments over parallel connections pay? The floor itself, split in two halves read at once.
    const half2 = Math.floor(Number(head) / 2);
    started = performance.now();
    const halves = await Promise.all([copyFloor(db.url, 1, half2), copyFloor(db.url, half2 + 1, Number(head))]);
    const parallelMs = performance.now() - started;
    out(
      `integrity floor over 2 connections at once (two halves): ${rate(halves[0].rows + halves[1].rows, parallelMs)} ` +
        `(${(parallelMs / 1000).toFixed(1)} s)`,
    );
    started = performance.now();
    let lines = 0;
    for await (const chunk of audit.exportEvents({}, 'ndjson')) lines += chunk.split('\n').length - 1;
    const exportMs = performance.now() - started;
    out(
      `ndjson export: ${lines.toLocaleString('en')} lines, ${rate(lines, exportMs)}, peak RSS of this process ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`,
    );
    await prisma.$disconnect();
  } finally {
    await db.drop();
    rmSync(witnessDir, { recursive: true, force: true });
  }
}

// crypto.hash (Node ≥ 20.12) is the cheapest way node:crypto offers to hash a short input.
const hashOnce = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'hex') => string }).hash;

/**
 * The integrity check's floor: its rows (chainCopySql, seq from..to) read with COPY … TO STDOUT on one
 * connection, as the check reads them, and each row hashed with SHA-256; nothing parsed or checked.
 */
async function copyFloor(url: string, from: number, to: number): Promise<{ rows: number; ms: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = performance.now();
  let rows = 0;
  let rest: Buffer | null = null;
  let sink = 0;
  try {
    const stream = client.query(copyTo(chainCopySql(from, to)));
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
      let start = 0;
      for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
        const line = buf.subarray(start, nl);
        const digest = hashOnce
          ? hashOnce('sha256', line, 'hex')
          : crypto.createHash('sha256').update(line).digest('hex');
        sink += digest.length;
        rows++;
        start = nl + 1;
      }
      rest = start < buf.length ? buf.subarray(start) : null;
    }
  } finally {
    await client.end();
  }
  if (sink !== rows * 64) throw new Error('bench: floor hashing went wrong');
  return { rows, ms: performance.now() - started };
}

async function countRecords(s: { witness: AuditWitness }): Promise<{ heads: number; checkpoints: number }> {
  const counts = { heads: 0, checkpoints: 0 };
  for await (const item of s.witness.dir.items()) {
    if ('record' in item) counts[item.record.kind === 'head' ? 'heads' : 'checkpoints']++;
  }
  return counts;
}

/** Stops the periodic signer without its shutdown checkpoint. */
async function clearSigner(checkpoints: AuditCheckpoints): Promise<void> {
  const c = checkpoints as unknown as { timer?: NodeJS.Timeout; running?: Promise<unknown> };
  clearInterval(c.timer);
  await c.running?.catch(() => undefined);
}

/**
 * Events shaped like real ones (a handful of actors and actions, jsonb details), as idgate writes
 * them: a UUIDv7 id made before the insert and the MAC under AUDIT_MAC_KEY; occurred_at is the
 * database's. In batches of 10,000 (one INSERT … unnest each), one transaction, then ANALYZE.
 */
async function seedWithMacs(url: string, macKey: Buffer, count: number): Promise<void> {
  const ids = new UuidV7Source();
  const actions = [
    'verification.created',
    'verification.completed',
    'verification.viewed',
    'auth.failed',
    'api_key.created',
    'verification.failed',
  ];
  const roles = ['client', 'compliance', 'finance', 'admin'];
  const outcomes = ['success', 'success', 'success', 'failure', 'denied'];
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    for (let start = 1; start <= count; start += 10_000) {
      const cols: (string | null)[][] = Array.from({ length: 11 }, () => []);
      for (let n = start; n < Math.min(start + 10_000, count + 1); n++) {
        const row: MacFields = {
          id: ids.next(),
          actorType: 'api_key',
          actorId: `key-${n % 500}`,
          actorRole: roles[n % 4],
          action: actions[n % 6],
          targetType: 'verification',
          targetId: `v-${n}`,
          outcome: outcomes[n % 5],
          requestId: `req-${n}`,
          ip: `10.0.${n % 250}.1`,
          details: {
            result: String((n % 8) - 7),
            charged: n % 2 === 0,
            id_card: `110101********${String(n % 10000).padStart(4, '0')}`,
          },
          idCardHmac: n % 10 === 0 ? hmacOf(n % 20000) : null,
        };
        [
          row.id,
          row.actorId,
          row.actorRole,
          row.action,
          row.targetId,
          row.outcome,
          row.requestId,
          row.ip,
          JSON.stringify(row.details),
          row.idCardHmac,
          eventMac(macKey, row),
        ].forEach((v, i) => cols[i].push(v));
      }
      await client.query(
        `INSERT INTO audit_events (id, actor_type, actor_id, actor_role, action, target_type, target_id, outcome,
                                   request_id, ip, details, id_card_hmac, mac)
         SELECT u.id, 'api_key', u.actor_id, u.actor_role, u.action, 'verification', u.target_id, u.outcome,
                u.request_id, u.ip, u.details::jsonb, u.id_card_hmac, u.mac
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[])
           AS u(id, actor_id, actor_role, action, target_id, outcome, request_id, ip, details, id_card_hmac, mac)`,
        cols,
      );
    }
    await client.query('COMMIT');
    await client.query('ANALYZE audit_events');
  } finally {
    await client.end();
  }
}

function hmacOf(i: number): string {
  return createHash('sha256').update(`id-${i}`, 'utf8').digest('hex');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:audit failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
