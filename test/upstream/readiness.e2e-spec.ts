import { UpstreamClient } from '../../src/upstream/upstream.client';
import { startTestApp, TestApp } from '../support/test-app';
import { closedPort, KNOWN } from './support';

/*
 * The whole app: the upstream circuit shows in /health/ready, which stays 200 for it
 * (a vendor outage must not take every instance out of rotation).
 */
describe('upstream circuit in readiness', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      upstream: {
        baseUrl: `http://127.0.0.1:${await closedPort()}`,
        maxAttempts: 1,
        breakerThreshold: 1,
        breakerCooldownMs: 60_000,
      },
    });
  });
  afterAll(() => t.close());

  it('stays ready when the circuit opens, and reports the circuit in its body', async () => {
    const before = await t.http.get('/health/ready').expect(200);
    expect(before.body.upstream).toEqual({ status: 'up', circuit: 'closed', mode: 'sandbox' });
    const outcome = await t.app.get(UpstreamClient).verify(KNOWN);
    expect(outcome).toMatchObject({ kind: 'unsent', reason: 'connection_refused', attempts: 1 });

    const ready = await t.http.get('/health/ready').expect(200);
    expect(ready.body).toEqual({
      status: 'ok',
      checks: { database: { status: 'up' } },
      upstream: {
        status: 'degraded',
        circuit: 'open',
        mode: 'sandbox',
        detail: expect.stringMatching(/^circuit open: new verifications get 503 for about \d+ s/),
        retry_after_seconds: expect.any(Number),
      },
    });
    await t.http.get('/health/live').expect(200);
  });
});
