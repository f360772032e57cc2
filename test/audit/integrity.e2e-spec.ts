import { performance } from 'node:perf_hooks';
import { AuditIntegrity } from '../../src/audit/audit-integrity.service';
import { GENESIS_HASH } from '../../src/audit/canonical';
import { startTestApp, TestApp } from '../support/test-app';
import { asAttacker, auditOf, chainRow, rewriteChainFrom, sealAll, seedEventsWithMacs, TEST_CONTEXT } from './support';

/*
 * The integrity walk streams the chain with COPY in segments (src/audit/integrity/): what the
 * other audit suites check on short chains, here on a chain longer than one segment and one
 * query batch, and what streaming adds (the connection it opens, the event loop it shares).
 */

/** Seeding and sealing the fixture took 28 s alone and over 120 s on a 2-core machine shared with other suites. */
const HOOK_BUDGET_MS = 300_000;
const NEVER_MS = 86_400_000;
/** More than one query batch (5,000): the signer's long-segment path streams too. */
const EVENTS = 7_000;

describe('integrity walk over a long chain', () => {
  let t: TestApp;
  let integrity: AuditIntegrity;
  let head: number;

  beforeAll(async () => {
    t = await startTestApp({ audit: { sealIntervalMs: NEVER_MS, checkpointIntervalMs: NEVER_MS } });
    integrity = t.app.get(AuditIntegrity);
    // Segments of 1,000 seqs: the walk crosses several COPY statements.
    integrity.copySegment = 1000;
    await seedEventsWithMacs(t, EVENTS);
    await sealAll(t);
    head = await headSeq();
  }, HOOK_BUDGET_MS);
  afterAll(async () => {
    await t?.close();
  }, HOOK_BUDGET_MS);

  const headSeq = async () => {
    const [{ seq }] = await t.prisma.$queryRaw<{ seq: bigint }[]>`SELECT max(seq) AS seq FROM audit_chain`;
    return Number(seq);
  };
  const integrityConnections = async () => {
    const [{ n }] = await t.prisma.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM pg_stat_activity
      WHERE application_name = 'idgate-integrity' AND datname = current_database()`;
    return Number(n);
  };

  it('verifies the whole chain and any range of it, across segment boundaries', async () => {
    expect(head).toBeGreaterThanOrEqual(EVENTS);
    expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true, status: 'intact', checked: head });
    expect(await auditOf(t).verifyChain({ fromSeq: 2500, toSeq: 6777 })).toMatchObject({ ok: true, checked: 4278 });
    expect(await auditOf(t).verifyChain({ fromSeq: 1001, toSeq: 2000 })).toMatchObject({ ok: true, checked: 1000 });
    // The signer's segments: streamed when long, read in its transaction when short.
    await t.prisma.$transaction(async (tx) => {
      expect(await integrity.verifySegment(tx, 1, head, GENESIS_HASH)).toBeNull();
      const before = await chainRow(t.db.adminUrl, head - 101);
      expect(await integrity.verifySegment(tx, head - 100, head, before.hash)).toBeNull();
    });
    expect(await integrityConnections()).toBe(0);
  });

  it('hashes details of every shape as the sealer did (COPY output read back)', async () => {
    const details = [
      { quote: 'a"b', backslash: 'c\\d', tab: 'e\tf', newline: 'g\nh', cr: '\r', controls: '\u0001\u001f' },
      { cjk: '张伟', emoji: '😀', accents: 'éÅ', nbsp: '\u00a0', bom: '\ufeff', escapes: '\\N\\t\\\\' },
      { numbers: [0, -1, 0.1, 1e21, 1.5e-7, 2 ** 53, -3.25], flags: [true, false, null], empty: {}, none: [] },
      { Z: 1, a: 2, é: 3, '😀': 4, '\uffff': 5, aa: { zz: [{ b: 1, a: 2 }], '': 'empty key' } },
    ];
    await t.prisma.$transaction(async (tx) => {
      for (const [i, d] of details.entries()) {
        await auditOf(t).record(tx, TEST_CONTEXT, {
          action: 'verification.completed',
          target: { type: 'verification', id: `shape-${i}` },
          details: d,
        });
      }
    });
    await auditOf(t).sealNow();
    head = await headSeq();
    expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true, checked: head });
  });

  it('reports an edit in the middle at its seq, and closes the COPY it stopped reading', async () => {
    const victim = 4001;
    const link = await chainRow(t.db.adminUrl, victim);
    const [{ outcome }] = await t.prisma.$queryRaw<{ outcome: string }[]>`
      SELECT outcome FROM audit_events WHERE id = ${link.event_id}::uuid`;
    await asAttacker(t.db.adminUrl, (c) =>
      c.query(`UPDATE audit_events SET outcome = 'tampered' WHERE id = $1`, [link.event_id]),
    );
    try {
      expect(await auditOf(t).verifyChain()).toMatchObject({
        ok: false,
        first_bad_seq: victim,
        reason: expect.stringMatching(/hash does not match the event/),
      });
      expect(await auditOf(t).verifyChain({ fromSeq: victim + 1 })).toMatchObject({ ok: true });
      // The walk stopped at the fault: the rest of that COPY was not read, and its connection is gone.
      const deadline = Date.now() + 10_000;
      while ((await integrityConnections()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await integrityConnections()).toBe(0);
    } finally {
      await asAttacker(t.db.adminUrl, (c) =>
        c.query(`UPDATE audit_events SET outcome = $2 WHERE id = $1`, [link.event_id, outcome]),
      );
    }
    expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true, checked: head });
  });

  it('catches a rewrite with every later hash recomputed at the edited seq (its MAC)', async () => {
    const rewrite = await rewriteChainFrom(t, 5000);
    try {
      expect(await auditOf(t).verifyChain()).toMatchObject({
        ok: false,
        first_bad_seq: 5000,
        reason: expect.stringMatching(/was not written by idgate as it stands/),
      });
    } finally {
      await rewrite.restore();
    }
    expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true, checked: head });
  });

  it('gives the event loop a turn while it walks', async () => {
    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 5);
    try {
      expect(await auditOf(t).verifyChain()).toMatchObject({ ok: true });
    } finally {
      clearInterval(timer);
    }
    // It yields every 20 ms of work; a loaded 2-core machine stretches that, but not to a stall.
    expect(longest).toBeLessThan(300);
  });
});
