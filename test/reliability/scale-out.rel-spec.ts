import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { sweepDeadlineMs } from '../../src/verification/verification-rules';
import { createTestDatabase, TestDatabase } from '../support/databases';
import { startTestApp, TestApp } from '../support/test-app';
import { KNOWN } from '../support/verification-app';
import { auditOf, listen, rng, sharedSecrets, sweeperOf } from './support/apps';
import { bearer, inParallel, listAllVerifications, Reply, send } from './support/http';

const KEYS = 60;
/** Each key is sent this many times to each instance, all at once. */
const COPIES_PER_INSTANCE = 3;
const STALE_ROWS = 1200;

/**
 * Scale-out (issue 7 item 4): two idgate instances on one PostgreSQL and one
 * upstream, each with its own pool, sealer, sweeper and breaker, share nothing
 * but the database. Concurrent traffic with shared Idempotency-Keys costs one
 * upstream call and one charge per key; both sealers extend one intact chain;
 * both sweepers together sweep each stale row once.
 */
describe('reliability: two instances on one PostgreSQL', () => {
  let db: TestDatabase;
  let sandbox: SandboxHandle;
  let a: TestApp;
  let b: TestApp;
  let urls: string[];
  let client: string;
  let clientId: string;
  let keyId: string;
  const replies: Array<{ key: string; instance: number; reply: Reply }> = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    // Latency keeps the first call of each key in flight while its copies arrive on both instances.
    sandbox = await startSandbox({ port: 0, dailyLimits: false, faults: { latency: 150 } });
    const secrets = sharedSecrets();
    const overrides = {
      ...secrets,
      databasePoolSize: 10,
      upstream: { baseUrl: sandbox.url, timeoutMs: 3000, breakerThreshold: 1000 },
      audit: { ...secrets.audit, sealIntervalMs: 50 },
    };
    a = await startTestApp(overrides, db);
    b = await startTestApp(overrides, db);
    urls = [await listen(a), await listen(b)];
    const issued = await a.keyFor('client');
    client = issued.key;
    clientId = issued.clientId!;
    keyId = issued.id;

    const random = rng(7);
    const plan: Array<{ key: string; instance: number; body: Record<string, unknown> }> = [];
    for (let k = 0; k < KEYS; k++) {
      const person = KNOWN[k % KNOWN.length];
      const body = { name: person.name, id_card: person.id_card, reference: `scale-${k}` };
      for (let c = 0; c < COPIES_PER_INSTANCE; c++) {
        for (const instance of [0, 1]) plan.push({ key: `scale-${k}`, instance, body });
      }
    }
    // Shuffled, so copies of one key land on both instances at nearly the same moment.
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [plan[i], plan[j]] = [plan[j], plan[i]];
    }
    const answers = await inParallel(plan, 32, (p) =>
      send(urls[p.instance], 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': p.key },
        body: p.body,
      }),
    );
    plan.forEach((p, i) => replies.push({ key: p.key, instance: p.instance, reply: answers[i] }));
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await sandbox?.close();
    await db?.drop();
  });

  it('both instances served the traffic; duplicates got the first answer or 409, never a second verification', () => {
    for (const instance of [0, 1]) {
      expect(replies.filter((r) => r.instance === instance && r.reply.status === 201).length).toBeGreaterThan(0);
    }
    const idsByKey = new Map<string, Set<string>>();
    for (const { key, reply } of replies) {
      expect([200, 201, 409]).toContain(reply.status);
      if (reply.status === 409) {
        expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
        continue;
      }
      const id = (reply.json as { id: string }).id;
      idsByKey.set(key, (idsByKey.get(key) ?? new Set()).add(id));
    }
    expect(idsByKey.size).toBe(KEYS);
    for (const [key, ids] of idsByKey) expect({ key, verifications: ids.size }).toEqual({ key, verifications: 1 });
    // Exactly one 201 per key: the one request that made the call.
    const created = replies.filter((r) => r.reply.status === 201).map((r) => r.key);
    expect(created.sort()).toEqual([...new Set(replies.map((r) => r.key))].sort());
  });

  it('one upstream call and one charge per key, and one verification each in the database', async () => {
    const stats = sandbox.stats();
    expect(stats.calls).toBe(KEYS);
    expect(stats.charged).toBe(KEYS);
    expect(sandbox.statement()).toHaveLength(KEYS);
    const listed = await listAllVerifications(urls[1], client);
    expect(listed).toHaveLength(KEYS);
    expect(listed.every((v) => v.status === 'completed' && v.charged === true)).toBe(true);
    const billed = new Set(sandbox.statement().map((l) => l.trace_id));
    expect(listed.filter((v) => !billed.has(v.upstream_trace_id ?? ''))).toEqual([]);
  });

  it('a retry of every key on either instance replays the stored answer without calling again', async () => {
    const before = sandbox.stats().calls;
    const first = new Map(replies.filter((r) => r.reply.status === 201).map((r) => [r.key, r.reply.json]));
    await inParallel([...first.keys()], 16, async (key) => {
      const k = Number(key.split('-')[1]);
      const person = KNOWN[k % KNOWN.length];
      for (const url of urls) {
        const res = await send(url, 'POST', '/v1/verifications', {
          headers: { ...bearer(client), 'idempotency-key': key },
          body: { name: person.name, id_card: person.id_card, reference: key },
        });
        expect({ key, status: res.status, body: res.json }).toEqual({ key, status: 200, body: first.get(key) });
      }
    });
    expect(sandbox.stats().calls).toBe(before);
  });

  it('both sealers extend one chain, and it verifies from either instance', async () => {
    await Promise.all([auditOf(a).sealNow(), auditOf(b).sealNow()]);
    const events = await a.prisma.auditEvent.count();
    const [fromA, fromB] = await Promise.all([auditOf(a).verifyChain(), auditOf(b).verifyChain()]);
    expect(fromA).toMatchObject({ ok: true, checked: events });
    expect(fromB).toMatchObject({ ok: true, checked: events });
    // Every verification's creation and settlement is in it.
    const created = await a.prisma.auditEvent.count({ where: { action: 'verification.created' } });
    const completed = await a.prisma.auditEvent.count({ where: { action: 'verification.completed' } });
    expect({ created, completed }).toEqual({ created: KEYS, completed: KEYS });
  });

  it('stale pending rows swept by both instances at once: each once, with one audit event each', async () => {
    // Rows a dead process left behind: recorded as pending, never settled.
    await a.prisma.$executeRaw`
      INSERT INTO verifications (id, client_id, api_key_id, channel, mode, reference, status, charge_status,
                                 unit_price, currency)
      SELECT gen_random_uuid(), ${clientId}::uuid, ${keyId}::uuid, 'api', 'name_id_card', 'stale-' || n,
             'pending', 'unknown', 50, 'CNY'
      FROM generate_series(1, ${STALE_ROWS}::int) AS n`;
    const stale = await a.prisma.verification.findMany({ where: { status: 'pending' }, select: { id: true } });
    expect(stale).toHaveLength(STALE_ROWS);

    // The rows are fresh by the clock, so the sweepers' own timers leave them alone; these passes see them stale.
    const later = new Date(Date.now() + sweepDeadlineMs(a.config.upstream) + 1000);
    const swept = await Promise.all([
      sweeperOf(a).sweep(later),
      sweeperOf(b).sweep(later),
      sweeperOf(a).sweep(later),
      sweeperOf(b).sweep(later),
    ]);
    expect(swept.reduce((x, y) => x + y, 0)).toBe(STALE_ROWS);
    // However SKIP LOCKED split the work between the four passes, no row is left and none was swept twice.
    expect(await a.prisma.verification.count({ where: { status: 'pending' } })).toBe(0);
    expect(
      await a.prisma.verification.count({
        where: {
          id: { in: stale.map((r) => r.id) },
          status: 'unknown',
          chargeStatus: 'unknown',
          upstreamError: 'abandoned',
        },
      }),
    ).toBe(STALE_ROWS);

    const events = await a.prisma.auditEvent.groupBy({
      by: ['targetId'],
      where: { action: 'verification.unknown', targetId: { in: stale.map((r) => r.id) } },
      _count: { _all: true },
    });
    expect(events).toHaveLength(STALE_ROWS);
    expect(events.filter((e) => e._count._all !== 1)).toEqual([]);

    // And the chain, sealed by both, still verifies with the sweepers' events in it.
    await Promise.all([auditOf(a).sealNow(), auditOf(b).sealNow()]);
    const total = await a.prisma.auditEvent.count();
    expect(await auditOf(b).verifyChain()).toMatchObject({ ok: true, checked: total });
  });
});
