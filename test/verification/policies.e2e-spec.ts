import { POLICY_CACHE_MS } from '../../src/verification/client-policy.service';
import { startTestApp } from '../support/test-app';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

describe('client policies: quotas and the reuse window', () => {
  let h: VerificationHarness;
  let admin: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    h = await startWithSandbox();
    admin = (await h.t.keyFor('admin')).key;
  });
  afterAll(() => h.close());

  async function clientWithPolicy(name: string, policy: Record<string, number | null>) {
    const { key, clientId } = await h.t.keyFor('client', name);
    const res = await h.t.http
      .put(`/v1/clients/${clientId}/policy`)
      .set(as(admin))
      .send({ daily_limit: null, monthly_spend_cap: null, reuse_window_seconds: null, ...policy })
      .expect(200);
    expect(res.body).toMatchObject(policy);
    return key;
  }

  it('a daily limit answers 429 problem+json before calling the upstream, and local checks do not count', async () => {
    const key = await clientWithPolicy('daily', { daily_limit: 2 });
    await h.t.http
      .post('/v1/verifications')
      .set(as(key))
      .send({ name: '张三', id_card: '110101199003071234' })
      .expect(201);
    for (const p of KNOWN.slice(60, 62)) {
      await h.t.http.post('/v1/verifications').set(as(key)).send({ name: p.name, id_card: p.id_card }).expect(201);
    }
    const before = h.sandbox.stats().calls;
    const refused = await h.t.http
      .post('/v1/verifications')
      .set(as(key))
      .send({ name: KNOWN[62].name, id_card: KNOWN[62].id_card })
      .expect(429);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(refused.body.type).toBe('urn:idgate:problem:rate-limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(h.sandbox.stats().calls).toBe(before);
  });

  it('the daily limit holds exactly under concurrency', async () => {
    const key = await clientWithPolicy('daily-race', { daily_limit: 5 });
    const results = await Promise.all(
      KNOWN.slice(70, 90).map((p) =>
        h.t.http.post('/v1/verifications').set(as(key)).send({ name: p.name, id_card: p.id_card }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(5);
    expect(results.filter((r) => r.status === 429)).toHaveLength(15);
  });

  it('a monthly spend cap counts charged and unknown calls', async () => {
    const key = await clientWithPolicy('spend', { monthly_spend_cap: 100 }); // two calls at 50
    await h.t.http
      .post('/v1/verifications')
      .set(as(key))
      .send({ name: KNOWN[90].name, id_card: KNOWN[90].id_card })
      .expect(201);
    await h.t.http
      .post('/v1/verifications')
      .set(as(key))
      .set('X-Sandbox-Fault', 'http500')
      .send({ name: KNOWN[91].name, id_card: KNOWN[91].id_card })
      .expect(201);
    const before = h.sandbox.stats().calls;
    await h.t.http
      .post('/v1/verifications')
      .set(as(key))
      .send({ name: KNOWN[92].name, id_card: KNOWN[92].id_card })
      .expect(429);
    expect(h.sandbox.stats().calls).toBe(before);
  });

  it('the reuse window returns the stored result, marked reused and not charged, without calling', async () => {
    const key = await clientWithPolicy('reuse', { reuse_window_seconds: 3600 });
    const p = KNOWN[95];
    const first = await h.t.http
      .post('/v1/verifications')
      .set(as(key))
      .send({ name: p.name, id_card: p.id_card })
      .expect(201);
    expect(first.body).toMatchObject({ result: '0', charged: true, reused: false });
    const before = h.sandbox.stats().calls;
    const second = await h.t.http
      .post('/v1/verifications')
      .set(as(key))
      .send({ name: p.name, id_card: p.id_card.toLowerCase() })
      .expect(201);
    expect(second.body).toMatchObject({ result: '0', charged: false, amount: 0, reused: true });
    expect(second.body.id).not.toBe(first.body.id);
    expect(h.sandbox.stats().calls).toBe(before);

    // Another client, or reuse switched off: a real call.
    const other = await clientWithPolicy('no-reuse', {});
    await h.t.http.post('/v1/verifications').set(as(other)).send({ name: p.name, id_card: p.id_card }).expect(201);
    expect(h.sandbox.stats().calls).toBe(before + 1);
  });

  it('the reuse window holds under concurrency: identical requests at once make one paid call', async () => {
    const key = await clientWithPolicy('reuse-race', { reuse_window_seconds: 3600 });
    const p = KNOWN[96];
    const before = h.sandbox.stats().calls;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        h.t.http
          .post('/v1/verifications')
          .set(as(key))
          .set('X-Sandbox-Fault', 'latency=300')
          .send({ name: p.name, id_card: p.id_card }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(h.sandbox.stats().calls - before).toBe(1);
    expect(results.filter((r) => r.body.charged === true)).toHaveLength(1);
    expect(results.filter((r) => r.body.reused === true && r.body.charged === false)).toHaveLength(19);
  });

  it('policy endpoints are admin-only and validate input', async () => {
    const { key, clientId } = await h.t.keyFor('client', 'policy-self');
    // A client that does not exist has no policy to read, as it has none to set.
    const missing = '01a00000-0000-7000-8000-000000000000';
    await h.t.http.get(`/v1/clients/${missing}/policy`).set(as(admin)).expect(404);
    await h.t.http
      .put(`/v1/clients/${missing}/policy`)
      .set(as(admin))
      .send({ daily_limit: 1, monthly_spend_cap: null, reuse_window_seconds: null })
      .expect(404);
    await h.t.http.get(`/v1/clients/${clientId}/policy`).set(as(key)).expect(403);
    const bad = await h.t.http
      .put(`/v1/clients/${clientId}/policy`)
      .set(as(admin))
      .send({ daily_limit: -1, monthly_spend_cap: null, reuse_window_seconds: null })
      .expect(400);
    expect(bad.body.errors[0].field).toBe('daily_limit');
    await h.t.http
      .put('/v1/clients/00000000-0000-7000-8000-000000000000/policy')
      .set(as(admin))
      .send({ daily_limit: 1, monthly_spend_cap: null, reuse_window_seconds: null })
      .expect(404);
  });
  it('a limit set on one instance applies there at once, and on another instance within POLICY_CACHE_MS', async () => {
    // A second instance on the same database and sandbox (what a deployment behind a load balancer runs).
    const other = await startTestApp({ upstream: { timeoutMs: 1500, baseUrl: h.sandbox.url } }, h.t.db);
    try {
      const { key, clientId } = await h.t.keyFor('client', 'cached-policy');
      const verify = (app: typeof other, i: number) =>
        app.http
          .post('/v1/verifications')
          .set(as(key))
          .send({ name: KNOWN[70 + i].name, id_card: KNOWN[70 + i].id_card });
      // Both instances now hold "no limits" for this client.
      await verify(h.t, 0).expect(201);
      await verify(other, 1).expect(201);
      const setAt = Date.now();
      await h.t.http
        .put(`/v1/clients/${clientId}/policy`)
        .set(as(admin))
        .send({ daily_limit: 2, monthly_spend_cap: null, reuse_window_seconds: null })
        .expect(200);
      await verify(h.t, 2).expect(429);
      // The other instance may still use its earlier read, never longer than POLICY_CACHE_MS.
      const wait = setAt + POLICY_CACHE_MS + 50 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await verify(other, 3).expect(429);
    } finally {
      await other.close();
    }
  });
});
