import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { ReconciliationService } from '../../src/billing/reconciliation/reconciliation.service';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

const HEADER = 'trace_id,called_at,result,charged,amount\n';

/**
 * Reconciliation as a neighbour of everything else (found by an outside tester): waiting
 * for the cluster-wide matching lock must not hold pooled connections (three uploads on a
 * pool of three locked every other request out); a slow upload holds no connection while
 * it waits for bytes; a load that never reached matching does not stay behind.
 */
describe('reconciliation under load', () => {
  let h: VerificationHarness;
  let finance: string;
  let client: string;
  let base: string;
  let admin: pg.Client;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    h = await startWithSandbox({ databasePoolSize: 2 });
    finance = (await h.t.keyFor('finance')).key;
    client = (await h.t.keyFor('client')).key;
    await h.t.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(h.t.app.getHttpServer().address() as AddressInfo).port}`;
    admin = new pg.Client({ connectionString: h.t.db.adminUrl });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await h?.close();
  });

  const statement = (lines: number) =>
    HEADER +
    Array.from(
      { length: lines },
      (_, i) => `trace-${i},2026-11-30T10:00:${String(i % 60).padStart(2, '0')}.000Z,0,true,50`,
    ).join('\n') +
    '\n';

  it('while another statement holds the matching lock, uploads wait without starving the pool', async () => {
    // Another instance is matching: the cluster-wide lock is taken.
    await admin.query(`SELECT pg_advisory_lock(hashtext('idgate.billing.reconciliation'))`);
    const uploads = [1, 2].map(() =>
      h.t.http
        .post('/v1/billing/reconciliations')
        .set(as(finance))
        .set('Content-Type', 'text/csv')
        .send(statement(50))
        .then((r) => r),
    );
    // Both are loaded and waiting for their turn; the pool (2 connections) must still serve others.
    await new Promise((r) => setTimeout(r, 1500));
    await h.t.http.get('/health/ready').expect(200);
    for (const p of KNOWN.slice(0, 3)) {
      await h.t.http.post('/v1/verifications').set(as(client)).send({ name: p.name, id_card: p.id_card }).expect(201);
    }
    await h.t.http.get('/v1/verifications').set(as(client)).expect(200);

    await admin.query(`SELECT pg_advisory_unlock(hashtext('idgate.billing.reconciliation'))`);
    const done = await Promise.all(uploads);
    expect(done.map((r) => r.status)).toEqual([201, 201]);
    expect(done.every((r) => (r.body as { counts: Record<string, number> }).counts.missing_internal === 50)).toBe(true);
  });

  it('a slow upload holds no database connection while it waits for more bytes', async () => {
    const url = new URL('/v1/billing/reconciliations', base);
    const body = statement(10);
    const req = http.request(url, {
      method: 'POST',
      headers: { ...as(finance), 'content-type': 'text/csv', 'transfer-encoding': 'chunked' },
    });
    const answer = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    req.write(body.slice(0, 120));
    await new Promise((r) => setTimeout(r, 800));
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'idgate-reconciliation'`,
    );
    expect(rows[0].n).toBe(0);
    req.end(body.slice(120));
    expect(await answer).toBe(201);
  });

  it('a load that never reached matching (its process died) is removed, lines and all', async () => {
    const { rows } = await admin.query<{ id: string }>(
      `INSERT INTO reconciliations (id, created_by_key_id, file_sha256, file_bytes, line_count, period_source, currency,
         counts, amounts, settled, state, created_at)
       VALUES (gen_random_uuid(), gen_random_uuid(), repeat('0', 64), 0, 0, 'none', 'CNY', '{}', '{}', '{}', 'loading',
         now() - interval '3 hours')
       RETURNING id::text AS id`,
    );
    const id = rows[0].id;
    await admin.query(
      `INSERT INTO reconciliation_lines (reconciliation_id, line_no, trace_id, problem) VALUES ($1, 2, 'x', 'test')`,
      [id],
    );
    const removed = await h.t.app.get(ReconciliationService).discardAbandonedLoads();
    expect(removed).toBeGreaterThanOrEqual(1);
    const left = await admin.query(
      `SELECT (SELECT count(*) FROM reconciliations WHERE id = $1)::int AS r,
              (SELECT count(*) FROM reconciliation_lines WHERE reconciliation_id = $1)::int AS l`,
      [id],
    );
    expect(left.rows[0]).toEqual({ r: 0, l: 0 });
  });
});
