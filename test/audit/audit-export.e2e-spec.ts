import pg from 'pg';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AuditCheckpoints } from '../../src/audit/audit-checkpoints.service';
import { ExportVerifier } from '../../src/audit/export-format';
import { publicKeyFromPem, publicKeyId } from '../../src/audit/checkpoint';
import { ROOT, runCli } from '../support/processes';
import { startTestApp, TestApp } from '../support/test-app';
import { asAttacker, auditOf, recordEvents, rewriteChainFrom, sealAll, seedEventsWithMacs } from './support';

const EVENTS = 100_000;
/** Budgets for a busy 2-core machine (measured with both cores taken: fixture up to about 35 s, the 100k test, 300 s below, up to 50 s). */
const FIXTURE_BUDGET_MS = 240_000;
const FORGERY_BUDGET_MS = 180_000;

/** V8's gc(), reachable without --expose-gc: the flag can be set at run time, then read from a fresh context. */
function forcedGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function runVerifier(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'docs', 'verify-audit-export.mjs'), ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop() as string);

describe('audit export', () => {
  let t: TestApp;
  let base: string;
  let compliance: string;
  let dir: string;
  let pemFile: string;

  beforeAll(async () => {
    // Checkpoints only when the test signs them: the periodic signer (24 h) never runs during the suite.
    t = await startTestApp({
      databasePoolSize: 10,
      audit: { signingKeySeed: randomBytes(32), checkpointIntervalMs: 86_400_000 },
    });
    await t.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
    compliance = (await t.keyFor('compliance')).key;
    dir = mkdtempSync(path.join(os.tmpdir(), 'idgate-audit-export-'));
    pemFile = path.join(dir, 'idgate-audit.pem');
    writeFileSync(pemFile, auditOf(t).publicKey().pem);

    // 100,000 events seeded set-based, chained by the real sealer, the head signed.
    const started = Date.now();
    // As idgate writes them (UUIDv7 ids and MACs, issue 13), or the integrity check reports them, rightly, as
    // not written by idgate. As the owner: seeding ANALYZEs the table, which the runtime role may not do.
    await seedEventsWithMacs(t, EVENTS);
    const seeded = Date.now();
    await sealAll(t);
    // As after any bulk load: statistics for the 100,000 links the sealer just wrote.
    const owner = new pg.Client({ connectionString: t.db.adminUrl });
    await owner.connect();
    await owner.query('ANALYZE audit_chain').finally(() => owner.end());
    process.stdout.write(
      `audit export fixture: ${EVENTS} events seeded in ${seeded - started} ms, chained in ${Date.now() - seeded} ms\n`,
    );
    const signed = await t.app.get(AuditCheckpoints).signHead(null);
    const [{ events, links }] = await t.prisma.$queryRaw<{ events: bigint; links: bigint }[]>`
      SELECT (SELECT count(*) FROM audit_events) AS events, (SELECT count(*) FROM audit_chain) AS links`;
    expect(links).toBe(events);
    expect(signed?.checkpoint.seq).toBe(Number(links));
    // A few events after the checkpoint: sealed but not yet signed.
    await recordEvents(t, 3, 'after-checkpoint');
    await auditOf(t).sealNow();
  }, FIXTURE_BUDGET_MS);
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /**
   * Streams an export to a file over real HTTP, sampling this process's memory (server and client
   * both live here) every 500 ms after a forced full GC, so the figure is live memory, not garbage.
   */
  async function download(
    query: string,
    file: string,
  ): Promise<{ bytes: number; peakHeapGrowth: number; peakRssGrowth: number }> {
    const gc = forcedGc();
    gc();
    const before = process.memoryUsage();
    let peakHeap = before.heapUsed;
    let peakRss = before.rss;
    // A forced full GC costs more the larger this worker's heap (suites before this one leave theirs):
    // the next sample waits at least four times as long as the last GC took, so collecting never takes
    // more than a fifth of the server's time (at 500 ms a 1.9 GB worker spent the export in GC).
    let sampler: NodeJS.Timeout | undefined;
    let sampling = true;
    const sample = () => {
      const started = performance.now();
      gc();
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakRss = Math.max(peakRss, m.rss);
      if (sampling) sampler = setTimeout(sample, Math.max(500, 4 * (performance.now() - started)));
    };
    sampler = setTimeout(sample, 500);
    try {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http
          .get(
            `${base}/v1/audit/events/export?${query}`,
            { headers: { authorization: `Bearer ${compliance}` } },
            resolve,
          )
          .on('error', reject),
      );
      expect(res.statusCode).toBe(200);
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      await pipeline(res, createWriteStream(file));
      return { bytes, peakHeapGrowth: peakHeap - before.heapUsed, peakRssGrowth: peakRss - before.rss };
    } finally {
      sampling = false;
      clearTimeout(sampler);
    }
  }

  it(`streams ${EVENTS.toLocaleString('en')}+ events as verifiable NDJSON without holding them in memory`, async () => {
    const file = path.join(dir, 'export.ndjson');
    const { bytes, peakHeapGrowth, peakRssGrowth } = await download('format=ndjson', file);
    const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
    process.stdout.write(
      `audit export: ${mb(bytes)} streamed; peak live heap growth ${mb(peakHeapGrowth)}, peak RSS growth ${mb(peakRssGrowth)}\n`,
    );
    // Holding the export would take at least its own size in heap; streaming keeps about one batch alive.
    expect(peakHeapGrowth).toBeLessThan(bytes / 4);

    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(JSON.parse(lines[0])).toMatchObject({ type: 'header', format: 'idgate.audit-export', complete: true });
    expect(JSON.parse(lines[lines.length - 1])).toMatchObject({ type: 'end', checkpoints: 1 });
    expect(lines.filter((l) => l.startsWith('{"type":"event"')).length).toBeGreaterThanOrEqual(EVENTS + 3);

    // The standalone verifier (Node built-ins only), with the public key pinned.
    const standalone = await runVerifier([file, '--public-key', pemFile, '--json']);
    expect(standalone.code).toBe(0);
    expect(lastJson(standalone.stdout)).toMatchObject({
      ok: true,
      checkpoints_verified: 1,
      unanchored_events: expect.any(Number),
      contiguous: true,
      key_pinned: true,
    });
    expect(lastJson(standalone.stdout).checked).toBeGreaterThanOrEqual(EVENTS + 3);

    // idgate's own CLI, offline.
    const cli = await runCli(['audit', 'verify', '--file', file, '--public-key', pemFile, '--json'], {});
    expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 0, stderr: '' });
    expect(lastJson(cli.stdout)).toMatchObject({ ok: true, checkpoints_verified: 1 });

    // One edited line in the file: both verifiers name its seq.
    const victim = lines.findIndex((l) => l.includes('"seq":5000,'));
    const edited = [...lines];
    edited[victim] = edited[victim].replace('"details":{', '"details":{"charged":false,');
    const editedFile = path.join(dir, 'edited.ndjson');
    writeFileSync(editedFile, edited.join('\n') + '\n');
    const caught = await runVerifier([editedFile, '--public-key', pemFile, '--json']);
    expect(caught.code).toBe(1);
    expect(lastJson(caught.stdout)).toMatchObject({ ok: false, first_bad_seq: 5000 });
    const cliCaught = await runCli(['audit', 'verify', '--file', editedFile, '--public-key', pemFile], {});
    expect({ code: cliCaught.code, stdout: cliCaught.stdout, stderr: cliCaught.stderr }).toMatchObject({
      code: 1,
      stdout: expect.stringContaining('Export BROKEN at seq 5000'),
    });
  }, 300_000); // 100k events exported and verified three times: minutes on a loaded 2-core machine

  it('exports a seq range as CSV, and a filtered range as NDJSON that verifies as non-contiguous', async () => {
    const csvFile = path.join(dir, 'range.csv');
    await download('format=csv&from_seq=10&to_seq=19', csvFile);
    const rows = readFileSync(csvFile, 'utf8').trimEnd().split('\n');
    expect(rows[0]).toBe(
      'seq,id,occurred_at,actor_type,actor_id,actor_role,action,target_type,target_id,outcome,request_id,ip,details,id_card_hmac,prev_hash,hash',
    );
    expect(rows.slice(1).map((r) => Number(r.split(',')[0]))).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);

    const filtered = path.join(dir, 'filtered.ndjson');
    await download('format=ndjson&action=auth.failed&to_seq=2000', filtered);
    const verified = await runVerifier([filtered, '--public-key', pemFile, '--json']);
    expect(verified.code).toBe(0);
    const [{ n }] = await t.prisma.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM audit_chain c JOIN audit_events e ON e.id = c.event_id
      WHERE c.seq <= 2000 AND e.action = 'auth.failed'`;
    expect(n).toBeGreaterThan(0n);
    expect(lastJson(verified.stdout)).toMatchObject({ ok: true, contiguous: false, checked: Number(n) });
  }, 60_000);

  /** The in-process verifier (the CLI's), on a file read whole: cheap, so every forgery gets it too. */
  function verifyInProcess(file: string) {
    const publicKey = publicKeyFromPem(readFileSync(pemFile, 'utf8'));
    const verifier = new ExportVerifier({ publicKey, keyId: publicKeyId(publicKey) });
    for (const line of readFileSync(file, 'utf8').split('\n')) verifier.acceptLine(line);
    return verifier.finish();
  }

  it(
    'an export of a chain rewritten with recomputed hashes fails at the signed checkpoint',
    async () => {
      const head = Number((await t.prisma.auditCheckpoint.findFirstOrThrow({ orderBy: { seq: 'desc' } })).seq);
      const from = head - 100;
      // Victims under the checkpoint: one of each outcome (a forgery used to set outcome 'denied',
      // a no-op on the fifth of seeded events that already had it, so 1 run in 5 "passed" a forgery
      // that changed nothing), the event the checkpoint signs, and the old fixed choice head - 10.
      const outcomes = await asAttacker(t.db.adminUrl, async (c) => {
        const rows = (
          await c.query(
            `SELECT DISTINCT ON (e.outcome) c.seq::int AS seq FROM audit_chain c JOIN audit_events e ON e.id = c.event_id
             WHERE c.seq BETWEEN $1 AND $2 ORDER BY e.outcome, c.seq`,
            [from, head - 1],
          )
        ).rows as { seq: number }[];
        return rows.map((r) => r.seq);
      });
      expect(outcomes.length).toBe(3); // success, failure, denied
      const victims = [...new Set([...outcomes, head, head - 10, from, head - 1, head - 57])];

      for (const [i, victim] of victims.entries()) {
        // Forged atomically with respect to the sealer and the signer, after the last checkpoint is
        // known; the helper refuses a forgery that leaves the signed hash unchanged.
        const forgery = await rewriteChainFrom(t, victim);
        expect(forgery.caughtBy?.seq).toBe(head);
        const file = path.join(dir, `rewritten-${victim}.ndjson`);
        await download(`format=ndjson&from_seq=${from}`, file);

        const expected = { ok: false, first_bad_seq: head, reason: expect.stringMatching(/signed checkpoint/) };
        const standalone = await runVerifier([file, '--public-key', pemFile, '--json']);
        expect({ victim, code: standalone.code }).toEqual({ victim, code: 1 });
        expect(lastJson(standalone.stdout)).toMatchObject(expected);
        expect(verifyInProcess(file)).toMatchObject(expected);
        if (i === 0) {
          const cli = await runCli(['audit', 'verify', '--file', file, '--public-key', pemFile], {});
          expect({ code: cli.code, stdout: cli.stdout }).toMatchObject({
            code: 1,
            stdout: expect.stringContaining(`Export BROKEN at seq ${head}`),
          });
        }
        await forgery.restore();
      }

      // Control: the same range, with every forgery undone, verifies; so each rejection above was the forgery's.
      const intact = path.join(dir, 'restored.ndjson');
      await download(`format=ndjson&from_seq=${from}`, intact);
      const standalone = await runVerifier([intact, '--public-key', pemFile, '--json']);
      expect(standalone.code).toBe(0);
      expect(lastJson(standalone.stdout)).toMatchObject({
        ok: true,
        checkpoints_verified: 1,
        anchored_through_seq: head,
      });
      expect(verifyInProcess(intact)).toMatchObject({ ok: true, checkpoints_verified: 1 });
      expect(await auditOf(t).verifyChain({ fromSeq: from })).toMatchObject({ ok: true, checkpoints_verified: 1 });
    },
    FORGERY_BUDGET_MS,
  );
});
