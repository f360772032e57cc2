import net from 'node:net';
import { createTestDatabase, TestDatabase } from './support/databases';
import { startTestApp, TestApp } from './support/test-app';

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('rate limits per API key', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ rateLimit: { perMinute: 3 } });
  });
  afterAll(() => t.close());

  it('sends RateLimit headers and answers 429 problem+json with Retry-After past the limit, per key', async () => {
    const a = (await t.keyFor('admin')).key;
    const b = (await t.keyFor('admin')).key;
    const first = await t.http.get('/v1/clients').set('Authorization', `Bearer ${a}`).expect(200);
    expect(first.headers['ratelimit-policy']).toBe('3;w=60');
    expect(first.headers['ratelimit']).toMatch(/^limit=3, remaining=2, reset=\d+$/);
    await t.http.get('/v1/clients').set('Authorization', `Bearer ${a}`).expect(200);
    await t.http.get('/v1/clients').set('Authorization', `Bearer ${a}`).expect(200);
    const limited = await t.http.get('/v1/clients').set('Authorization', `Bearer ${a}`).expect(429);
    expect(limited.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(limited.body.type).toBe('urn:idgate:problem:rate-limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers['ratelimit']).toMatch(/remaining=0/);
    // Another key has its own budget; public endpoints are not counted.
    await t.http.get('/v1/clients').set('Authorization', `Bearer ${b}`).expect(200);
    await t.http.get('/health/live').expect(200);
  });
});

describe('rate limits shared through Redis', () => {
  let db: TestDatabase;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db.drop();
  });

  it('holds across two instances when Redis is up, and per instance when it is down', async () => {
    const redisUp = await reachable(6379);
    // Counters are keyed by API key id, new in every run, so earlier runs on the same Redis do not interfere.
    const redisUrl = redisUp ? 'redis://127.0.0.1:6379' : 'redis://127.0.0.1:1';
    const one = await startTestApp({ rateLimit: { perMinute: 4, redisUrl } }, db);
    apps.push(one);
    const two = await startTestApp({ rateLimit: { perMinute: 4, redisUrl } }, db);
    apps.push(two);
    const key = (await one.keyFor('admin')).key;
    const statuses: number[] = [];
    for (const app of [one, two, one, two, one, two]) {
      statuses.push((await app.http.get('/v1/clients').set('Authorization', `Bearer ${key}`)).status);
    }
    if (redisUp) {
      // One budget of 4 for both instances.
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    } else {
      // Redis unreachable: each instance still limits on its own (3 requests each, under 4).
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
      const more = await one.http.get('/v1/clients').set('Authorization', `Bearer ${key}`);
      expect(more.status).toBe(200);
      expect((await one.http.get('/v1/clients').set('Authorization', `Bearer ${key}`)).status).toBe(429);
    }
  });
});
