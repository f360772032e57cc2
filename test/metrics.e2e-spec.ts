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
