/*
 * npm run bench:audit — the audit trail at scale, on a throwaway database
 * (DATABASE_URL's server when set, otherwise an embedded PostgreSQL in a temp folder):
 *   1. write throughput of business-shaped transactions (insert one row + one audit event),
 *      64 concurrent writers, with the sealer running — beside the same transactions keeping
 *      a chain head locked in every transaction (the design performance.md measured at 5–7× slower);
 *   2. seeds 1,000,000 events (INSERT … SELECT generate_series) and seals them: events/s;
 *   3. p50/p95 of filtered page queries (GET /v1/audit/events shapes);
 *   4. the integrity check's events/s, and the NDJSON export's events/s.
 * BENCH_EVENTS (default 1000000) and BENCH_SECONDS (default 5) scale it down for a quick look.
 */
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { AuditCheckpoints } from '../src/audit/audit-checkpoints.service';
import { AuditIntegrity } from '../src/audit/audit-integrity.service';
import { AuditEventAuthenticity } from '../src/audit/event-authenticity.service';
import { AuditSealer } from '../src/audit/audit-sealer.service';
import { AuditService } from '../src/audit/audit.service';
import { AuditContext } from '../src/audit/audit-vocabulary';
import { AppConfig } from '../src/config/app-config';
import { PrismaService } from '../src/database/prisma.service';
import { applyMigrations } from '../src/database/migrations';
import { throwawayDatabase } from './throwaway-database';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
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

async function main(): Promise<void> {
  const db = await throwawayDatabase();
  try {
    await applyMigrations(db.url);
    const config = {
      databaseUrl: db.url,
      databasePoolSize: WRITERS,
      pii: { keys: [], hmacKey: randomBytes(32) },
      audit: { signingKeySeed: randomBytes(32), sealIntervalMs: 200, checkpointIntervalMs: 60_000 },
      shutdownDrainMs: 0,
    } as unknown as AppConfig;
    const prisma = new PrismaService(config);
    const sealer = new AuditSealer(prisma, config);
    const checkpoints = new AuditCheckpoints(prisma, config);
    const audit = new AuditService(prisma, config, sealer, checkpoints, new AuditIntegrity(prisma, checkpoints, new AuditEventAuthenticity()));
    await prisma.$executeRawUnsafe(`CREATE TABLE bench_rows (id bigserial PRIMARY KEY, note text NOT NULL)`);
    await prisma.$executeRawUnsafe(
      `CREATE TABLE bench_chain_head (id int PRIMARY KEY, seq bigint NOT NULL, hash text NOT NULL)`,
    );
    await prisma.$executeRawUnsafe(`INSERT INTO bench_chain_head VALUES (1, 0, repeat('0', 64))`);
    const machine = `${os.cpus().length} cores, PostgreSQL ${(await prisma.$queryRaw<{ v: string }[]>`SELECT current_setting('server_version') AS v`)[0].v}`;
    out(`idgate bench:audit (${machine}; ${WRITERS} writers, ${SECONDS} s per write measurement)`);

    // 1. Writers: our design (event in the business transaction, sealer apart) vs a chain head locked per transaction.
    sealer.onApplicationBootstrap();
    const ours = await writeLoad(prisma, async (tx, i) => {
      await tx.$executeRaw`INSERT INTO bench_rows (note) VALUES ('verification')`;
      await audit.record(tx, CONTEXT, {
        action: 'verification.created',
        target: { type: 'verification', id: String(i) },
      });
    });
    const lagStart = performance.now();
    await sealer.sealNow();
    const drainMs = performance.now() - lagStart;
    await sealer.onModuleDestroy();
    const locked = await writeLoad(prisma, async (tx, i) => {
      await tx.$executeRaw`INSERT INTO bench_rows (note) VALUES ('verification')`;
      await audit.record(tx, CONTEXT, {
        action: 'verification.created',
        target: { type: 'verification', id: String(i) },
      });
      await tx.$executeRaw`UPDATE bench_chain_head SET seq = seq + 1, hash = encode(sha256(convert_to(hash || seq::text, 'UTF8')), 'hex') WHERE id = 1`;
    });
    out(
      `writes, row + audit event per transaction, sealer running: ${rate(ours.done, ours.ms)} (backlog sealed ${Math.round(drainMs)} ms after writers stopped)`,
    );
    out(`writes, same + chain head locked in every transaction:   ${rate(locked.done, locked.ms)}`);
    await sealer.sealNow();

    // 2. Seed and seal.
    const seedClient = new pg.Client({ connectionString: db.url });
    await seedClient.connect();
    let started = performance.now();
    await seedClient.query(
      `INSERT INTO audit_events (id, occurred_at, actor_type, actor_id, actor_role, action, target_type, target_id,
                                 outcome, request_id, ip, details, id_card_hmac)
       SELECT gen_random_uuid(), now() - make_interval(secs => ($1::int - n) * 0.1),
              'api_key', 'key-' || (n % 500), (ARRAY['client','compliance','finance','admin'])[1 + n % 4],
              (ARRAY['verification.created','verification.completed','verification.viewed','auth.failed','api_key.created','verification.failed'])[1 + n % 6],
              'verification', 'v-' || n, (ARRAY['success','success','success','failure','denied'])[1 + n % 5],
              'req-' || n, '10.0.' || (n % 250) || '.1',
              jsonb_build_object('result', (n % 8 - 7)::text, 'charged', n % 2 = 0, 'id_card', '110101********' || lpad((n % 10000)::text, 4, '0')),
              CASE WHEN n % 10 = 0 THEN encode(sha256(convert_to('id-' || (n % 20000), 'UTF8')), 'hex') END
       FROM generate_series(1, $1::int) AS n`,
      [EVENTS],
    );
    await seedClient.query('ANALYZE audit_events');
    await seedClient.end();
    out(`seeded ${EVENTS.toLocaleString('en')} events in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    started = performance.now();
    const sealed = await sealer.sealNow(3_600_000);
    const sealMs = performance.now() - started;
    out(
      `sealing: ${sealed.toLocaleString('en')} events in ${(sealMs / 1000).toFixed(1)} s = ${rate(sealed, sealMs)} (batches of 1000, one transaction each)`,
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
    for (const [name, filters] of shapes) {
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

    // 4. Integrity and export.
    started = performance.now();
    const report = await audit.verifyChain();
    const verifyMs = performance.now() - started;
    out(
      `integrity check: ${report.checked.toLocaleString('en')} entries, ok=${report.ok}, ${rate(report.checked, verifyMs)} (${(verifyMs / 1000).toFixed(1)} s)`,
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
  }
}

function hmacOf(i: number): string {
  return createHash('sha256').update(`id-${i}`, 'utf8').digest('hex');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:audit failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
