import { FAULT_NAMES, FaultRates } from '../../src/upstream/sandbox/faults';
import { sweepDeadlineMs } from '../../src/verification/verification-rules';
import { startWithSandbox, VerificationHarness } from '../support/verification-app';
import { auditOf, bodyOfKind, listen, sweeperOf } from './support/apps';
import { bearer, inParallel, listAllVerifications, Reply, send } from './support/http';

const REQUESTS = 480;
const CONCURRENCY = 24;
/** Every tenth request carries an Idempotency-Key shared with the next two of its group. */
const KEYED_EVERY = 10;

/** Every sandbox fault at once, each at its own rate (39 % of calls faulted in all). */
const RATES: FaultRates = {
  latency: 5,
  timeout: 0.03,
  reset: 0.04,
  http500: 0.04,
  http429: 0.04,
  garbage: 0.04,
  daily_limit: 0.04,
  db_error: 0.04,
  upgrading: 0.04,
  unknown_result: 0.04,
  wrong_types: 0.04,
};

interface Sent {
  index: number;
  key?: string;
  reply: Reply;
}

/**
 * (a) The fault matrix: a concurrent load through POST /v1/verifications while the
 * sandbox injects every fault it knows at a rate. Afterwards every request is
 * accounted for, nothing is left pending after the sweeper, every upstream call is
 * on a verification, and the vendor's statement matches our charged/unknown records.
 */
describe('reliability: fault matrix under concurrent load', () => {
  let h: VerificationHarness;
  let url: string;
  let client: string;
  let compliance: string;
  const sent: Sent[] = [];

  beforeAll(async () => {
    // Every fault has a rate, FAULT_NAMES included: a fault added later must be added here.
    expect(
      Object.keys(RATES)
        .filter((k) => k !== 'latency')
        .sort(),
    ).toEqual([...FAULT_NAMES].sort());
    h = await startWithSandbox(
      // A short timeout keeps `timeout` faults brief; the breaker must not hide the faults from each other.
      { databasePoolSize: 12, upstream: { timeoutMs: 400, breakerThreshold: 1000 } },
      { faults: RATES, seed: 20261125, chargeFaultedCalls: true },
    );
    url = await listen(h.t);
    client = (await h.t.keyFor('client')).key;
    compliance = (await h.t.keyFor('compliance')).key;

    const plan = Array.from({ length: REQUESTS }, (_, i) => {
      const group = Math.floor(i / 3);
      // Requests i, i+1, i+2 of a keyed group share a key and a body (sent concurrently).
      const keyed = group % KEYED_EVERY === 0;
      const bodyIndex = keyed ? group * 3 : i;
      return { index: i, key: keyed ? `matrix-${group}` : undefined, body: bodyOfKind(bodyIndex, `m-${bodyIndex}`) };
    });
    const replies = await inParallel(plan, CONCURRENCY, async (p) => {
      const headers: Record<string, string> = { ...bearer(client) };
      if (p.key) headers['idempotency-key'] = p.key;
      return send(url, 'POST', '/v1/verifications', { headers, body: p.body });
    });
    plan.forEach((p, i) => sent.push({ index: p.index, key: p.key, reply: replies[i] }));
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The verification a reply names: its id (201/200) or the problem's verification_id (502/503). */
  const recordedId = (r: Reply): string | undefined => {
    const body = r.json as { id?: string; verification_id?: string } | undefined;
    return r.status < 300 ? body?.id : body?.verification_id;
  };

  it('answers every request with a verification or a problem that names it (never a 500)', () => {
    expect(sent).toHaveLength(REQUESTS);
    const byStatus: Record<number, number> = {};
    for (const { reply, key } of sent) {
      byStatus[reply.status] = (byStatus[reply.status] ?? 0) + 1;
      if (reply.status >= 400) {
        expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
      if (reply.status === 409) {
        // Only a concurrent duplicate under an Idempotency-Key may be turned away, and it recorded nothing.
        expect(key).toBeDefined();
        expect(recordedId(reply)).toBeUndefined();
        continue;
      }
      expect([200, 201, 502, 503]).toContain(reply.status);
      expect(recordedId(reply)).toEqual(expect.any(String));
    }
    expect(byStatus[201]).toBeGreaterThan(REQUESTS / 2);
    // The faults really happened, every one of them.
    const calls = h.sandbox.stats().by_result;
    for (const fault of [
      'timeout',
      'reset',
      'http_500',
      'http_429',
      'garbage',
      'unknown_result',
      'wrong_types',
      '-4',
      '-6',
      '-7',
    ]) {
      expect({ fault, seen: (calls[fault] ?? 0) > 0 }).toEqual({ fault, seen: true });
    }
  });

  it('every request is accounted for in GET /v1/verifications, once', async () => {
    const listed = await listAllVerifications(url, client);
    const listedIds = new Set(listed.map((v) => v.id));
    expect(listedIds.size).toBe(listed.length);

    const unkeyed = sent.filter((s) => !s.key).map((s) => recordedId(s.reply)!);
    // Each request without a key is its own verification.
    expect(new Set(unkeyed).size).toBe(unkeyed.length);
    const byKey = new Map<string, Set<string>>();
    for (const s of sent.filter((x) => x.key)) {
      const id = recordedId(s.reply);
      if (id === undefined) continue;
      byKey.set(s.key!, (byKey.get(s.key!) ?? new Set()).add(id));
    }
    // Each key is one verification, whatever its duplicates were told.
    for (const [key, ids] of byKey) expect({ key, ids: ids.size }).toEqual({ key, ids: 1 });
    const keyedGroups = new Set(sent.filter((x) => x.key).map((x) => x.key)).size;
    expect(byKey.size).toBe(keyedGroups);

    const expected = new Set([...unkeyed, ...[...byKey.values()].flatMap((s) => [...s])]);
    expect([...listedIds].sort()).toEqual([...expected].sort());

    // A retry under each key, after the storm: the stored answer again, and no new upstream call.
    const callsBefore = h.sandbox.stats().calls;
    for (const [key, ids] of byKey) {
      const first = sent.find((s) => s.key === key && recordedId(s.reply) !== undefined)!;
      const body = bodyOfKind(Number(key.split('-')[1]) * 3, `m-${Number(key.split('-')[1]) * 3}`);
      const again = await send(url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': key },
        body,
      });
      expect({ key, status: again.status, id: recordedId(again) }).toEqual({
        key,
        status: first.reply.status === 201 ? 200 : first.reply.status,
        id: [...ids][0],
      });
      expect(again.headers['idempotent-replayed']).toBe('true');
    }
    expect(h.sandbox.stats().calls).toBe(callsBefore);

    // Compliance sees the same set (and nothing else was recorded by anyone).
    const all = await listAllVerifications(url, compliance);
    expect(all.map((v) => v.id).sort()).toEqual([...expected].sort());
  });

  it('leaves nothing pending after the sweeper, and every upstream call belongs to a verification', async () => {
    const deadline = sweepDeadlineMs(h.t.config.upstream);
    await sweeperOf(h.t).sweep(new Date(Date.now() + deadline + 1000));
    expect(await h.t.prisma.verification.count({ where: { status: 'pending' } })).toBe(0);
    const listed = await listAllVerifications(url, client);
    expect(listed.filter((v) => v.status === 'pending')).toEqual([]);

    // Each HTTP request the sandbox received was an attempt of one recorded verification.
    const attempts = await h.t.prisma.verification.aggregate({ _sum: { upstreamAttempts: true } });
    expect(attempts._sum.upstreamAttempts).toBe(h.sandbox.stats().calls);
  });

  it("every charged call on the vendor's statement is a verification recorded charged or unknown", async () => {
    const rows = await h.t.prisma.verification.findMany({
      select: { id: true, status: true, chargeStatus: true, upstreamTraceId: true, localCheck: true },
    });
    const byTrace = new Map(rows.filter((r) => r.upstreamTraceId).map((r) => [r.upstreamTraceId!, r]));
    const statement = h.sandbox.statement();
    expect(statement.length).toBe(h.sandbox.stats().charged);
    expect(statement.length).toBeGreaterThan(0);

    let unmatched = 0;
    for (const line of statement) {
      const row = byTrace.get(line.trace_id);
      if (!row) {
        unmatched++;
        continue;
      }
      expect({ trace: line.trace_id, charge: row.chargeStatus }).toEqual({
        trace: line.trace_id,
        charge: expect.stringMatching(/^(charged|unknown)$/),
      });
    }
    // A call whose answer never arrived (timeout, reset) left no trace id with us: each such
    // line must be covered by an `unknown` verification that has none.
    const unknownWithoutTrace = rows.filter((r) => r.chargeStatus === 'unknown' && !r.upstreamTraceId).length;
    expect(unmatched).toBeLessThanOrEqual(unknownWithoutTrace);
    expect(unknownWithoutTrace).toBeGreaterThan(0);

    // And the other way round: everything we recorded as charged is on the vendor's bill.
    const billed = new Set(statement.map((l) => l.trace_id));
    const chargedNotBilled = rows.filter((r) => r.chargeStatus === 'charged' && !billed.has(r.upstreamTraceId ?? ''));
    expect(chargedNotBilled).toEqual([]);
    // Nothing we call not charged is on it.
    const notChargedButBilled = rows.filter(
      (r) => r.chargeStatus === 'not_charged' && billed.has(r.upstreamTraceId ?? ''),
    );
    expect(notChargedButBilled).toEqual([]);
  });

  it('the audit chain over all of it verifies', async () => {
    const audit = auditOf(h.t);
    await audit.sealNow();
    const report = await audit.verifyChain();
    expect(report).toMatchObject({ ok: true });
    const events = await h.t.prisma.auditEvent.count();
    expect(report.checked).toBe(events);
  });
});
