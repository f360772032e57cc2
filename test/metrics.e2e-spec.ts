import { startTestApp, TestApp } from './support/test-app';
import { KNOWN, startWithSandbox, VerificationHarness } from './support/verification-app';

describe('GET /metrics', () => {
  let h: VerificationHarness;
  beforeAll(async () => {
    h = await startWithSandbox();
  });
  afterAll(() => h.close());

  it('exposes HTTP latency by route, upstream results, charges, circuit state and the backlog, without personal data', async () => {
    const client = (await h.t.keyFor('client')).key;
    const p = KNOWN[150];
    const made = await h.t.http
      .post('/v1/verifications')
      .set('Authorization', `Bearer ${client}`)
      .send({ name: p.name, id_card: p.id_card })
      .expect(201);
    await h.t.http
      .post('/v1/verifications')
      .set('Authorization', `Bearer ${client}`)
      .set('X-Sandbox-Fault', 'http500')
      .send({ name: KNOWN[151].name, id_card: KNOWN[151].id_card })
      .expect(201);
    await h.t.http.get(`/v1/verifications/${made.body.id}`).set('Authorization', `Bearer ${client}`).expect(200);

    const res = await h.t.http.get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.text;
    expect(text).toMatch(
      /idgate_http_request_duration_seconds_count\{method="POST",route="\/v1\/verifications",status="201"\} 2/,
    );
    // Route templates, never raw paths with ids.
    expect(text).toMatch(/route="\/v1\/verifications\/:id",status="200"/);
    expect(text).not.toContain(made.body.id);
    expect(text).toMatch(/idgate_upstream_calls_total\{[^}]*result="0"[^}]*\} 1/);
    expect(text).toMatch(/idgate_upstream_circuit_state \d/);
    expect(text).toMatch(
      /idgate_verifications_total\{channel="api",status="completed",result="0",charge_status="charged"\} 1/,
    );
    expect(text).toMatch(/idgate_charged_amount_minor_total\{currency="CNY"\} 50/);
    expect(text).toMatch(/idgate_verifications_backlog\{status="unknown"\} 1/);
    expect(text).toMatch(/idgate_verifications_backlog\{status="pending"\} 0/);
    expect(text).toMatch(/idgate_process_resident_memory_bytes/);
    for (const secret of [p.name, p.id_card, client]) expect(text).not.toContain(secret);
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  const TOKEN = 'metrics-token-0123456789abcdef';
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      http: { metricsToken: TOKEN, trustProxy: ['loopback'] },
      abuse: { authFailuresPerMinute: 3 },
    });
  });
  afterAll(() => t.close());

  const scrape = (ip: string, headers: Record<string, string> = {}) => {
    let req = t.http.get('/metrics').set('X-Forwarded-For', ip);
    for (const [name, value] of Object.entries(headers)) req = req.set(name, value);
    return req;
  };

  it('answers only to the token, as a bearer token', async () => {
    const ok = await scrape('203.0.113.1', { Authorization: `Bearer ${TOKEN}` }).expect(200);
    expect(ok.text).toContain('idgate_http_request_duration_seconds');
    await scrape('203.0.113.1', { Authorization: `bearer  ${TOKEN}` }).expect(200);

    const admin = (await t.keyFor('admin')).key;
    const refused: Array<[string, Record<string, string>]> = [
      ['none', {}],
      ['wrong', { Authorization: 'Bearer metrics-token-0123456789abcdeX' }],
      ['prefix', { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
      ['longer', { Authorization: `Bearer ${TOKEN}0` }],
      ['upper', { Authorization: `Bearer ${TOKEN.toUpperCase()}` }],
      ['basic', { Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }],
      ['x-api-key', { 'X-API-Key': TOKEN }],
      ['api key', { Authorization: `Bearer ${admin}` }],
    ];
    for (const [i, [name, headers]] of refused.entries()) {
      const res = await scrape(`203.0.113.${10 + i}`, headers);
      expect({ name, status: res.status }).toEqual({ name, status: 401 });
      expect(res.headers['www-authenticate']).toBe('Bearer realm="idgate-metrics"');
      expect(res.body).toMatchObject({ type: 'urn:idgate:problem:unauthorized' });
      expect(res.text).not.toContain('idgate_');
    }
    const rows = await t.prisma.auditEvent.findMany({ where: { action: 'auth.failed', targetId: 'GET /metrics' } });
    expect(rows.map((r) => (r.details as { reason: string }).reason).sort()).toEqual([
      ...Array(5).fill('invalid_metrics_token'),
      ...Array(3).fill('missing_metrics_token'), // none, Basic, X-API-Key: no bearer token sent
    ]);
    expect(JSON.stringify(rows.map((r) => r.details))).not.toContain(TOKEN.slice(0, 20));
  });

  it('guessing the token is limited like guessing a key', async () => {
    const ip = '203.0.113.50';
    for (let i = 0; i < 3; i++) await scrape(ip, { Authorization: `Bearer guess-${i}-0123456789` }).expect(401);
    await scrape(ip, { Authorization: 'Bearer guess-4-0123456789' }).expect(429);
    // The scraper, from its own address, is not affected.
    await scrape('203.0.113.51', { Authorization: `Bearer ${TOKEN}` }).expect(200);
  });
});
