import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

/**
 * Every sandbox fault, end to end through POST /v1/verifications: the record's
 * final state and charge, the number of upstream calls, and that nothing is lost.
 */
describe('verification under upstream faults', () => {
  let h: VerificationHarness;
  let client: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const ids: string[] = [];

  beforeAll(async () => {
    // Breaker threshold high: these faults are deliberate and must not short-circuit each other.
    h = await startWithSandbox({ upstream: { timeoutMs: 600, breakerThreshold: 1000 } });
    client = (await h.t.keyFor('client')).key;
  });
  afterAll(() => h.close());

  const cases: Array<[string, number, Record<string, unknown>, number]> = [
    ['latency=50', 201, { status: 'completed', result: '0', charged: true }, 1],
    ['timeout', 201, { status: 'unknown', result: null, charged: null, charge_status: 'unknown', amount: null }, 1],
    ['reset', 201, { status: 'unknown', charged: null }, 1],
    ['http500', 201, { status: 'unknown', charged: null }, 1],
    ['garbage', 201, { status: 'unknown', charged: null }, 1],
    ['unknown_result', 201, { status: 'unknown', charged: null }, 1],
    ['daily_limit', 201, { status: 'completed', result: '-7', charged: false }, 1],
    // Retried within the bound (3 attempts), since a -4/-6/429 cannot have been charged.
    ['db_error', 201, { status: 'completed', result: '-4', charged: false }, 3],
    ['upgrading', 201, { status: 'completed', result: '-6', charged: false }, 3],
  ];

  it.each(cases)(
    'X-Sandbox-Fault: %s → HTTP %i, %j, %i upstream call(s)',
    async (fault, httpStatus, expected, calls) => {
      const before = h.sandbox.stats().calls;
      const person = KNOWN[20 + ids.length];
      const res = await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .set('X-Sandbox-Fault', fault)
        .send({ name: person.name, id_card: person.id_card, reference: `fault-${fault}` });
      expect(res.status).toBe(httpStatus);
      expect(res.body).toMatchObject(expected);
      ids.push(res.body.id);
      // A `timeout` call is held open by the sandbox: it was received exactly once and never retried.
      expect(h.sandbox.stats().calls - before).toBe(calls);
      const stored = await h.t.http.get(`/v1/verifications/${res.body.id}`).set(as(client)).expect(200);
      expect(stored.body).toMatchObject(expected);
    },
  );

  it('http429 is retried within the bound, then recorded as failed, not charged, with 503 + Retry-After', async () => {
    const before = h.sandbox.stats().calls;
    const person = KNOWN[40];
    const res = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('X-Sandbox-Fault', 'http429')
      .send({ name: person.name, id_card: person.id_card, reference: 'fault-http429' })
      .expect(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.body).toMatchObject({
      type: 'urn:idgate:problem:service-unavailable',
      verification_id: expect.any(String),
    });
    expect(h.sandbox.stats().calls - before).toBe(3);
    const stored = await h.t.http.get(`/v1/verifications/${res.body.verification_id}`).set(as(client)).expect(200);
    expect(stored.body).toMatchObject({ status: 'failed', charged: false, charge_status: 'not_charged', amount: 0 });
    ids.push(res.body.verification_id);
  });

  it('a call that succeeds after a safe retry is charged once', async () => {
    h.sandbox.queueFaults('db_error', 'http429');
    const before = h.sandbox.stats();
    const person = KNOWN[41];
    const res = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: person.name, id_card: person.id_card })
      .expect(201);
    expect(res.body).toMatchObject({ status: 'completed', result: '0', charged: true });
    const after = h.sandbox.stats();
    expect(after.calls - before.calls).toBe(3);
    expect(after.charged - before.charged).toBe(1);
    ids.push(res.body.id);
  });

  it('every verification is in the list, none left pending, and each transition was audited', async () => {
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: Array<{ id: string; status: string }>; next_cursor: string | null } } =
        await h.t.http
          .get('/v1/verifications')
          .query({ limit: 100, ...(cursor ? { cursor } : {}) })
          .set(as(client))
          .expect(200);
      listed.push(...page.body.items.map((v) => v.id));
      expect(page.body.items.every((v) => v.status !== 'pending')).toBe(true);
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(listed.sort()).toEqual([...ids].sort());

    for (const id of ids) {
      const events = await h.t.prisma.auditEvent.findMany({ where: { targetId: id }, orderBy: { occurredAt: 'asc' } });
      expect(events[0].action).toBe('verification.created');
      expect(['verification.completed', 'verification.failed', 'verification.unknown']).toContain(events[1].action);
    }
  });
});
