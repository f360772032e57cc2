import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventHash } from '../../src/audit/canonical';
import { AuditCheckpoints } from '../../src/audit/audit-checkpoints.service';
import { chainedFields, EventSqlRow } from '../../src/audit/audit-rows';
import { createTestDatabase, databaseEnv, TestDatabase } from '../support/databases';
import { runCli } from '../support/processes';
import { startTestApp, TestApp } from '../support/test-app';
import { asAttacker, auditOf, chainRow, recordEvents, rewriteChainTimeFrom } from './support';

/** Budgets for a busy 2-core machine: the CLI test (three CLI processes) took up to 38 s with both cores taken. */
const HOOK_BUDGET_MS = 60_000;
const CLI_TEST_BUDGET_MS = 120_000;
/** A period that never comes during a test: background sealing and signing off, every seal and signature explicit. */
const NEVER_MS = 86_400_000;

describe('audit hash chain', () => {
  describe('under concurrent writers and two app instances on one database', () => {
    let db: TestDatabase;
    let a: TestApp;
    let b: TestApp;
    beforeAll(async () => {
      db = await createTestDatabase();
      // Two instances, sealing every 10 ms, so their sealers contend for the chain throughout.
      // Pools big enough for their 10 writers each plus the sealer, so no writer waits for a connection.
      // One AUDIT_MAC_KEY, as every instance of one installation has: each checks the other's events.
      const macKey = randomBytes(32);
      // And one witness folder: each instance writes the next record after the folder's latest (one history).
      const witnessDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-witness-shared-'));
      a = await startTestApp({ databasePoolSize: 16, audit: { sealIntervalMs: 10, macKey, witnessDir } }, db);
      b = await startTestApp({ databasePoolSize: 16, audit: { sealIntervalMs: 10, macKey, witnessDir } }, db);
    }, HOOK_BUDGET_MS);
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await db?.drop();
    }, HOOK_BUDGET_MS);

    it('seals every event exactly once, gap-free, in commit-safe order, and the chain verifies', async () => {
      const writers = Array.from({ length: 20 }, (_, w) => recordEvents(w % 2 ? a : b, 50, `w${w}`));
      await Promise.all(writers);
      await Promise.all([auditOf(a).sealNow(), auditOf(b).sealNow()]);

      const [stats] = await a.prisma.$queryRaw<
        { events: bigint; links: bigint; distinct_events: bigint; min: bigint; max: bigint }[]
      >`
        SELECT (SELECT count(*) FROM audit_events) AS events, count(*) AS links, count(DISTINCT event_id) AS distinct_events,
               min(seq) AS min, max(seq) AS max
        FROM audit_chain`;
      expect(Number(stats.events)).toBeGreaterThanOrEqual(1000);
      expect(stats.links).toBe(stats.events);
      expect(stats.distinct_events).toBe(stats.events);
      expect(stats.min).toBe(1n);
      expect(stats.max).toBe(stats.events);

      // Chain order is (txid, id) order: the order in which transactions became safe to seal.
      const [misordered] = await a.prisma.$queryRaw<{ n: bigint }[]>`
        SELECT count(*) AS n FROM (
          SELECT (e.txid, e.id) < lag((e.txid, e.id)) OVER (ORDER BY c.seq) AS wrong
          FROM audit_chain c JOIN audit_events e ON e.id = c.event_id) x
        WHERE wrong`;
      expect(misordered.n).toBe(0n);

      expect(await auditOf(a).verifyChain()).toMatchObject({ ok: true, checked: Number(stats.events) });
      expect(await auditOf(b).verifyChain({ fromSeq: 500, toSeq: 700 })).toMatchObject({ ok: true, checked: 201 });
    });
  });

  describe('tampering by a database superuser with the protections off', () => {
    const seed = randomBytes(32);
    let t: TestApp;

    /**
     * A fresh installation with 30 sealed events (seq 1–30) in 6 transactions, and a checkpoint at 30.
     * No background sealer or signer: each test looks at the chain as the attacker left it. (A
     * running sealer re-chains events whose entries were cut off within one interval, identically, so
     * "cut short" would pass or fail by timing; the attacker's transaction holds their locks anyway.)
     */
    beforeEach(async () => {
      t = await startTestApp({
        audit: { signingKeySeed: seed, sealIntervalMs: NEVER_MS, checkpointIntervalMs: NEVER_MS },
      });
      for (let i = 0; i < 6; i++) await recordEvents(t, 5, `t${i}`);
      await auditOf(t).sealNow();
      const signed = await t.app.get(AuditCheckpoints).signHead(null);
      expect(signed?.checkpoint.seq).toBe(30);
      expect(await auditOf(t).verifyChain()).toMatchObject({
        ok: true,
        status: 'intact',
        checked: 30,
        from_seq: 1,
        to_seq: 30,
        checkpoints_verified: 1,
        faults: [],
      });
    }, HOOK_BUDGET_MS);
    afterEach(() => t?.close(), HOOK_BUDGET_MS);

    const verify = () => auditOf(t).verifyChain();

    it('an edited event is caught at its seq', async () => {
      const { event_id } = await chainRow(t.db.adminUrl, 7);
      await asAttacker(t.db.adminUrl, (c) =>
        c.query(`UPDATE audit_events SET details = '{"result":"-1","n":2}' WHERE id = $1`, [event_id]),
      );
      expect(await verify()).toMatchObject({
        ok: false,
        first_bad_seq: 7,
        reason: expect.stringMatching(/hash does not match/),
      });
    });

    it('a deleted event is caught at its seq', async () => {
      const { event_id } = await chainRow(t.db.adminUrl, 9);
      await asAttacker(t.db.adminUrl, (c) => c.query(`DELETE FROM audit_events WHERE id = $1`, [event_id]));
      expect(await verify()).toMatchObject({
        ok: false,
        first_bad_seq: 9,
        reason: expect.stringMatching(/missing \(deleted\)/),
      });
    });

    it('a deleted chain entry is caught at its seq', async () => {
      await asAttacker(t.db.adminUrl, (c) => c.query(`DELETE FROM audit_chain WHERE seq = 11`));
      expect(await verify()).toMatchObject({
        ok: false,
        first_bad_seq: 11,
        reason: expect.stringMatching(/seq 11 is missing/),
      });
    });

    it('an event inserted in the middle, behind the sealer, is caught where it claims to be', async () => {
      const { event_id } = await chainRow(t.db.adminUrl, 12);
      await asAttacker(t.db.adminUrl, (c) =>
        c.query(
          `INSERT INTO audit_events (id, occurred_at, actor_type, action, outcome, details, txid)
           SELECT '${'f'.repeat(8)}-ffff-7fff-8fff-ffffffffffff'::uuid, occurred_at, 'system', 'pii.purged', 'success', '{}', txid
           FROM audit_events WHERE id = $1`,
          [event_id],
        ),
      );
      // Same transaction as seq 12 (its events are seq 11–15), sorting after all of them: it belongs before seq 16.
      expect(await verify()).toMatchObject({
        ok: false,
        first_bad_seq: 16,
        reason: expect.stringMatching(/never sealed/),
      });
    });

    it('a chain entry inserted in the middle (later ones renumbered) is caught at it and at the entry after it', async () => {
      const before = await chainRow(t.db.adminUrl, 4);
      await asAttacker(t.db.adminUrl, async (c) => {
        await c.query(`UPDATE audit_chain SET seq = seq + 1000 WHERE seq >= 5`);
        await c.query(`UPDATE audit_chain SET seq = seq - 999 WHERE seq >= 1005`);
        const injected = (
          await c.query(
            `INSERT INTO audit_events (id, occurred_at, actor_type, action, outcome, details)
             VALUES ('${'e'.repeat(8)}-eeee-7eee-8eee-eeeeeeeeeeee', now(), 'system', 'pii.purged', 'success', '{}')
             RETURNING id::text, occurred_at, actor_type, actor_id, actor_role, action, target_type, target_id, outcome,
                       request_id, ip, details, id_card_hmac, txid`,
          )
        ).rows[0] as EventSqlRow;
        const hash = eventHash(before.hash, chainedFields(injected));
        await c.query(`INSERT INTO audit_chain (seq, event_id, prev_hash, hash) VALUES (5, $1, $2, $3)`, [
          injected.id,
          before.hash,
          hash,
        ]);
      });
      // The injected event carries no MAC (issue 13): caught at its own seq; the broken linkage after it too.
      expect(await verify()).toMatchObject({
        ok: false,
        first_bad_seq: 5,
        reason: expect.stringMatching(/not written by idgate/),
      });
      expect(await auditOf(t).verifyChain({ fromSeq: 6 })).toMatchObject({
        ok: false,
        first_bad_seq: 6,
        reason: expect.stringMatching(/prev_hash/),
      });
    });

    it('a chain rewritten from some seq on, every hash recomputed, is caught by the signed checkpoint', async () => {
      // A time-only edit, which the event MAC does not cover (an edited outcome is caught at seq 20 by the MAC:
      // test/audit/authenticity.e2e-spec.ts).
      expect((await rewriteChainTimeFrom(t, 20)).caughtBy?.seq).toBe(30);
      // Linkage and hashes are all consistent again; only the signature over seq 30 gives it away.
      expect(await verify()).toMatchObject({
        ok: false,
        first_bad_seq: 30,
        reason: expect.stringMatching(/differs from the signed checkpoint/),
      });
      expect(await auditOf(t).verifyChain({ toSeq: 29 })).toMatchObject({ ok: true, checked: 29 });
    });

    it('a chain cut short after a checkpoint is caught', async () => {
      await asAttacker(t.db.adminUrl, (c) => c.query(`DELETE FROM audit_chain WHERE seq > 25`));
      expect(await verify()).toMatchObject({
        ok: false,
        first_bad_seq: 26,
        reason: expect.stringMatching(/entries were removed/),
      });
    });

    it(
      '`idgate audit verify` exits 0 on an intact chain and 1 on a broken one, naming the seq',
      async () => {
        const env = {
          ...databaseEnv(t.db),
          PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
          PII_HMAC_KEY: randomBytes(32).toString('base64'),
          AUDIT_SIGNING_KEY: seed.toString('base64'),
          // The app's witness folder: the CLI compares the chain with it.
          AUDIT_WITNESS_DIR: t.config.audit.witnessDir,
          AUDIT_MAC_KEY: t.config.audit.macKey.toString('base64'),
          // The CLI process runs a sealer and a signer too: no periodic signing while it checks.
          AUDIT_CHECKPOINT_INTERVAL_MS: String(NEVER_MS),
          LOG_LEVEL: 'silent',
        };
        const good = await runCli(['audit', 'verify', '--json'], env);
        expect(good.code).toBe(0);
        const report = JSON.parse(good.stdout.trim().split('\n').pop() as string);
        expect(report).toMatchObject({ ok: true, checked: 30, checkpoints_verified: 1 });

        await rewriteChainTimeFrom(t, 20);
        const bad = await runCli(['audit', 'verify'], env);
        expect(bad.code).toBe(1);
        expect(bad.stdout).toContain('Audit chain BROKEN at seq 30');
        expect(bad.stderr).toMatch(/verification failed at seq 30/);
        const ranged = await runCli(['audit', 'verify', '--from-seq', '1', '--to-seq', '29', '--json'], env);
        expect(ranged.code).toBe(0);
      },
      CLI_TEST_BUDGET_MS,
    );
  });
});
