import { KEY_CACHE_MS } from '../src/auth/api-keys.service';
import { createTestDatabase, TestDatabase } from './support/databases';
import { startTestApp, TestApp } from './support/test-app';

/**
 * Key lookups are reused for KEY_CACHE_MS (authentication then costs the pool next to
 * nothing under load), so a revocation must still reach every instance within that
 * time: at once on the instance that revoked the key, within KEY_CACHE_MS on another.
 * Asserted by the clock the cache itself uses, never by racing it.
 */
describe('API key lookups cached for a second', () => {
  let db: TestDatabase;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    a = await startTestApp({}, db);
    b = await startTestApp({}, db);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  const me = (t: TestApp, key: string) => t.http.get('/v1/me').set('Authorization', `Bearer ${key}`);

  it('a key revoked on one instance is refused there at once, and on another within KEY_CACHE_MS', async () => {
    const admin = (await a.keyFor('admin')).key;
    const victim = await a.keyFor('finance');
    await me(a, victim.key).expect(200);
    await me(b, victim.key).expect(200);

    const revokedAt = Date.now();
    await b.http.delete(`/v1/api-keys/${victim.id}`).set('Authorization', `Bearer ${admin}`).expect(200);
    const onB = await me(b, victim.key).expect(401);
    expect(onB.body.detail).toMatch(/revoked/);

    // A may still hold its lookup from before the revocation, but never longer than KEY_CACHE_MS.
    const wait = revokedAt + KEY_CACHE_MS + 50 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const onA = await me(a, victim.key).expect(401);
    expect(onA.body.detail).toMatch(/revoked/);
  });

  it('concurrent requests with one key share one lookup and all pass; an unknown key is 401', async () => {
    const key = (await b.keyFor('compliance')).key;
    const answers = await Promise.all(Array.from({ length: 50 }, () => me(a, key)));
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(200));
    await me(a, 'idg_test_' + 'x'.repeat(48)).expect(401);
  });
});
