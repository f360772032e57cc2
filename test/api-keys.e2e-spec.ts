import pg from 'pg';
import { startTestApp, TestApp } from './support/test-app';

describe('API keys and clients (admin)', () => {
  let t: TestApp;
  let admin: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    t = await startTestApp();
    admin = (await t.keyFor('admin')).key;
  });
  afterAll(() => t.close());

  it('creates a client and a client key that works, shows the key once and stores only its hash', async () => {
    const client = await t.http.post('/v1/clients').set(as(admin)).send({ name: 'acme-checkout' }).expect(201);
    expect(client.body).toEqual({ id: expect.any(String), name: 'acme-checkout', created_at: expect.any(String) });

    const created = await t.http
      .post('/v1/api-keys')
      .set(as(admin))
      .send({ role: 'client', name: 'checkout prod', client_id: client.body.id })
      .expect(201);
    expect(created.body).toMatchObject({
      role: 'client',
      name: 'checkout prod',
      client_id: client.body.id,
      client: 'acme-checkout',
      revoked_at: null,
    });
    const key: string = created.body.key;
    expect(key).toMatch(/^idg_test_[A-Za-z0-9_-]{40}$/);
    expect(key.startsWith(created.body.prefix)).toBe(true);

    // The new key authenticates (as a client, which may not list keys).
    await t.http.get('/v1/api-keys').set(as(key)).expect(403);

    const listed = await t.http.get('/v1/api-keys').set(as(admin)).expect(200);
    const row = listed.body.items.find((k: { id: string }) => k.id === created.body.id);
    expect(row).toMatchObject({ prefix: created.body.prefix, role: 'client' });
    expect(row).not.toHaveProperty('key');
    expect(JSON.stringify(listed.body)).not.toContain(key);

    const db = new pg.Client({ connectionString: t.db.adminUrl });
    await db.connect();
    try {
      const dump = await db.query(`SELECT row_to_json(k)::text AS j FROM api_keys k`);
      const text = dump.rows.map((r) => r.j).join('\n');
      expect(text).not.toContain(key);
      expect(text).not.toContain(key.slice(created.body.prefix.length));
    } finally {
      await db.end();
    }
  });

  it('requires client_id for client keys and refuses it for staff keys, naming the field', async () => {
    const missing = await t.http.post('/v1/api-keys').set(as(admin)).send({ role: 'client', name: 'x' }).expect(400);
    expect(missing.body.errors).toEqual([{ field: 'client_id', message: 'is required for a key with role client' }]);

    const client = await t.http.post('/v1/clients').set(as(admin)).send({ name: 'other' }).expect(201);
    const extra = await t.http
      .post('/v1/api-keys')
      .set(as(admin))
      .send({ role: 'finance', name: 'x', client_id: client.body.id })
      .expect(400);
    expect(extra.body.errors[0].field).toBe('client_id');

    const ghost = await t.http
      .post('/v1/api-keys')
      .set(as(admin))
      .send({ role: 'client', name: 'x', client_id: '00000000-0000-7000-8000-000000000000' })
      .expect(400);
    expect(ghost.body.errors).toEqual([{ field: 'client_id', message: 'names no existing client' }]);

    const badRole = await t.http.post('/v1/api-keys').set(as(admin)).send({ role: 'root', name: 'x' }).expect(400);
    expect(badRole.body.errors[0].field).toBe('role');
  });

  it('revokes a key: it stops working at once, revoking twice is harmless, unknown ids are 404', async () => {
    const doomed = await t.http.post('/v1/api-keys').set(as(admin)).send({ role: 'finance', name: 'temp' }).expect(201);
    await t.http.get('/v1/clients').set(as(doomed.body.key)).expect(403); // authenticates, wrong role
    const revoked = await t.http.delete(`/v1/api-keys/${doomed.body.id}`).set(as(admin)).expect(200);
    expect(revoked.body.revoked_at).toEqual(expect.any(String));
    await t.http.get('/v1/clients').set(as(doomed.body.key)).expect(401);
    const again = await t.http.delete(`/v1/api-keys/${doomed.body.id}`).set(as(admin)).expect(200);
    expect(again.body.revoked_at).toBe(revoked.body.revoked_at);

    const unknown = await t.http.delete('/v1/api-keys/00000000-0000-7000-8000-000000000000').set(as(admin)).expect(404);
    expect(unknown.body.type).toBe('urn:idgate:problem:not-found');
    const bad = await t.http.delete('/v1/api-keys/not-a-uuid').set(as(admin)).expect(400);
    expect(bad.body.errors).toEqual([{ field: 'id', message: 'must be a UUID' }]);
  });

  it('refuses a duplicate client name with 409', async () => {
    await t.http.post('/v1/clients').set(as(admin)).send({ name: 'dup' }).expect(201);
    const res = await t.http.post('/v1/clients').set(as(admin)).send({ name: 'dup' }).expect(409);
    expect(res.body.type).toBe('urn:idgate:problem:conflict');
  });

  it('pages through clients with an opaque cursor, newest first, without repeats', async () => {
    for (let i = 0; i < 7; i++)
      await t.http
        .post('/v1/clients')
        .set(as(admin))
        .send({ name: `paged-${i}` })
        .expect(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { items: Array<{ name: string }>; next_cursor: string | null } } = await t.http
        .get('/v1/clients')
        .query({ limit: 3, ...(cursor ? { cursor } : {}) })
        .set(as(admin))
        .expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items.map((c: { name: string }) => c.name));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    const paged = seen.filter((n) => n.startsWith('paged-'));
    expect(paged).toEqual(['paged-6', 'paged-5', 'paged-4', 'paged-3', 'paged-2', 'paged-1', 'paged-0']);

    const badCursor = await t.http.get('/v1/clients').query({ cursor: 'bm9wZQ' }).set(as(admin)).expect(400);
    expect(badCursor.body.errors).toEqual([{ field: 'cursor', message: 'is not a cursor this endpoint issued' }]);
    const badLimit = await t.http.get('/v1/clients').query({ limit: 1000 }).set(as(admin)).expect(400);
    expect(badLimit.body.errors[0].field).toBe('limit');
  });
});
