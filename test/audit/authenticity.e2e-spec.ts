import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { AuditCheckpoints } from '../../src/audit/audit-checkpoints.service';
import { EVENT_COLUMNS, EventSqlRow } from '../../src/audit/audit-rows';
import { MAC_REQUIRED_FROM, UuidV7Source } from '../../src/audit/event-authenticity';
import { AuditEventAuthenticity } from '../../src/audit/event-authenticity.service';
import { databaseEnv } from '../support/databases';
import { runCli } from '../support/processes';
import { startTestApp, TestApp } from '../support/test-app';
import {
  asAttacker,
  asInsertOnlyRole,
  auditOf,
  recordEvents,
  rewriteChainFrom,
  rewriteChainTimeFrom,
  TEST_CONTEXT,
} from './support';

/*
 * Issue 13 point 5 and attack (b): who wrote an event (its MAC under AUDIT_MAC_KEY, which the
 * database never sees) and whether its time fits where it was sealed (occurred_at stamped by the
 * database; an event earlier than the sealed tail by more than the tolerance is reported).
 */

/** Budgets for a busy 2-core machine (two CLI processes per test at most). */
const HOOK_BUDGET_MS = 60_000;
const CLI_TEST_BUDGET_MS = 120_000;
/** A period that never comes during a test: every seal and signature explicit. */
const NEVER_MS = 86_400_000;
const MINUTE = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop() as string);

/** A fabricated `verification.viewed` by a finance key, as an intruder would write it: a plausible UUIDv7 of the claimed time. */
async function insertViewed(
  c: pg.Client,
  financeKeyId: string,
  claimed: Date,
  mac: string | null = null,
): Promise<{ id: string; occurred_at: Date }> {
  const id = new UuidV7Source(() => claimed.getTime()).next();
  const { rows } = await c.query(
    `INSERT INTO audit_events (id, occurred_at, actor_type, actor_id, actor_role, action, target_type, target_id,
                               outcome, request_id, ip, details, mac)
     VALUES ($1, $2, 'api_key', $3, 'finance', 'verification.viewed', 'verification', $4, 'success', $5, '10.20.30.40', '{}', $6)
     RETURNING id::text, occurred_at`,
    [id, claimed, financeKeyId, randomUUID(), randomUUID(), mac],
  );
  return rows[0] as { id: string; occurred_at: Date };
}

describe('audit event authenticity and time order', () => {
  const seed = randomBytes(32);
  const macKey = randomBytes(32);
  let t: TestApp;

  /** The chain position of an event, and the chain's head. */
  async function seqOf(eventId: string): Promise<{ seq: number; head: number }> {
    const [row] = await t.prisma.$queryRaw<{ seq: bigint; head: bigint }[]>`
      SELECT c.seq, (SELECT max(seq) FROM audit_chain) AS head FROM audit_chain c WHERE c.event_id = ${eventId}::uuid`;
    return { seq: Number(row.seq), head: Number(row.head) };
  }

  describe('events written by someone other than idgate', () => {
    beforeEach(async () => {
      t = await startTestApp({
        audit: { signingKeySeed: seed, macKey, sealIntervalMs: NEVER_MS, checkpointIntervalMs: NEVER_MS },
      });
    }, HOOK_BUDGET_MS);
    afterEach(() => t?.close(), HOOK_BUDGET_MS);

    it(
      'attack (b): a back-dated verification.viewed inserted with only the INSERT right is stamped now, sealed at the head, and reported by the API and the CLI',
      async () => {
        const finance = await t.keyFor('finance');
        const compliance = await t.keyFor('compliance');
        await recordEvents(t, 5, 'before');
        await auditOf(t).sealNow();
        expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true });

        const claimed = new Date(Date.now() - 12 * MINUTE);
        const forged = await asInsertOnlyRole(t, (c) => insertViewed(c, finance.id, claimed));
        // The trigger stamped the insert's own time: the INSERT right cannot back-date an event.
        expect(Math.abs(forged.occurred_at.getTime() - Date.now())).toBeLessThan(30_000);
        expect(forged.occurred_at.getTime() - claimed.getTime()).toBeGreaterThan(11 * MINUTE);

        await auditOf(t).sealNow();
        const { seq, head } = await seqOf(forged.id);
        expect(seq).toBe(head);

        const notIdgate = `event ${forged.id} was not written by idgate: it carries no MAC`;
        const api = await t.http
          .get('/v1/audit/integrity')
          .set('Authorization', `Bearer ${compliance.key}`)
          .expect(200);
        expect(api.body).toMatchObject({ ok: false, first_bad_seq: seq, reason: expect.stringContaining(notIdgate) });

        const env = {
          ...databaseEnv(t.db),
          PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
          PII_HMAC_KEY: randomBytes(32).toString('base64'),
          AUDIT_SIGNING_KEY: seed.toString('base64'),
          AUDIT_WITNESS_DIR: t.config.audit.witnessDir,
          AUDIT_MAC_KEY: macKey.toString('base64'),
          AUDIT_CHECKPOINT_INTERVAL_MS: String(NEVER_MS),
          LOG_LEVEL: 'silent',
        };
        const json = await runCli(['audit', 'verify', '--json'], env);
        expect({ code: json.code, stderr: json.stderr }).toEqual({
          code: 1,
          stderr: expect.stringContaining(`audit chain verification failed at seq ${seq}: ${notIdgate}`),
        });
        expect(lastJson(json.stdout)).toMatchObject({
          ok: false,
          first_bad_seq: seq,
          reason: expect.stringContaining(notIdgate),
        });
        const text = await runCli(['audit', 'verify'], env);
        expect(text.code).toBe(1);
        expect(text.stdout).toContain(`Audit chain BROKEN at seq ${seq}: ${notIdgate}`);
        // The events before it verify: the range up to it is intact.
        const before = await runCli(['audit', 'verify', '--to-seq', String(seq - 1), '--json'], env);
        expect(before.code).toBe(0);
      },
      CLI_TEST_BUDGET_MS,
    );

    it('the same insert with a made-up MAC, or with a genuine event’s MAC, is reported at its seq', async () => {
      const finance = await t.keyFor('finance');
      const [genuine] = await recordEvents(t, 1, 'genuine');
      const [{ mac }] = await t.prisma.$queryRaw<
        { mac: string }[]
      >`SELECT mac FROM audit_events WHERE id = ${genuine}::uuid`;
      expect(mac).toMatch(/^[0-9a-f]{64}$/);
      await auditOf(t).sealNow();

      const [random, copied] = await asInsertOnlyRole(t, async (c) => [
        await insertViewed(c, finance.id, new Date(), randomBytes(32).toString('hex')),
        await insertViewed(c, finance.id, new Date(), mac),
      ]);
      await auditOf(t).sealNow();
      const first = (await seqOf(random.id)).seq;
      const second = (await seqOf(copied.id)).seq;
      expect(second).toBeGreaterThan(first);

      const mismatch = (id: string) =>
        new RegExp(`^event ${id} was not written by idgate as it stands: its MAC does not match its fields`);
      expect(await auditOf(t).verifyChain()).toMatchObject({
        ok: false,
        first_bad_seq: first,
        reason: expect.stringMatching(mismatch(random.id)),
      });
      expect(await auditOf(t).verifyChain({ fromSeq: first + 1 })).toMatchObject({
        ok: false,
        first_bad_seq: second,
        reason: expect.stringMatching(mismatch(copied.id)),
      });
    });

    it('a superuser who turns the trigger off to back-date an event is reported for its time too', async () => {
      const finance = await t.keyFor('finance');
      await recordEvents(t, 3, 'a');
      await auditOf(t).sealNow();
      // session_replication_role = replica: the stamping trigger does not fire, the claimed time stays.
      const forged = await asAttacker(t.db.adminUrl, (c) =>
        insertViewed(c, finance.id, new Date(Date.now() - 12 * MINUTE)),
      );
      await auditOf(t).sealNow();
      const { seq } = await seqOf(forged.id);
      const report = await auditOf(t).verifyChain();
      expect(report).toMatchObject({ ok: false, first_bad_seq: seq });
      expect(report.reason).toMatch(new RegExp(`^event ${forged.id} was not written by idgate: it carries no MAC`));
      expect(report.reason).toMatch(
        /; and it occurred at \S+, 1[12] min( \d+ s)? before seq \d+ \(\S+\) which was sealed ahead of it: more than the 5 min tolerance/,
      );

      // A genuine event, back-dated by a superuser before it was sealed: its MAC holds, its time does not.
      await recordEvents(t, 2, 'b');
      const [genuine] = await recordEvents(t, 1, 'c');
      await asAttacker(t.db.adminUrl, (c) =>
        c.query(`UPDATE audit_events SET occurred_at = occurred_at - interval '12 minutes' WHERE id = $1`, [genuine]),
      );
      await auditOf(t).sealNow();
      const moved = await auditOf(t).verifyChain({ fromSeq: seq + 1 });
      expect(moved).toMatchObject({ ok: false, first_bad_seq: (await seqOf(genuine)).seq });
      expect(moved.reason).toMatch(
        new RegExp(`^event ${genuine} has a time \\(\\S+\\) 12 min( \\d+ s)? away from when idgate made its id`),
      );
      expect(moved.reason).toMatch(/; and it occurred at .* before seq \d+ /);
      expect(moved.reason).not.toMatch(/not written by idgate/);
    });

    it('events without a MAC from before the cut-over pass, until an event with one has been sealed', async () => {
      const [{ n }] = await t.prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM audit_events`;
      expect(n).toBe(0n);
      // What an older idgate left behind (inserted here with the trigger off, to give them their old times).
      const legacyAt = new Date(MAC_REQUIRED_FROM.getTime() - 30 * 24 * 60 * MINUTE);
      const legacy = await asAttacker(t.db.adminUrl, async (c) => [
        await insertViewed(c, 'old-key', legacyAt),
        await insertViewed(c, 'old-key', new Date(legacyAt.getTime() + 1000)),
      ]);
      await recordEvents(t, 3, 'new');
      await auditOf(t).sealNow();
      expect((await seqOf(legacy[1].id)).seq).toBe(2);
      expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true, checked: 5 });

      // The same kind of row, sealed after idgate's MAC'd events: not a legacy event, whatever its date.
      const late = await asAttacker(t.db.adminUrl, (c) => insertViewed(c, 'old-key', legacyAt));
      await auditOf(t).sealNow();
      expect(await auditOf(t).verifyChain()).toMatchObject({
        ok: false,
        first_bad_seq: 6,
        reason: expect.stringMatching(
          new RegExp(`^event ${late.id} was not written by idgate: it carries no MAC, yet it was sealed after seq 3`),
        ),
      });
      // A walk starting at it knows what came before from the event at seq 5 (beginAt), as a full walk does.
      const [row] = await t.prisma.$queryRaw<EventSqlRow[]>`
        SELECT ${EVENT_COLUMNS} FROM audit_chain c JOIN audit_events e ON e.id = c.event_id WHERE c.seq = 6`;
      const ranged = await t.app.get(AuditEventAuthenticity).beginAt(t.prisma, 6);
      expect(ranged.check(6, row)?.reason).toMatch(/yet it was sealed after seq 5, which does/);
    });

    it('an event edited and re-hashed is caught at its own seq by its MAC; a time-only rewrite is left to the checkpoint', async () => {
      for (let i = 0; i < 6; i++) await recordEvents(t, 5, `t${i}`);
      await auditOf(t).sealNow();
      expect((await t.app.get(AuditCheckpoints).signHead(null))?.checkpoint.seq).toBe(30);

      const edited = await rewriteChainFrom(t, 20);
      expect(await auditOf(t).verifyChain()).toMatchObject({
        ok: false,
        first_bad_seq: 20,
        reason: expect.stringMatching(/was not written by idgate as it stands: its MAC does not match/),
      });
      await edited.restore();
      expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true, checked: 30, checkpoints_verified: 1 });

      // occurred_at is outside the MAC: moved by a second (within the tolerance), only the signature catches it.
      const moved = await rewriteChainTimeFrom(t, 20);
      expect(moved.caughtBy?.seq).toBe(30);
      expect(await auditOf(t).verifyChain()).toMatchObject({
        ok: false,
        first_bad_seq: 30,
        reason: expect.stringMatching(/differs from the signed checkpoint/),
      });
      await moved.restore();
      expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true, checked: 30 });
    });
  });

  describe('events idgate writes itself', () => {
    afterEach(() => t?.close(), HOOK_BUDGET_MS);

    /**
     * A transaction that takes its id with its first event, keeps writing for `holdMs`, then writes
     * its last event: every transaction that commits meanwhile is sealed after it (chain order is
     * (txid, id)), so their events sit behind a later time by up to `holdMs`.
     */
    async function longTransaction(holdMs: number, tag: string): Promise<string[]> {
      const audit = auditOf(t);
      return t.prisma.$transaction(
        async (tx) => {
          const first = await audit.record(tx, TEST_CONTEXT, {
            action: 'verification.completed',
            target: { type: 'verification', id: `${tag}-first` },
          });
          await sleep(holdMs);
          const last = await audit.record(tx, TEST_CONTEXT, {
            action: 'verification.completed',
            target: { type: 'verification', id: `${tag}-last` },
          });
          return [first, last];
        },
        { timeout: holdMs + 30_000 },
      );
    }

    it(
      'many writers at once, every writer of events, and a transaction open for most of the tolerance: all verify',
      async () => {
        // A 5 s tolerance (the default is 5 min) so that a 3 s transaction comes close to it.
        t = await startTestApp({ databasePoolSize: 16, audit: { orderToleranceMs: 5_000, sealIntervalMs: 10 } });
        const audit = auditOf(t);
        const compliance = await t.keyFor('compliance');
        const long = longTransaction(3_000, 'long');
        await sleep(200);
        const writers = Array.from({ length: 10 }, (_, w) => recordEvents(t, 20, `w${w}`));
        const standalone = Array.from({ length: 20 }, (_, i) =>
          audit.recordStandalone(TEST_CONTEXT, { action: 'auth.denied', outcome: 'denied', details: { i } }),
        );
        const bestEffort = Array.from({ length: 20 }, (_, i) =>
          audit.recordBestEffort(TEST_CONTEXT, { action: 'auth.failed', outcome: 'failure', details: { i } }),
        );
        // Short transactions committed all through the long one.
        const trickle = (async () => {
          for (let i = 0; i < 10; i++) {
            await recordEvents(t, 1, `trickle${i}`);
            await sleep(250);
          }
        })();
        await Promise.all([long, ...writers, ...standalone, ...bestEffort, trickle]);
        // The checkpoint signer's own event (audit.checkpoint_signed).
        await t.http.post('/v1/audit/checkpoints').set('Authorization', `Bearer ${compliance.key}`).expect(201);
        await audit.sealNow();

        const [counts] = await t.prisma.$queryRaw<{ events: bigint; without_mac: bigint; signer: bigint }[]>`
          SELECT count(*) AS events, count(*) FILTER (WHERE mac IS NULL) AS without_mac,
                 count(*) FILTER (WHERE action = 'audit.checkpoint_signed') AS signer
          FROM audit_events`;
        expect(Number(counts.events)).toBeGreaterThan(250);
        expect(counts.without_mac).toBe(0n);
        expect(counts.signer).toBe(1n);
        expect(await audit.verifyChain()).toMatchObject({ ok: true, checked: Number(counts.events) });

        // The long transaction did put later times ahead of earlier ones: the tolerance was needed.
        const [{ behind }] = await t.prisma.$queryRaw<{ behind: number }[]>`
          SELECT COALESCE(max(tail - occurred_at_ms), 0)::float8 AS behind FROM (
            SELECT extract(epoch FROM e.occurred_at) * 1000 AS occurred_at_ms,
                   max(extract(epoch FROM e.occurred_at) * 1000) OVER (ORDER BY c.seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS tail
            FROM audit_chain c JOIN audit_events e ON e.id = c.event_id) x`;
        expect(behind).toBeGreaterThan(1_500);
        expect(behind).toBeLessThan(5_000);
      },
      CLI_TEST_BUDGET_MS,
    );

    it('a transaction open longer than the tolerance is reported at the first event it pushed out of order', async () => {
      // Why the tolerance must exceed idgate's longest transaction (docs/audit.md): 1 s here, 4 s open.
      t = await startTestApp({ audit: { orderToleranceMs: 1_000, sealIntervalMs: NEVER_MS } });
      const long = longTransaction(4_000, 'long');
      await sleep(500);
      const [early] = await recordEvents(t, 1, 'early');
      const [, last] = await long;
      await auditOf(t).sealNow();
      const lastSeq = (await seqOf(last)).seq;
      const earlySeq = (await seqOf(early)).seq;
      expect(earlySeq).toBe(lastSeq + 1);
      const report = await auditOf(t).verifyChain();
      expect(report).toMatchObject({ ok: false, first_bad_seq: earlySeq });
      expect(report.reason).toMatch(
        new RegExp(
          `^event ${early} occurred at \\S+, [1-4](\\.\\d)? s before seq ${lastSeq} \\(\\S+\\) which was sealed ahead of it: more than the 1 s tolerance`,
        ),
      );
    });
  });
});
