import pg from 'pg';
import { AuditService } from '../../src/audit/audit.service';
import { AuditDetailsError } from '../../src/audit/audit-details';
import { startTestApp, TestApp } from '../support/test-app';
import { auditOf, recordEvents, TEST_CONTEXT } from './support';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface EventBody {
  id: string;
  seq: number | null;
  actor: { type: string; id: string | null; role: string | null };
  action: string;
  target: { type: string | null; id: string | null };
  outcome: string;
  request_id: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  hash: string | null;
  prev_hash: string | null;
}

describe('audit trail', () => {
  let t: TestApp;
  let audit: AuditService;
  let compliance: string;
  let admin: { key: string; id: string };

  beforeAll(async () => {
    // No periodic signing (24 h): the on-demand checkpoint tests assert 201 and "the next seq", which
    // a background signature of the same head in between would turn into 200 or an older seq.
    t = await startTestApp({ audit: { checkpointIntervalMs: 86_400_000 } });
    audit = auditOf(t);
    compliance = (await t.keyFor('compliance')).key;
    admin = await t.keyFor('admin');
  }, 60_000);
  afterAll(() => t?.close(), 60_000);

  const events = async (query: Record<string, string | number>) => {
    const res = await t.http
      .get('/v1/audit/events')
      .query(query)
      .set('Authorization', `Bearer ${compliance}`)
      .expect(200);
    return res.body as { items: EventBody[]; next_cursor: string | null };
  };

  describe('recording', () => {
    it('writes the event in the caller’s transaction: a rolled-back change leaves no event', async () => {
      await expect(
        t.prisma.$transaction(async (tx) => {
          await audit.record(tx, TEST_CONTEXT, {
            action: 'pii.purged',
            target: { type: 'verification', id: 'rolled-back' },
          });
          throw new Error('the change failed');
        }),
      ).rejects.toThrow('the change failed');
      expect(await t.prisma.auditEvent.count({ where: { targetId: 'rolled-back' } })).toBe(0);

      await t.prisma.$transaction((tx) =>
        audit.record(tx, TEST_CONTEXT, { action: 'pii.purged', target: { type: 'verification', id: 'committed' } }),
      );
      expect(await t.prisma.auditEvent.count({ where: { targetId: 'committed' } })).toBe(1);
    });

    it('refuses PII in details, failing the business transaction with it', async () => {
      await expect(
        t.prisma.$transaction(async (tx) => {
          await tx.client.create({ data: { name: 'would-be-client' } });
          await audit.record(tx, TEST_CONTEXT, {
            action: 'client.created',
            details: { id_card: '360426199101010071' },
          });
        }),
      ).rejects.toBeInstanceOf(AuditDetailsError);
      expect(await t.prisma.client.count({ where: { name: 'would-be-client' } })).toBe(0);
    });

    it('the database refuses UPDATE, DELETE and TRUNCATE on every audit table', async () => {
      await recordEvents(t, 2, 'guarded');
      await audit.sealNow();
      await t.http.post('/v1/audit/checkpoints').set('Authorization', `Bearer ${compliance}`).expect(201);
      const client = new pg.Client({ connectionString: t.db.adminUrl }); // a superuser, with the triggers on
      await client.connect();
      try {
        const statements = [
          `UPDATE audit_events SET outcome = 'failure'`,
          `DELETE FROM audit_events WHERE target_id = 'guarded-0'`,
          `TRUNCATE audit_events CASCADE`,
          `UPDATE audit_chain SET hash = prev_hash`,
          `DELETE FROM audit_chain`,
          `TRUNCATE audit_chain`,
          `UPDATE audit_checkpoints SET signature = 'x'`,
          `DELETE FROM audit_checkpoints`,
          `TRUNCATE audit_checkpoints`,
        ];
        for (const sql of statements) {
          await expect(refusalOf(client, sql)).resolves.toMatch(/append-only/);
        }
      } finally {
        await client.end();
      }
      expect(await t.prisma.auditEvent.count({ where: { targetId: 'guarded-0' } })).toBe(1);
    });
  });

  describe('what is audited', () => {
    it('API key creation and revocation, and client creation, with actor, request id and ip; never the key', async () => {
      const client = await t.http
        .post('/v1/clients')
        .set('Authorization', `Bearer ${admin.key}`)
        .set('X-Request-Id', 'req-client-1')
        .send({ name: 'audited-client' })
        .expect(201);
      const created = await t.http
        .post('/v1/api-keys')
        .set('Authorization', `Bearer ${admin.key}`)
        .set('X-Request-Id', 'req-key-1')
        .send({ role: 'client', name: 'pos', client_id: client.body.id })
        .expect(201);
      await t.http
        .delete(`/v1/api-keys/${created.body.id}`)
        .set('Authorization', `Bearer ${admin.key}`)
        .set('X-Request-Id', 'req-key-2')
        .expect(200);

      const [clientEvent] = (await events({ action: 'client.created', target_id: client.body.id })).items;
      expect(clientEvent).toMatchObject({
        actor: { type: 'api_key', id: admin.id, role: 'admin' },
        target: { type: 'client', id: client.body.id },
        outcome: 'success',
        // idgate's own id; the caller's (not trusted as unique) is kept beside it.
        request_id: expect.stringMatching(UUID),
        ip: '127.0.0.1',
        details: { client_name: 'audited-client', caller_request_id: 'req-client-1' },
      });
      const keyEvents = (await events({ target_type: 'api_key', target_id: created.body.id })).items;
      expect(keyEvents.map((e) => [e.action, (e.details as { caller_request_id?: string }).caller_request_id])).toEqual(
        [
          ['api_key.revoked', 'req-key-2'],
          ['api_key.created', 'req-key-1'],
        ],
      );
      expect(keyEvents.every((e) => UUID.test(e.request_id ?? ''))).toBe(true);
      expect(keyEvents[1].details).toEqual({
        key_prefix: created.body.prefix,
        role: 'client',
        label: 'pos',
        client_id: client.body.id,
        caller_request_id: 'req-key-1',
      });
      expect(await rawAuditText()).not.toContain(created.body.key);
    });

    it('authentication failures (no key, unknown key, revoked key) and denials, with the key prefix only', async () => {
      const revoked = await t.keyFor('finance');
      await t.http.delete(`/v1/api-keys/${revoked.id}`).set('Authorization', `Bearer ${admin.key}`).expect(200);
      const unknown = `idg_test_${'Z'.repeat(40)}`;
      const finance = await t.keyFor('finance');

      await t.http.get('/v1/audit/events').set('X-Request-Id', 'req-nokey').expect(401);
      await t.http
        .get('/v1/audit/events')
        .set('Authorization', `Bearer ${unknown}`)
        .set('X-Request-Id', 'req-unknown')
        .expect(401);
      await t.http.get('/v1/audit/events').set('X-API-Key', revoked.key).set('X-Request-Id', 'req-revoked').expect(401);
      await t.http
        .get('/v1/audit/events')
        .set('Authorization', `Bearer ${finance.key}`)
        .set('X-Request-Id', 'req-denied')
        .expect(403);

      const failed = (await events({ action: 'auth.failed' })).items;
      const byRequest = (id: string) =>
        failed.find((e) => (e.details as { caller_request_id?: string }).caller_request_id === id);
      expect(byRequest('req-nokey')).toMatchObject({
        actor: { type: 'anonymous', id: null, role: null },
        outcome: 'failure',
        target: { type: 'endpoint', id: 'GET /v1/audit/events' },
        request_id: expect.stringMatching(UUID),
        details: { reason: 'missing_key', key_prefix: null, caller_request_id: 'req-nokey' },
        ip: '127.0.0.1',
      });
      expect(byRequest('req-unknown')?.details).toEqual({
        reason: 'unknown_key',
        key_prefix: 'idg_test_ZZZZZZZZ',
        caller_request_id: 'req-unknown',
      });
      expect(byRequest('req-revoked')?.details).toEqual({
        reason: 'revoked_key',
        key_prefix: revoked.key.slice(0, 17),
        caller_request_id: 'req-revoked',
      });

      const [denied] = (await events({ action: 'auth.denied', actor: finance.id })).items;
      expect(denied).toMatchObject({
        actor: { type: 'api_key', id: finance.id, role: 'finance' },
        outcome: 'denied',
        request_id: expect.stringMatching(UUID),
        details: {
          reason: 'role_not_allowed',
          allowed_roles: ['compliance'],
          key_prefix: finance.key.slice(0, 17),
          caller_request_id: 'req-denied',
        },
      });
      const text = await rawAuditText();
      for (const secret of [unknown, revoked.key, finance.key]) expect(text).not.toContain(secret);
    });
  });

  describe('GET /v1/audit/events', () => {
    it('is for compliance only', async () => {
      await t.http.get('/v1/audit/events').set('Authorization', `Bearer ${admin.key}`).expect(403);
      const client = await t.keyFor('client');
      await t.http.get('/v1/audit/events').set('Authorization', `Bearer ${client.key}`).expect(403);
    });

    it('filters by action, actor, target, outcome and time, newest first, in keyset pages', async () => {
      const ids = await recordEvents(t, 7, 'paged');
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await events({
          target_type: 'verification',
          action: 'verification.completed',
          actor: 'tester',
          limit: 3,
          ...(cursor ? { cursor } : {}),
        });
        expect(page.items.length).toBeLessThanOrEqual(3);
        seen.push(...page.items.filter((e) => e.target.id?.startsWith('paged-')).map((e) => e.id));
        cursor = page.next_cursor;
      } while (cursor);
      // UUIDv7 ids recorded in order: newest first means the reverse.
      expect(seen).toEqual([...ids].reverse());

      const none = await events({ action: 'verification.completed', outcome: 'denied' });
      expect(none).toEqual({ items: [], next_cursor: null });
      const future = await events({ from: new Date(Date.now() + 3_600_000).toISOString() });
      expect(future.items).toEqual([]);
      const past = await events({ to: '2000-01-01T00:00:00Z' });
      expect(past.items).toEqual([]);
    });

    it('shows unsealed events with null seq and hashes, then their chain position once sealed', async () => {
      const [id] = await recordEvents(t, 1, 'fresh');
      // The sealer runs in the background; only the result after an explicit seal is asserted.
      await audit.sealNow();
      const [sealed] = (await events({ target_id: 'fresh-0' })).items;
      expect(sealed.id).toBe(id);
      expect(sealed.seq).toEqual(expect.any(Number));
      expect(sealed.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(sealed.prev_hash).toMatch(/^[0-9a-f]{64}$/);

      // Recorded inside a transaction still open: not sealable, so shown unsealed.
      await t.prisma.$transaction(async (tx) => {
        await audit.record(tx, TEST_CONTEXT, {
          action: 'pii.rekeyed',
          target: { type: 'verification', id: 'open-tx' },
        });
        const row = await tx.$queryRaw<{ seq: bigint | null }[]>`
          SELECT c.seq FROM audit_events e LEFT JOIN audit_chain c ON c.event_id = e.id WHERE e.target_id = 'open-tx'`;
        expect(row).toEqual([{ seq: null }]);
      });
      await audit.sealNow();
      const [later] = (await events({ target_id: 'open-tx' })).items;
      expect(later.seq).toBeGreaterThan(sealed.seq as number);
    });

    it('answers 400 naming the field for bad filters and cursors', async () => {
      const bad = async (query: Record<string, string>, field: string) => {
        const res = await t.http
          .get('/v1/audit/events')
          .query(query)
          .set('Authorization', `Bearer ${compliance}`)
          .expect(400);
        expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      };
      await bad({ action: 'verification.exploded' }, 'action');
      await bad({ outcome: 'maybe' }, 'outcome');
      await bad({ from: 'yesterday' }, 'from');
      await bad({ limit: '1000' }, 'limit');
      await bad({ cursor: 'not-a-cursor' }, 'cursor');
      await bad({ id_card: '360426199101010071' }, 'id_card');
    });
  });

  describe('POST /v1/audit/events/search', () => {
    it('finds events about an ID number through its HMAC, and audits the search', async () => {
      const hmac = audit.idCardHmac('34052419800101001X');
      await t.prisma.$transaction((tx) =>
        audit.record(tx, TEST_CONTEXT, {
          action: 'verification.created',
          target: { type: 'verification', id: 'about-a-person' },
          idCardHmac: hmac,
          details: { id_card: '340524********001X' },
        }),
      );
      const res = await t.http
        .post('/v1/audit/events/search')
        .set('Authorization', `Bearer ${compliance}`)
        .send({ id_card: ' 34052419800101001x ', action: 'verification.created' })
        .expect(200);
      expect(res.body.items.map((e: EventBody) => e.target.id)).toEqual(['about-a-person']);

      const searched = (await events({ action: 'audit.searched' })).items;
      expect(searched[0]).toMatchObject({ actor: { role: 'compliance' }, details: { by_id_card: true } });
      expect(await rawAuditText()).not.toContain('34052419800101001');

      const bad = await t.http
        .post('/v1/audit/events/search')
        .set('Authorization', `Bearer ${compliance}`)
        .send({ id_card: '12345' })
        .expect(400);
      expect(bad.body.errors[0].field).toBe('id_card');
    });
  });

  describe('checkpoints and public key', () => {
    it('signs the head on demand (an audited act, so the next signing covers it), lists checkpoints, gives the key', async () => {
      await recordEvents(t, 1, 'cp');
      const first = await t.http.post('/v1/audit/checkpoints').set('Authorization', `Bearer ${compliance}`).expect(201);
      expect(first.body).toEqual({
        seq: expect.any(Number),
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        signed_at: expect.any(String),
        key_id: expect.stringMatching(/^[0-9a-f]{16}$/),
        signature: expect.any(String),
        // A witness record (format 2), naming the witness record before it.
        version: 2,
        prev: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
      const again = await t.http.post('/v1/audit/checkpoints').set('Authorization', `Bearer ${admin.key}`).expect(201);
      // The first signing was itself audited, which moved the head: the second signs that event.
      expect(again.body.seq).toBe(first.body.seq + 1);

      const list = await t.http.get('/v1/audit/checkpoints').set('Authorization', `Bearer ${compliance}`).expect(200);
      expect(list.body.items[0]).toEqual(again.body);
      const key = await t.http.get('/v1/audit/public-key').set('Authorization', `Bearer ${compliance}`).expect(200);
      expect(key.body).toMatchObject({
        key_id: first.body.key_id,
        algorithm: 'Ed25519',
        jwk: { kty: 'OKP', crv: 'Ed25519' },
      });
      expect(key.body.pem).toContain('BEGIN PUBLIC KEY');

      const client = await t.keyFor('client');
      await t.http.post('/v1/audit/checkpoints').set('Authorization', `Bearer ${client.key}`).expect(403);
      const finance = await t.keyFor('finance');
      await t.http.get('/v1/audit/public-key').set('Authorization', `Bearer ${finance.key}`).expect(403);
    });

    it('the integrity endpoint reports an intact chain with its verified checkpoints', async () => {
      const res = await t.http.get('/v1/audit/integrity').set('Authorization', `Bearer ${compliance}`).expect(200);
      expect(res.body).toMatchObject({ ok: true, from_seq: 1 });
      expect(res.body.checked).toBe(res.body.to_seq);
      expect(res.body.checkpoints_verified).toBeGreaterThanOrEqual(1);
      const bad = await t.http
        .get('/v1/audit/integrity?from_seq=0')
        .set('Authorization', `Bearer ${compliance}`)
        .expect(400);
      expect(bad.body.errors[0].field).toBe('from_seq');
    });
  });

  async function rawAuditText(): Promise<string> {
    const rows = await t.prisma.$queryRaw<
      { t: string }[]
    >`SELECT string_agg(to_jsonb(e)::text, '\n') AS t FROM audit_events e`;
    return rows[0].t;
  }
});

/**
 * The error a statement ends with. A TRUNCATE's exclusive lock can deadlock with the background
 * sealer's transaction; PostgreSQL then aborts one of them (40P01) before the trigger runs, which
 * says nothing about the trigger, so that statement is sent again.
 */
async function refusalOf(client: pg.Client, sql: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query(sql);
      return 'accepted';
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      if (code !== '40P01' || attempt === 5) return message;
    }
  }
}
