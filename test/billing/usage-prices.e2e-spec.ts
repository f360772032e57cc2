import { parse } from 'csv-parse/sync';
import pg from 'pg';
import { KNOWN, startWithSandbox, UNKNOWN_VALID_ID, VerificationHarness } from '../support/verification-app';

describe('billing: prices over time and usage', () => {
  let h: VerificationHarness;
  let acme: { key: string; clientId: string };
  let globex: { key: string; clientId: string };
  let finance: string;
  let admin: string;
  let compliance: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    h = await startWithSandbox();
    const a = await h.t.keyFor('client', 'acme');
    acme = { key: a.key, clientId: a.clientId! };
    const g = await h.t.keyFor('client', 'globex');
    globex = { key: g.key, clientId: g.clientId! };
    finance = (await h.t.keyFor('finance')).key;
    admin = (await h.t.keyFor('admin')).key;
    compliance = (await h.t.keyFor('compliance')).key;
  });
  afterAll(() => h.close());

  const verify = (key: string, i: number, name = KNOWN[i].name, idCard = KNOWN[i].id_card) =>
    h.t.http.post('/v1/verifications').set(as(key)).send({ name, id_card: idCard }).expect(201);

  describe('prices', () => {
    it('uses the configured price while the table is empty', async () => {
      const list = await h.t.http.get('/v1/billing/prices').set(as(finance)).expect(200);
      expect(list.body).toEqual({
        items: [],
        current: { id: null, amount: 50, currency: 'CNY', valid_from: new Date(0).toISOString() },
        next_cursor: null,
      });
      const res = await verify(acme.key, 0);
      expect(res.body).toMatchObject({ charged: true, amount: 50, currency: 'CNY' });
    });

    it('a new price applies to new calls from its valid_from; earlier calls keep theirs', async () => {
      const earlier = await verify(acme.key, 1);
      const future = new Date(Date.now() + 86_400_000).toISOString();
      const later = await h.t.http
        .post('/v1/billing/prices')
        .set(as(admin))
        .send({ amount: 90, currency: 'CNY', valid_from: future })
        .expect(201);
      expect(later.body).toMatchObject({ amount: 90, valid_from: future });
      // A future price does not apply yet.
      expect((await verify(acme.key, 2)).body.amount).toBe(50);

      const now = new Date().toISOString();
      const created = await h.t.http
        .post('/v1/billing/prices')
        .set(as(admin))
        .send({ amount: 70, currency: 'CNY', valid_from: now })
        .expect(201);
      expect(created.body).toMatchObject({ id: expect.any(String), amount: 70, currency: 'CNY' });
      const after = await verify(acme.key, 3);
      expect(after.body).toMatchObject({ charged: true, amount: 70 });
      const notCharged = await verify(acme.key, 0, '王小明', UNKNOWN_VALID_ID);
      expect(notCharged.body).toMatchObject({ charged: false, amount: 0 });

      const old = await h.t.http.get(`/v1/verifications/${earlier.body.id}`).set(as(acme.key)).expect(200);
      expect(old.body.amount).toBe(50);

      const list = await h.t.http.get('/v1/billing/prices').set(as(admin)).expect(200);
      expect(list.body.items.map((p: { amount: number }) => p.amount)).toEqual([90, 70]);
      expect(list.body.current).toMatchObject({ amount: 70, id: created.body.id });
      expect(await h.t.prisma.auditEvent.count({ where: { action: 'price.created', targetId: created.body.id } })).toBe(
        1,
      );
    });

    it('refuses a start in the past, a repeated valid_from, bad fields, and non-admins', async () => {
      const past = await h.t.http
        .post('/v1/billing/prices')
        .set(as(admin))
        .send({ amount: 10, currency: 'CNY', valid_from: '2020-01-01T00:00:00Z' })
        .expect(400);
      expect(past.body.errors).toEqual([{ field: 'valid_from', message: expect.stringContaining('past') }]);
      const taken = (await h.t.http.get('/v1/billing/prices').set(as(admin))).body.items[0].valid_from;
      await h.t.http
        .post('/v1/billing/prices')
        .set(as(admin))
        .send({ amount: 10, currency: 'CNY', valid_from: taken })
        .expect(409);
      const bad = await h.t.http
        .post('/v1/billing/prices')
        .set(as(admin))
        .send({ amount: -1, currency: 'yuan', valid_from: 'soon' })
        .expect(400);
      expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual([
        'amount',
        'currency',
        'valid_from',
      ]);
      await h.t.http
        .post('/v1/billing/prices')
        .set(as(finance))
        .send({ amount: 10, currency: 'CNY', valid_from: new Date().toISOString() })
        .expect(403);
      await h.t.http.get('/v1/billing/prices').set(as(compliance)).expect(403);
      await h.t.http.get('/v1/billing/prices').set(as(acme.key)).expect(403);
    });

    it('price history cannot be changed in the database either', async () => {
      // The app's own role may not even try (no UPDATE or DELETE on prices)…
      await expect(h.t.prisma.$executeRaw`UPDATE prices SET amount = 1`).rejects.toThrow(/permission denied/);
      await expect(h.t.prisma.$executeRaw`DELETE FROM prices`).rejects.toThrow(/permission denied/);
      // …and the owner, which may, is stopped by the append-only triggers.
      const owner = new pg.Client({ connectionString: h.t.db.adminUrl });
      await owner.connect();
      try {
        await expect(owner.query(`UPDATE prices SET amount = 1`)).rejects.toThrow(/append-only/);
        await expect(owner.query(`DELETE FROM prices`)).rejects.toThrow(/append-only/);
      } finally {
        await owner.end();
      }
    });
  });

  describe('usage', () => {
    /** Rows at chosen instants, to pin day boundaries (test setup straight into the table). */
    const seed = async (
      clientId: string,
      createdAt: string,
      chargeStatus: string,
      amount: number | null,
      result: string | null,
    ) => {
      const [key] = await h.t.prisma.$queryRaw<Array<{ id: string }>>`SELECT id::text AS id FROM api_keys LIMIT 1`;
      // The database stamps created_at on insert (migration *_verification_clock): the instant is set after.
      const [row] = await h.t.prisma.$queryRaw<Array<{ id: string }>>`
        INSERT INTO verifications (id, client_id, api_key_id, channel, mode, status, result, charge_status, unit_price, amount, currency)
        VALUES (gen_random_uuid(), ${clientId}::uuid, ${key.id}::uuid, 'api', 'name_id_card',
                ${chargeStatus === 'unknown' ? 'unknown' : 'completed'}::"VerificationStatus", ${result},
                ${chargeStatus}::"ChargeStatus", 50, ${amount}, 'CNY')
        RETURNING id::text AS id`;
      await h.t.prisma
        .$executeRaw`UPDATE verifications SET created_at = ${createdAt}::timestamptz WHERE id = ${row.id}::uuid`;
    };

    beforeAll(async () => {
      // 2026-01-01 23:30 and 2026-01-02 00:30 in Shanghai; both on 2026-01-01 in UTC.
      await seed(acme.clientId, '2026-01-01T15:30:00Z', 'charged', 50, '0');
      await seed(globex.clientId, '2026-01-01T16:30:00Z', 'charged', 60, '-1');
      await seed(globex.clientId, '2026-01-01T17:00:00Z', 'not_charged', 0, '-5');
      await seed(acme.clientId, '2026-01-01T18:00:00Z', 'unknown', null, null);
    });

    const usage = (query: Record<string, string>, key = finance) =>
      h.t.http.get('/v1/billing/usage').query(query).set(as(key));

    it('groups by day with day boundaries in the requested time zone', async () => {
      const shanghai = await usage({
        from: '2026-01-01',
        to: '2026-01-03',
        group_by: 'day',
        tz: 'Asia/Shanghai',
      }).expect(200);
      expect(shanghai.body).toMatchObject({
        from: '2025-12-31T16:00:00.000Z',
        to: '2026-01-02T16:00:00.000Z',
        tz: 'Asia/Shanghai',
        group_by: 'day',
        items: [
          {
            key: '2026-01-01',
            calls: 1,
            charged_calls: 1,
            unknown_calls: 0,
            amount: 50,
            unknown_amount: 0,
            currency: 'CNY',
          },
          {
            key: '2026-01-02',
            calls: 3,
            charged_calls: 1,
            unknown_calls: 1,
            amount: 60,
            unknown_amount: 50,
            currency: 'CNY',
          },
        ],
        totals: [{ calls: 4, charged_calls: 2, unknown_calls: 1, amount: 110, unknown_amount: 50, currency: 'CNY' }],
      });
      const utc = await usage({ from: '2026-01-01', to: '2026-01-03', group_by: 'day' }).expect(200);
      expect(utc.body.items).toEqual([
        {
          key: '2026-01-01',
          calls: 4,
          charged_calls: 2,
          unknown_calls: 1,
          amount: 110,
          unknown_amount: 50,
          currency: 'CNY',
        },
      ]);
    });

    it('groups by client and by result', async () => {
      const range = { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' };
      const byClient = await usage({ ...range, group_by: 'client' }).expect(200);
      expect(byClient.body.items).toEqual(
        [
          {
            key: acme.clientId,
            calls: 2,
            charged_calls: 1,
            unknown_calls: 1,
            amount: 50,
            unknown_amount: 50,
            currency: 'CNY',
          },
          {
            key: globex.clientId,
            calls: 2,
            charged_calls: 1,
            unknown_calls: 0,
            amount: 60,
            unknown_amount: 0,
            currency: 'CNY',
          },
        ].sort((a, b) => (a.key < b.key ? -1 : 1)),
      );
      const byResult = await usage({ ...range, group_by: 'result' }, admin).expect(200);
      expect(byResult.body.items.map((i: { key: string; calls: number }) => [i.key, i.calls])).toEqual([
        ['-1', 1],
        ['-5', 1],
        ['0', 1],
        ['unknown', 1],
      ]);
    });

    it('counts live traffic too (this month so far by default)', async () => {
      const before = (await usage({ group_by: 'result' }).expect(200)).body.totals[0]?.calls ?? 0;
      await verify(globex.key, 5);
      const after = await usage({ group_by: 'result' }).expect(200);
      expect(after.body.totals[0].calls).toBe(before + 1);
    });

    it('exports the same items as CSV, by query or by Accept', async () => {
      const query = { from: '2026-01-01', to: '2026-01-03', group_by: 'day', tz: 'Asia/Shanghai' };
      const csv = await usage({ ...query, format: 'csv' }).expect(200);
      expect(csv.headers['content-type']).toMatch(/^text\/csv/);
      expect(parse(csv.text, { columns: true })).toEqual([
        {
          key: '2026-01-01',
          calls: '1',
          charged_calls: '1',
          unknown_calls: '0',
          amount: '50',
          unknown_amount: '0',
          currency: 'CNY',
        },
        {
          key: '2026-01-02',
          calls: '3',
          charged_calls: '1',
          unknown_calls: '1',
          amount: '60',
          unknown_amount: '50',
          currency: 'CNY',
        },
      ]);
      const accepted = await usage(query).set('Accept', 'text/csv').expect(200);
      expect(accepted.text).toBe(csv.text);
    });

    it('names the bad parameter, and admits finance and admin only', async () => {
      const tz = await usage({ group_by: 'day', tz: 'Mars/Olympus' }).expect(400);
      expect(tz.body.errors).toEqual([{ field: 'tz', message: expect.any(String) }]);
      const from = await usage({ group_by: 'day', from: 'last week' }).expect(400);
      expect(from.body.errors).toEqual([{ field: 'from', message: expect.any(String) }]);
      const order = await usage({ group_by: 'day', from: '2026-01-02', to: '2026-01-01' }).expect(400);
      expect(order.body.errors).toEqual([{ field: 'to', message: 'must be after from' }]);
      const group = await usage({ group_by: 'week' }).expect(400);
      expect(group.body.errors[0].field).toBe('group_by');
      await usage({ group_by: 'day' }, compliance).expect(403);
      await usage({ group_by: 'day' }, acme.key).expect(403);
      await h.t.http.get('/v1/billing/usage?group_by=day').expect(401);
    });
  });
});
