import pg from 'pg';
import request from 'supertest';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

const QUEUE_WAIT_MS = 300;

/**
 * Admission control (issue 11): one submission at a time does its pre-call database
 * work here, one more may wait QUEUE_WAIT_MS, the rest are refused at once. A refused
 * submission gets 503 problem+json with Retry-After (the drop-in: the upstream's own
 * 429 too_many_requests) and leaves nothing behind: no verification, no claimed
 * Idempotency-Key, no upstream call.
 *
 * To hold the one admission slot deterministically, the test takes the advisory lock
 * that serialises the admissions of a client with quotas.
 */
describe('admission control before the paid call', () => {
  let h: VerificationHarness;
  let key: string;
  let clientId: string;
  let locker: pg.Client;
  const as = () => ({ Authorization: `Bearer ${key}` });
  const body = (i: number) => ({ name: KNOWN[i].name, id_card: KNOWN[i].id_card, reference: `adm-${i}` });
  const upstreamBody = (i: number) => ({ name: KNOWN[i].name, id_card: KNOWN[i].id_card });

  beforeAll(async () => {
    h = await startWithSandbox({ admission: { concurrency: 1, queue: 1, queueWaitMs: QUEUE_WAIT_MS } });
    const issued = await h.t.keyFor('client');
    key = issued.key;
    clientId = issued.clientId!;
    const admin = (await h.t.keyFor('admin')).key;
    await h.t.http
      .put(`/v1/clients/${clientId}/policy`)
      .set({ Authorization: `Bearer ${admin}` })
      .send({ daily_limit: 1000, monthly_spend_cap: null, reuse_window_seconds: null })
      .expect(200);
    locker = new pg.Client({ connectionString: h.t.db.url });
    await locker.connect();
  });
  afterAll(async () => {
    await locker?.end();
    await h?.close();
  });

  const holdAdmissionLock = () =>
    locker.query('SELECT pg_advisory_lock(hashtext($1))', [`idgate.admission.${clientId}`]);
  const releaseAdmissionLock = () => locker.query('SELECT pg_advisory_unlock_all()');
  afterEach(() => releaseAdmissionLock());

  async function blockedInFlight(): Promise<void> {
    // The held submission is inside its transaction, waiting for the lock.
    for (let i = 0; i < 200; i++) {
      const waiting = await locker.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`,
      );
      if (waiting.rows[0].n > 0) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('the first submission never reached its transaction');
  }

  it('refuses beyond the queue at once and a waiter after the queue wait, with 503 and Retry-After; nothing is written or called', async () => {
    const server = h.t.app.getHttpServer();
    const rowsBefore = await h.t.prisma.verification.count();
    const callsBefore = h.sandbox.stats().calls;
    await holdAdmissionLock();
    const held = request(server)
      .post('/v1/verifications')
      .set(as())
      .send(body(0))
      .then((r) => r);
    await blockedInFlight();
    const queued = request(server)
      .post('/v1/verifications')
      .set({ ...as(), 'Idempotency-Key': 'adm-queued' })
      .send(body(1))
      .then((r) => r);
    await new Promise((r) => setTimeout(r, 20));
    const overflow = await request(server)
      .post('/v1/verifications')
      .set({ ...as(), 'Idempotency-Key': 'adm-overflow' })
      .send(body(2));
    expect(overflow.status).toBe(503);
    expect(overflow.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(overflow.headers['retry-after']).toBe('1');
    expect(overflow.body).toMatchObject({ type: 'urn:idgate:problem:service-unavailable', retry_after_seconds: 1 });
    expect(overflow.body.detail).toMatch(/nothing was recorded or charged/);

    const timedOut = await queued;
    expect(timedOut.status).toBe(503);
    expect(timedOut.body.type).toBe('urn:idgate:problem:service-unavailable');

    await releaseAdmissionLock();
    expect((await held).status).toBe(201);
    expect(await h.t.prisma.verification.count()).toBe(rowsBefore + 1);
    expect(h.sandbox.stats().calls).toBe(callsBefore + 1);
    expect(
      await h.t.prisma.idempotencyRecord.count({ where: { clientId, key: { in: ['adm-queued', 'adm-overflow'] } } }),
    ).toBe(0);

    // Refused keys were never claimed: the same key now goes through.
    await request(server)
      .post('/v1/verifications')
      .set({ ...as(), 'Idempotency-Key': 'adm-overflow' })
      .send(body(2))
      .expect(201);
  });

  it('the drop-in refuses in the upstream own shape: 429 too_many_requests', async () => {
    const server = h.t.app.getHttpServer();
    const callsBefore = h.sandbox.stats().calls;
    await holdAdmissionLock();
    const held = request(server)
      .post('/identity/idcard/ocr')
      .set(as())
      .send(upstreamBody(3))
      .then((r) => r);
    await blockedInFlight();
    const queued = request(server)
      .post('/identity/idcard/ocr')
      .set(as())
      .send(upstreamBody(4))
      .then((r) => r);
    await new Promise((r) => setTimeout(r, 20));
    const overflow = await request(server).post('/identity/idcard/ocr').set(as()).send(upstreamBody(5));
    expect(overflow.status).toBe(429);
    expect(overflow.headers['retry-after']).toBe('1');
    expect(overflow.body).toEqual({
      success: false,
      error: { code: 'too_many_requests', message: expect.stringMatching(/at capacity/) },
      trace_id: expect.any(String),
    });
    expect((await queued).status).toBe(429);
    await releaseAdmissionLock();
    expect((await held).status).toBe(200);
    expect(h.sandbox.stats().calls).toBe(callsBefore + 1);
  });

  it('a recording transaction that cannot finish in time (Prisma P2028) is 503 before the call, not 500, and writes nothing', async () => {
    const server = h.t.app.getHttpServer();
    const rowsBefore = await h.t.prisma.verification.count();
    const callsBefore = h.sandbox.stats().calls;
    await holdAdmissionLock();
    // Prisma rolls back an interactive transaction after 5 s: hold the lock past it.
    const stuck = request(server)
      .post('/v1/verifications')
      .set({ ...as(), 'Idempotency-Key': 'adm-p2028' })
      .send(body(6))
      .then((r) => r);
    await blockedInFlight();
    await new Promise((r) => setTimeout(r, 5500));
    await releaseAdmissionLock();
    const res = await stuck;
    expect(res.status).toBe(503);
    expect(res.body.type).toBe('urn:idgate:problem:service-unavailable');
    expect(await h.t.prisma.verification.count()).toBe(rowsBefore);
    expect(await h.t.prisma.idempotencyRecord.count({ where: { clientId, key: 'adm-p2028' } })).toBe(0);
    expect(h.sandbox.stats().calls).toBe(callsBefore);
  });
});
