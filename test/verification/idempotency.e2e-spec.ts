import pg from 'pg';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

describe('Idempotency-Key', () => {
  let h: VerificationHarness;
  let client: string;
  let otherClient: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    h = await startWithSandbox();
    client = (await h.t.keyFor('client', 'idem-a')).key;
    otherClient = (await h.t.keyFor('client', 'idem-b')).key;
  });
  afterAll(() => h.close());

  it('replays the first response (200, same body) without calling again; another body under the key is 422', async () => {
    const person = KNOWN[50];
    const body = { name: person.name, id_card: person.id_card, reference: 'idem-1' };
    const first = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'k-1')
      .send(body)
      .expect(201);
    const calls = h.sandbox.stats().calls;
    const again = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'k-1')
      .send({ reference: 'idem-1', id_card: person.id_card, name: person.name })
      .expect(200);
    expect(again.body).toEqual(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(h.sandbox.stats().calls).toBe(calls);

    const different = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'k-1')
      .send({ ...body, reference: 'idem-2' })
      .expect(422);
    expect(different.body.type).toBe('urn:idgate:problem:unprocessable');

    // Keys are per client: the same key from another client is a new request.
    await h.t.http.post('/v1/verifications').set(as(otherClient)).set('Idempotency-Key', 'k-1').send(body).expect(201);
    expect(await h.t.prisma.verification.count({ where: { reference: 'idem-1' } })).toBe(2);
  });

  it('replays a local rejection and an error response too', async () => {
    const bad = { name: '张三', id_card: '110101199003071234' };
    const first = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'k-local')
      .send(bad)
      .expect(201);
    const again = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'k-local')
      .send(bad)
      .expect(200);
    expect(again.body).toEqual(first.body);

    const person = KNOWN[51];
    const failed = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'k-429')
      .set('X-Sandbox-Fault', 'http429')
      .send({ name: person.name, id_card: person.id_card })
      .expect(503);
    const calls = h.sandbox.stats().calls;
    const replay = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'k-429')
      .send({ name: person.name, id_card: person.id_card })
      .expect(503);
    expect(replay.body.verification_id).toBe(failed.body.verification_id);
    expect(h.sandbox.stats().calls).toBe(calls);
  });

  it('50 concurrent identical requests with one key: one upstream call, one charge, identical answers or 409', async () => {
    const person = KNOWN[52];
    const body = { name: person.name, id_card: person.id_card, reference: 'storm' };
    const before = h.sandbox.stats();
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        h.t.http
          .post('/v1/verifications')
          .set(as(client))
          .set('Idempotency-Key', 'storm-key')
          .set('X-Sandbox-Fault', 'latency=200')
          .send(body),
      ),
    );
    const after = h.sandbox.stats();
    expect(after.calls - before.calls).toBe(1);
    expect(after.charged - before.charged).toBe(1);
    expect(await h.t.prisma.verification.count({ where: { reference: 'storm' } })).toBe(1);

    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.every((s) => [201, 200, 409].includes(s))).toBe(true);
    const created = responses.find((r) => r.status === 201)!;
    for (const r of responses.filter((x) => x.status === 200)) expect(r.body).toEqual(created.body);
    for (const r of responses.filter((x) => x.status === 409)) {
      expect(r.body.type).toBe('urn:idgate:problem:conflict');
      expect(r.headers['retry-after']).toBeDefined();
    }
    // Once the first has finished, the key replays.
    const later = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'storm-key')
      .send(body)
      .expect(200);
    expect(later.body).toEqual(created.body);
  });

  it('answers 409 while the first request is still in flight', async () => {
    const person = KNOWN[53];
    const body = { name: person.name, id_card: person.id_card };
    const slow = h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'slow')
      .set('X-Sandbox-Fault', 'latency=800')
      .send(body);
    const slowDone = slow.then((r) => r);
    // Wait until the first request is recorded (its key is claimed) before sending the second.
    for (
      let i = 0;
      i < 200 &&
      !(await h.t.prisma.idempotencyRecord.findFirst({ where: { key: 'slow', verificationId: { not: null } } }));
      i++
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const second = await h.t.http.post('/v1/verifications').set(as(client)).set('Idempotency-Key', 'slow').send(body);
    expect(second.status).toBe(409);
    expect((await slowDone).status).toBe(201);
  });

  it('refuses an over-long key, naming the header', async () => {
    const person = KNOWN[54];
    const res = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'k'.repeat(256))
      .send({ name: person.name, id_card: person.id_card })
      .expect(400);
    expect(res.body.errors[0].field).toBe('Idempotency-Key');
  });

  it('forgets keys after 24 hours', async () => {
    const person = KNOWN[55];
    const body = { name: person.name, id_card: person.id_card, reference: 'expiring' };
    await h.t.http.post('/v1/verifications').set(as(client)).set('Idempotency-Key', 'old-key').send(body).expect(201);
    await h.t.prisma.idempotencyRecord.updateMany({
      where: { key: 'old-key' },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    await h.t.http.post('/v1/verifications').set(as(client)).set('Idempotency-Key', 'old-key').send(body).expect(201);
    expect(await h.t.prisma.verification.count({ where: { reference: 'expiring' } })).toBe(2);
  });

  it('after a 202 (the answer still being written), a retry gets the verification as it stands at once, then the result', async () => {
    const slow = await startWithSandbox({ settleWaitMs: 300 });
    try {
      const key = (await slow.t.keyFor('client', 'idem-202')).key;
      const person = KNOWN[52];
      const body = { name: person.name, id_card: person.id_card, reference: 'idem-202' };
      // Hold the row the settle wants to write, from the moment it exists: the answer cannot land.
      const locker = new pg.Client({ connectionString: slow.t.db.adminUrl });
      await locker.connect();
      try {
        const first = slow.t.http
          .post('/v1/verifications')
          .set(as(key))
          .set('Idempotency-Key', 'k-202')
          .set('X-Sandbox-Fault', 'latency=400')
          .send(body)
          .then((r) => r);
        let id: string | undefined;
        for (let i = 0; i < 100 && !id; i++) {
          const rows = await locker.query<{ id: string }>(
            `SELECT id::text AS id FROM verifications WHERE reference = 'idem-202'`,
          );
          id = rows.rows[0]?.id;
          if (!id) await new Promise((r) => setTimeout(r, 20));
        }
        await locker.query('BEGIN');
        await locker.query('SELECT 1 FROM verifications WHERE id = $1 FOR UPDATE', [id]);
        const answer = await first;
        expect(answer.status).toBe(202);
        // The first request has ended: no 409, the verification as it stands, and no second call.
        const calls = slow.sandbox.stats().calls;
        const retry = await slow.t.http
          .post('/v1/verifications')
          .set(as(key))
          .set('Idempotency-Key', 'k-202')
          .send(body);
        expect(retry.status).toBe(202);
        expect(retry.body).toMatchObject({ id, status: 'pending' });
        await locker.query('COMMIT');
        let final = retry;
        for (let i = 0; i < 100 && final.status !== 200; i++) {
          await new Promise((r) => setTimeout(r, 50));
          final = await slow.t.http.post('/v1/verifications').set(as(key)).set('Idempotency-Key', 'k-202').send(body);
        }
        expect(final.status).toBe(200);
        expect(final.body).toMatchObject({ id, status: 'completed', charged: true });
        expect(slow.sandbox.stats().calls).toBe(calls);
      } finally {
        await locker.end();
      }
    } finally {
      await slow.close();
    }
  });
});
