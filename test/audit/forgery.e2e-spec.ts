import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditCheckpoints } from '../../src/audit/audit-checkpoints.service';
import { AuditWitnessWriter } from '../../src/audit/witness/witness-writer.service';
import { databaseEnv } from '../support/databases';
import { runCli } from '../support/processes';
import { startTestApp, TestApp } from '../support/test-app';
import { asAttacker, auditOf, recordEvents } from './support';
import {
  cutTail,
  deleteAndRelink,
  exportTo,
  firstRecordFrom,
  lastJson,
  runVerifier,
  witnessRecords,
} from './witness-support';

/*
 * Issue 13, attack (a), as it went undetected before the witness: a database superuser deletes one
 * event, re-inserts every later chain link with recomputed hashes, and deletes the signed checkpoints
 * from that seq on, while idgate keeps sealing and signing. The chain in the database is consistent
 * again; only the records outside it (the witness) can tell. Each forgery must be caught at the first
 * witness record at or after the victim, by the API, the CLI and the standalone verifier, and nothing
 * may ever be signed over it. The suite is run many times, also under CPU load (see the report).
 */

const FORGERIES = 20;
/** Budgets for a busy 2-core machine with two CPU burners: a forgery round takes 2–6 s there. */
const FORGERY_BUDGET_MS = 600_000;
const HOOK_BUDGET_MS = 120_000;
const NEVER_MS = 86_400_000;
const CHECKPOINT_INTERVAL_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('attack (a): an event deleted, the chain re-linked, later checkpoints deleted', () => {
  const seed = randomBytes(32);
  let t: TestApp;
  let dir: string;
  let pem: string;
  let compliance: string;

  beforeAll(async () => {
    // The real background work: sealing every 50 ms (a head record per pass that moved), signing every second.
    t = await startTestApp({
      databasePoolSize: 10,
      audit: { signingKeySeed: seed, sealIntervalMs: 50, checkpointIntervalMs: CHECKPOINT_INTERVAL_MS },
    });
    compliance = (await t.keyFor('compliance')).key;
    dir = mkdtempSync(path.join(os.tmpdir(), 'idgate-forgery-'));
    pem = path.join(dir, 'idgate-audit.pem');
    writeFileSync(pem, auditOf(t).publicKey().pem);
    for (let i = 0; i < 40; i++) {
      await recordEvents(t, 1 + (i % 4), `seed${i}`);
      await auditOf(t).sealNow();
    }
  }, HOOK_BUDGET_MS);
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, HOOK_BUDGET_MS);

  async function httpIntegrity() {
    const res = await t.http.get('/v1/audit/integrity').set('Authorization', `Bearer ${compliance}`);
    expect(res.status).toBe(200);
    return res.body;
  }

  it(
    `${FORGERIES} forgeries with different victims, while events keep coming: each caught at the right seq, none ever signed`,
    async () => {
      // Events keep coming throughout, as in production: the sealer chains them onto whatever chain it finds.
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          await recordEvents(t, 1 + (i % 3), `bg${i}`).catch(() => undefined);
          await sleep(40);
        }
      })();
      const caught: number[] = [];
      /** Chain alerts raised since `since` (counted by time: a victim may itself be an earlier alert event). */
      const chainAlerts = async (since: Date) =>
        Number(
          (
            await t.prisma.$queryRaw<{ n: bigint }[]>`
              SELECT count(*) AS n FROM audit_events
              WHERE action = 'security.alert' AND details->>'reason' = 'audit_chain_broken' AND occurred_at >= ${since}`
          )[0].n,
        );
      try {
        for (let i = 0; i < FORGERIES; i++) {
          const before = await witnessRecords(t.config.audit.witnessDir);
          const latest = before[before.length - 1].seq;
          // Victims spread over the chain, each below the witness's latest record (the unwitnessed tail is attack (c)).
          const victim = 2 + Math.floor(((latest - 3) * (i * 7 + 3)) / (FORGERIES * 7 + 3));
          const expected = (firstRecordFrom(before, victim) as { seq: number }).seq;
          const forgedAt = Date.now();
          const forgery = await deleteAndRelink(t, victim);

          // A checkpoint interval and several sealing passes go by on the forged chain: nothing may be signed over it.
          await sleep(CHECKPOINT_INTERVAL_MS + 200);
          const report = await httpIntegrity();
          expect({ i, victim, ok: report.ok, first_bad_seq: report.first_bad_seq }).toEqual({
            i,
            victim,
            ok: false,
            first_bad_seq: expected,
          });
          // Refused over this forgery, not still over the last one.
          expect(report.signing).toMatchObject({ state: 'refused' });
          expect(Date.parse(report.signing.refusal.since)).toBeGreaterThanOrEqual(forgedAt);
          // Refused dozens of times meanwhile (every sealing pass, every second), alerted once per distinct fault: the
          // chain ending below the witness's latest record, then, once new events were sealed, differing from it.
          await auditOf(t).sealNow();
          const raised = await chainAlerts(new Date(forgedAt));
          expect({ i, raised: raised >= 1 && raised <= 2 }).toEqual({ i, raised: true });

          // The export an auditor receives from the forged database, checked against the witness they kept.
          const file = path.join(dir, `forged-${i}.ndjson`);
          await exportTo(t, file, { fromSeq: Math.max(1, victim - 30) });
          const standalone = await runVerifier([
            file,
            '--public-key',
            pem,
            '--witness',
            t.config.audit.witnessDir,
            '--json',
          ]);
          expect({ i, code: standalone.code, first_bad_seq: lastJson(standalone.stdout).first_bad_seq }).toEqual({
            i,
            code: 1,
            first_bad_seq: expected,
          });
          // Without the witness the same export passes: that was the hole.
          expect((await runVerifier([file, '--public-key', pem, '--json'])).code).toBe(0);
          if (i === 0) {
            const env = {
              ...databaseEnv(t.db),
              PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
              PII_HMAC_KEY: randomBytes(32).toString('base64'),
              AUDIT_SIGNING_KEY: seed.toString('base64'),
              AUDIT_MAC_KEY: t.config.audit.macKey.toString('base64'),
              AUDIT_WITNESS_DIR: t.config.audit.witnessDir,
              AUDIT_CHECKPOINT_INTERVAL_MS: String(NEVER_MS),
              LOG_LEVEL: 'silent',
            };
            const cli = await runCli(['audit', 'verify'], env);
            expect({ code: cli.code, stdout: cli.stdout }).toMatchObject({
              code: 1,
              stdout: expect.stringContaining(`Audit chain BROKEN at seq ${expected}`),
            });
            const offline = await runCli(
              ['audit', 'verify', '--file', file, '--public-key', pem, '--witness', t.config.audit.witnessDir],
              {},
            );
            expect({ code: offline.code, stdout: offline.stdout }).toMatchObject({
              code: 1,
              stdout: expect.stringContaining(`Export BROKEN at seq ${expected}`),
            });
          }
          caught.push(expected);
          await forgery.restore();
          // The true chain is back (events sealed on the forged one are sealed again): it verifies, and signing resumes.
          // One more event, so the witness's latest record moves on and the next forgery is a fault of its own (an
          // identical alert within a minute is counted, not written again: SecurityAlerts).
          await recordEvents(t, 1, `between${i}`);
          await auditOf(t).sealNow();
          const healed = await auditOf(t).verifyChain();
          expect({ i, ok: healed.ok, reason: healed.reason }).toEqual({ i, ok: true, reason: undefined });
        }
      } finally {
        writing = false;
        await writer;
      }
      expect(caught).toHaveLength(FORGERIES);

      // Nothing was ever signed over a forged chain: every record the witness holds matches the true chain.
      await auditOf(t).sealNow();
      await t.app.get(AuditCheckpoints).signHead(null);
      const final = await auditOf(t).verifyChain();
      const records = await witnessRecords(t.config.audit.witnessDir);
      expect(final).toMatchObject({ ok: true, witness: [{ records: records.length, matched: records.length }] });
      // The periodic signer ran throughout (it signed between the forgeries, never during one).
      expect(records.filter((r) => r.kind === 'checkpoint').length).toBeGreaterThan(1);
      // No alert twice for one fault, however often the signer was refused.
      const [{ n, distinct }] = await t.prisma.$queryRaw<{ n: bigint; distinct: bigint }[]>`
        SELECT count(*) AS n, count(DISTINCT details->>'fault_id') AS distinct FROM audit_events
        WHERE action = 'security.alert' AND details->>'reason' = 'audit_chain_broken'`;
      expect(Number(n)).toBe(Number(distinct));
    },
    FORGERY_BUDGET_MS,
  );
});

describe('attack (a) done step by step, without the locks', () => {
  it('the signer and the head writer refuse at every step (the old signer signed the forged head mid-forgery)', async () => {
    const t = await startTestApp({ audit: { sealIntervalMs: NEVER_MS, checkpointIntervalMs: NEVER_MS } });
    try {
      for (let i = 0; i < 6; i++) {
        await recordEvents(t, 4, `s${i}`);
        await auditOf(t).sealNow();
      }
      const checkpoints = t.app.get(AuditCheckpoints);
      const writer = t.app.get(AuditWitnessWriter);
      const signed = (await checkpoints.signHead(null))?.checkpoint.seq as number;
      const before = await witnessRecords(t.config.audit.witnessDir);
      const victim = 10;

      // Step 1: the victim and every later link deleted (the chain ends at 9).
      const saved = await asAttacker(t.db.adminUrl, async (c) => {
        const rows = (
          await c.query(
            `SELECT c.seq, e.id::text AS id FROM audit_chain c JOIN audit_events e ON e.id = c.event_id
             WHERE c.seq >= $1 ORDER BY c.seq`,
            [victim],
          )
        ).rows as { seq: string; id: string }[];
        await c.query(`DELETE FROM audit_chain WHERE seq >= $1`, [victim]);
        await c.query(`DELETE FROM audit_events WHERE id = $1`, [rows[0].id]);
        return rows;
      });
      expect(saved.length).toBe(signed - victim + 1);
      await expect(checkpoints.signHead(null)).rejects.toThrow(/entries were removed/);
      expect((await writer.publishHead(true)).outcome).toBe('refused');

      // Step 2: the sealer itself re-links the rest (as the attacker would), one seq down, hashes recomputed.
      await auditOf(t).sealNow();
      await expect(checkpoints.signHead(null)).rejects.toThrow(/does not verify/);
      // Step 3: the checkpoints from the victim on deleted.
      await asAttacker(t.db.adminUrl, (c) => c.query(`DELETE FROM audit_checkpoints WHERE seq >= $1`, [victim]));
      await expect(checkpoints.signHead(null)).rejects.toThrow(/does not verify/);
      await recordEvents(t, 2, 'after');
      await auditOf(t).sealNow();
      await expect(checkpoints.signHead(null)).rejects.toThrow(/does not verify/);

      expect(await witnessRecords(t.config.audit.witnessDir)).toEqual(before);
      const expected = (firstRecordFrom(before, victim) as { seq: number }).seq;
      expect(await auditOf(t).verifyChain()).toMatchObject({ ok: false, first_bad_seq: expected });
    } finally {
      await t.close();
    }
  });
});

describe('attack (c) with the periodic sealer: a cut younger than one checkpoint interval', () => {
  it('is caught through the head records the sealer wrote, at the first missing seq', async () => {
    const t = await startTestApp({ audit: { sealIntervalMs: 100, checkpointIntervalMs: 60_000 } });
    try {
      await recordEvents(t, 5, 'a');
      await auditOf(t).sealNow();
      await t.app.get(AuditCheckpoints).signHead(null);
      const signed = (await t.prisma.auditCheckpoint.findFirstOrThrow({ orderBy: { seq: 'desc' } })).seq;
      await recordEvents(t, 5, 'b');
      await recordEvents(t, 5, 'c');
      // The background sealer chains them and writes the head to the witness within a pass or two.
      const head = Number(signed) + 10;
      for (let waited = 0; ; waited += 50) {
        const records = await witnessRecords(t.config.audit.witnessDir);
        if (records[records.length - 1]?.seq === head) break;
        if (waited > 20_000) throw new Error(`no head record at seq ${head}`);
        await sleep(50);
      }
      const keep = Number(signed) + 3;
      expect(await cutTail(t, keep)).toBe(7);
      expect(await auditOf(t).verifyChain()).toMatchObject({
        ok: false,
        first_bad_seq: keep + 1,
        reason: expect.stringMatching(
          new RegExp(`^the chain ends at seq ${keep} but the witness folder holds a head at seq \\d+`),
        ),
      });
    } finally {
      await t.close();
    }
  });
});
