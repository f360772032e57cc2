import pg from 'pg';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { ApiKeysService } from '../../src/auth/api-keys.service';
import { startTestApp, TestApp } from '../support/test-app';

/**
 * A database superuser can write any row. API key rows carry a MAC under a key the
 * database never sees, so a key row inserted or changed by hand (a compliance key for a
 * secret of the attacker's choosing; a finance key turned compliance) is refused, with a
 * security alert, and cannot read personal data.
 */
describe('API key rows written by someone with database access', () => {
  let t: TestApp;
  let admin: pg.Client;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    t = await startTestApp();
    admin = new pg.Client({ connectionString: t.db.adminUrl });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await t?.close();
  });

  const tamperAlerts = async () =>
    (await t.prisma.auditEvent.findMany({ where: { action: 'security.alert' } })).filter(
      (e) => (e.details as { reason?: string }).reason === 'api_key_tampered',
    ).length;

  it('a key row inserted by hand is not a key: 401, and an alert', async () => {
    const forged = generateApiKey('test');
    for (const mac of [null, 'a'.repeat(64)]) {
      const { rows } = await admin.query<{ id: string }>(
        `INSERT INTO api_keys (id, prefix, key_hash, role, name, mac)
         VALUES (gen_random_uuid(), $1, $2, 'compliance', 'forged', $3) RETURNING id::text AS id`,
        [forged.prefix + (mac ? 'm' : 'n'), forged.hash, mac],
      );
      const res = await t.http.get('/v1/verifications').set(as(forged.key));
      expect(res.status).toBe(401);
      await admin.query('DELETE FROM api_keys WHERE id = $1', [rows[0].id]);
    }
    expect(await tamperAlerts()).toBeGreaterThanOrEqual(1);
  });

  it('a real key changed by hand (finance made compliance, or moved to another client) stops working', async () => {
    const finance = await t.keyFor('finance');
    await t.http.get('/v1/verifications').set(as(finance.key)).expect(200);
    await admin.query(`UPDATE api_keys SET role = 'compliance' WHERE id = $1`, [finance.id]);
    await new Promise((r) => setTimeout(r, 1100)); // past the one-second lookup cache
    await t.http.get('/v1/verifications').set(as(finance.key)).expect(401);

    const client = await t.keyFor('client', 'mac-a');
    const other = await t.keyFor('client', 'mac-b');
    await admin.query(`UPDATE api_keys SET client_id = $1 WHERE id = $2`, [other.clientId, client.id]);
    await new Promise((r) => setTimeout(r, 1100));
    await t.http.get('/v1/verifications').set(as(client.key)).expect(401);
  });

  it('a revoked key whose revocation is undone in the database stays refused, with an alert', async () => {
    const adminKey = (await t.keyFor('admin')).key;
    for (const role of ['finance', 'compliance'] as const) {
      const victim = await t.keyFor(role);
      await t.http.get('/v1/verifications').set(as(victim.key)).expect(200);
      await t.http.delete(`/v1/api-keys/${victim.id}`).set(as(adminKey)).expect(200);
      await t.http.get('/v1/verifications').set(as(victim.key)).expect(401);

      await admin.query('UPDATE api_keys SET revoked_at = NULL WHERE id = $1', [victim.id]);
      await new Promise((r) => setTimeout(r, 1100)); // past the one-second lookup cache
      await t.http.get('/v1/verifications').set(as(victim.key)).expect(401);
    }
    // The alert is written beside the refusal, not before it: wait for both keys' alerts.
    const undone = async () =>
      (await t.prisma.auditEvent.findMany({ where: { action: 'security.alert' } })).filter(
        (e) => (e.details as { reason?: string }).reason === 'api_key_revocation_undone',
      ).length;
    for (let i = 0; i < 100 && (await undone()) < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await undone()).toBe(2);
    // A key never revoked is untouched by the check.
    const fresh = await t.keyFor('finance');
    await t.http.get('/v1/verifications').set(as(fresh.key)).expect(200);
  });

  it('keys from before rows carried a MAC get one once; a row written without one afterwards stays refused', async () => {
    // A key as an older idgate made it: no MAC, and no backfill has run on this database.
    const legacy = generateApiKey('test');
    await admin.query(
      `INSERT INTO api_keys (id, prefix, key_hash, role, name) VALUES (gen_random_uuid(), $1, $2, 'finance', 'legacy')`,
      [legacy.prefix, legacy.hash],
    );
    await t.http.get('/v1/verifications').set(as(legacy.key)).expect(401);
    const keys = t.app.get(ApiKeysService);
    expect(await keys.backfillMacsOnce()).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 1100));
    await t.http.get('/v1/verifications').set(as(legacy.key)).expect(200);
    expect(await t.prisma.auditEvent.count({ where: { action: 'api_key.macs_backfilled' } })).toBe(1);

    const late = generateApiKey('test');
    await admin.query(
      `INSERT INTO api_keys (id, prefix, key_hash, role, name) VALUES (gen_random_uuid(), $1, $2, 'compliance', 'late')`,
      [late.prefix, late.hash],
    );
    expect(await keys.backfillMacsOnce()).toBe(0);
    await t.http.get('/v1/verifications').set(as(late.key)).expect(401);
  });
});
