import { UpstreamClient } from '../../src/upstream/upstream.client';
import { startTestApp, TestApp } from '../support/test-app';
import { closedPort, KNOWN } from './support';

/* The whole app: the upstream circuit shows in /health/ready and in the metrics. */
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

  it('is ready while the circuit is closed, 503 with the reason once it opens', async () => {
    await t.http.get('/health/ready').expect(200);
    const outcome = await t.app.get(UpstreamClient).verify(KNOWN);
    expect(outcome).toMatchObject({ kind: 'unsent', reason: 'connection_refused', attempts: 1 });

    const ready = await t.http.get('/health/ready').expect(503);
    expect(ready.body).toEqual({
      status: 'unavailable',
      checks: {
        database: { status: 'up' },
        upstream: {
          status: 'down',
          detail: expect.stringMatching(/^circuit open: upstream calls refused for about \d+ s$/),
        },
      },
    });
    await t.http.get('/health/live').expect(200);
  });
});
