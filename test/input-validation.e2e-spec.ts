import net from 'node:net';
import { KNOWN, startWithSandbox, VerificationHarness } from './support/verification-app';

/*
 * Issue 12 (5, 6): bad input is a 400 naming the field, never a 500, and the
 * message tells the truth. Each class of input (null, NUL, out-of-range dates,
 * out-of-range integers, wrong types, missing fields) on several endpoints.
 */
describe('input validation: every bad input is a 400 naming the field and the reason', () => {
  let h: VerificationHarness;
  let client: string;
  let compliance: string;
  let finance: string;
  let admin: string;
  let clientId: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const p = KNOWN[7];

  beforeAll(async () => {
    h = await startWithSandbox();
    const c = await h.t.keyFor('client', 'validation');
    client = c.key;
    clientId = c.clientId!;
    compliance = (await h.t.keyFor('compliance')).key;
    finance = (await h.t.keyFor('finance')).key;
    admin = (await h.t.keyFor('admin')).key;
  });
  afterAll(() => h.close());

  type Res = { status: number; headers: Record<string, string>; body: Record<string, unknown>; text: string };

  /** A 400 problem+json whose errors are exactly these fields, each with a message matching its pattern. */
  const expectFields = (res: Res, expected: Record<string, RegExp | string>) => {
    const summary = { status: res.status, body: res.text.slice(0, 500) };
    expect({ ...summary, ok: res.status === 400 }).toEqual({ ...summary, ok: true });
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.type).toBe('urn:idgate:problem:validation');
    const errors = res.body.errors as Array<{ field: string; message: string }>;
    expect(errors.map((e) => e.field).sort()).toEqual(Object.keys(expected).sort());
    for (const e of errors) {
      const want = expected[e.field];
      if (typeof want === 'string')
        expect({ field: e.field, message: e.message }).toEqual({ field: e.field, message: want });
      else
        expect({ field: e.field, message: e.message }).toEqual({
          field: e.field,
          message: expect.stringMatching(want),
        });
    }
  };

  const NOT_NULL = /^must not be null/;
  const NUL = 'must not contain NUL characters (\\u0000)';
  const YEARS = /^must be between 0001-01-02 and 9999-12-31/;
  const CALENDAR = 'is not a real calendar date';
  const DATE_FORMAT = /^must be an ISO 8601 date-time/;
  const INTEGER = 'must be an integer';

  describe('POST /v1/verifications', () => {
    const submit = (body: unknown) =>
      h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send(body as object);

    it('refuses null for typed optional fields, before anything is recorded or sent upstream', async () => {
      const calls = h.sandbox.stats().calls;
      const before = await h.t.prisma.verification.count();
      expectFields(await submit({ name: null, id_card: p.id_card }), { name: NOT_NULL });
      expectFields(await submit({ name: p.name, id_card: null }), { id_card: NOT_NULL });
      expectFields(await submit({ image_url: null }), { image_url: NOT_NULL });
      expectFields(await submit({ name: p.name, id_card: p.id_card, reference: null }), { reference: NOT_NULL });
      expectFields(await submit({ name: p.name, id_card: p.id_card, encryption: null }), { encryption: NOT_NULL });
      expect(h.sandbox.stats().calls).toBe(calls);
      expect(await h.t.prisma.verification.count()).toBe(before);
    });

    it('refuses NUL in any string, at any depth, naming the field', async () => {
      expectFields(await submit({ name: '张\u0000三', id_card: p.id_card }), { name: NUL });
      expectFields(await submit({ name: p.name, id_card: p.id_card, reference: 'a\u0000' }), { reference: NUL });
      expectFields(await submit({ encryption: [{ algorithm: 'x', iv: 'a\u0000b' }] }), { 'encryption.0.iv': NUL });
      // NUL and another error: each field gets its own reason.
      expectFields(await submit({ name: '\u0000', id_card: 5 }), { name: NUL, id_card: 'must be a string' });
    });

    it('says "must be a string" for a wrong type, whatever the other constraints', async () => {
      expectFields(await submit({ name: 123, id_card: p.id_card }), { name: 'must be a string' });
      expectFields(await submit({ image_url: ['https://a.example/x.jpg'] }), { image_url: 'must be a string' });
      expectFields(await submit({ name: p.name, id_card: p.id_card, reference: { a: 1 } }), {
        reference: 'must be a string',
      });
    });

    it('reports a missing name or id_card as required, and only those', async () => {
      expectFields(await submit({}), { name: /is required/, id_card: /is required/ });
      expectFields(await submit({ name: p.name }), { id_card: /is required/ });
    });

    it('still verifies a good request', async () => {
      await submit({ name: p.name, id_card: p.id_card }).expect(201);
    });
  });

  describe('POST /identity/idcard/ocr (upstream error shape)', () => {
    const dropIn = (body: unknown) =>
      h.t.http
        .post('/identity/idcard/ocr')
        .set(as(client))
        .send(body as object);

    const expectUpstreamError = (res: Res, field: string, reason: RegExp) => {
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        success: false,
        error: { code: 'token_mismatched', message: expect.stringMatching(new RegExp(`^${field}: ${reason.source}`)) },
        trace_id: expect.any(String),
      });
    };

    it('refuses null, NUL and wrong types in the upstream’s own error format', async () => {
      const calls = h.sandbox.stats().calls;
      expectUpstreamError(await dropIn({ name: null, id_card: p.id_card }), 'name', /must not be null/);
      expectUpstreamError(await dropIn({ image_url: null }), 'image_url', /must not be null/);
      expectUpstreamError(await dropIn({ name: p.name, id_card: '1\u0000' }), 'id_card', /must not contain NUL/);
      expectUpstreamError(await dropIn({ name: p.name, id_card: 360426199 }), 'id_card', /must be a string/);
      expect(h.sandbox.stats().calls).toBe(calls);
    });
  });

  describe('POST /v1/verifications/search', () => {
    const search = (body: unknown) =>
      h.t.http
        .post('/v1/verifications/search')
        .set(as(compliance))
        .send(body as object);

    it('refuses null and NUL in filters', async () => {
      expectFields(await search({ id_card: null }), { id_card: NOT_NULL });
      expectFields(await search({ name: null, reference: null }), { name: NOT_NULL, reference: NOT_NULL });
      expectFields(await search({ from: null, limit: null }), { from: NOT_NULL, limit: NOT_NULL });
      expectFields(await search({ name: 'a\u0000' }), { name: NUL });
      expectFields(await search({ '\u0000': 1 }), { '\u0000': NUL });
    });

    it('refuses dates PostgreSQL cannot store or that do not exist', async () => {
      expectFields(await search({ from: '0000-01-01T00:00:00Z' }), { from: YEARS });
      expectFields(await search({ from: '10000-01-01T00:00:00Z' }), { from: YEARS });
      expectFields(await search({ to: '+275760-09-13T00:00:00.000Z' }), { to: YEARS });
      expectFields(await search({ from: '0001-01-02T00:00:00+01:00' }), { from: YEARS });
      expectFields(await search({ from: '2024-02-30' }), { from: CALENDAR });
      expectFields(await search({ from: '2024-01-01T25:00:00Z' }), { from: 'is not a real date and time' });
      expectFields(await search({ from: '1700000000' }), { from: DATE_FORMAT });
      expectFields(await search({ from: 'Invalid Date' }), { from: DATE_FORMAT });
      expectFields(await search({ from: '2024-01-01T00:00:00' }), { from: /time zone/ });
      expectFields(await search({ from: 1700000000000 }), { from: /^must be a string/ });
      expectFields(await search({ from: '0001-01-01T23:59:59Z' }), { from: YEARS });
      await search({ from: '0001-01-02T00:00:00Z', to: '9999-12-31T23:59:59.999Z' }).expect(200);
      await search({ from: '2024-02-29' }).expect(200);
    });

    it('says "must be an integer" for a non-integer limit, and a range only for an integer', async () => {
      expectFields(await search({ limit: 'abc' }), { limit: INTEGER });
      expectFields(await search({ limit: 'NaN' }), { limit: INTEGER });
      expectFields(await search({ limit: true }), { limit: INTEGER });
      expectFields(await search({ limit: 1.5 }), { limit: INTEGER });
      expectFields(await search({ limit: [1] }), { limit: INTEGER });
      expectFields(await search({ limit: 2 ** 31 }), { limit: 'must not be greater than 200' });
      expectFields(await search({ limit: 1e308 }), { limit: 'must not be greater than 200' });
      expectFields(await search({ limit: -(2 ** 53) }), { limit: 'must not be less than 1' });
      await search({ limit: 5 }).expect(200);
    });
  });

  describe('GET /v1/verifications?from=…', () => {
    const list = (query: string) => h.t.http.get(`/v1/verifications?${query}`).set(as(compliance));

    it('refuses bad dates, NUL and bad integers in the query string', async () => {
      expectFields(await list('from=0000-01-01'), { from: YEARS });
      expectFields(await list('from=275760-09-13'), { from: YEARS });
      expectFields(await list('to=2023-02-29T00:00:00Z'), { to: CALENDAR });
      expectFields(await list('from=1700000000000'), { from: DATE_FORMAT });
      expectFields(await list('from='), { from: DATE_FORMAT });
      expectFields(await list('from=2024-01-01&from=2024-01-02'), { from: /^must be a string/ });
      expectFields(await list('reference=a%00b'), { reference: NUL });
      expectFields(await list('limit=abc'), { limit: INTEGER });
      expectFields(await list('limit='), { limit: INTEGER });
      expectFields(await list('limit=1e3'), { limit: INTEGER });
      expectFields(await list('limit=99999999999999999999'), { limit: 'must not be greater than 200' });
      const ok = await list('from=2024-01-01&to=9999-12-31T23:59:59Z&limit=10').expect(200);
      expect(ok.body).toMatchObject({ items: expect.any(Array) });
    });
  });

  describe('GET /v1/audit/events?from=…', () => {
    const events = (query: string) => h.t.http.get(`/v1/audit/events?${query}`).set(as(compliance));

    it('refuses dates out of range or not on the calendar, and NUL', async () => {
      for (const from of ['0000-01-01T00:00:00Z', '10000-01-01T00:00:00Z', '2024-02-30T00:00:00Z', '2024-13-01']) {
        const res = await events(`from=${encodeURIComponent(from)}`);
        expect({ from, status: res.status }).toEqual({ from, status: 400 });
        expect(res.body.errors).toEqual([{ field: 'from', message: expect.any(String) }]);
      }
      expectFields(await events('actor=a%00'), { actor: NUL });
      expectFields(await events('limit=abc'), { limit: INTEGER });
      await events('from=2024-01-01T00:00:00Z&limit=5').expect(200);
    });
  });

  describe('GET /v1/billing/usage', () => {
    const usage = (query: string) => h.t.http.get(`/v1/billing/usage?${query}`).set(as(finance));

    it('refuses bad dates and NUL, and a missing group_by is required', async () => {
      expectFields(await usage('group_by=day&from=0000-01-01'), { from: YEARS });
      expectFields(await usage('group_by=day&to=10000-01-01'), { to: YEARS });
      expectFields(await usage('group_by=day&from=2024-02-30'), { from: CALENDAR });
      expectFields(await usage('group_by=day&from=1700000000'), { from: DATE_FORMAT });
      expectFields(await usage('group_by=day&tz=UTC%00'), { tz: NUL });
      expectFields(await usage('from=2026-01-01'), { group_by: 'is required' });
      expectFields(await usage('group_by=day&from=0001-01-01&tz=Asia/Shanghai'), { from: YEARS });
      await usage('group_by=day&from=0001-01-02&to=9999-12-31&tz=Asia/Shanghai').expect(200);
      await usage('group_by=day&from=0001-01-02&to=9999-12-31&tz=America/New_York').expect(200);
    });
  });

  describe('PUT /v1/clients/:id/policy', () => {
    const put = (body: unknown) =>
      h.t.http
        .put(`/v1/clients/${clientId}/policy`)
        .set(as(admin))
        .send(body as object);
    const none = { daily_limit: null, monthly_spend_cap: null, reuse_window_seconds: null };

    it('keeps null as "no limit"', async () => {
      const res = await put(none).expect(200);
      expect(res.body).toEqual(none);
      await put({ ...none, daily_limit: 10, monthly_spend_cap: 2_147_483_647 }).expect(200);
      await put(none).expect(200);
    });

    it('bounds every integer to what its column holds, and says "must be an integer" for other types', async () => {
      expectFields(await put({ ...none, monthly_spend_cap: 2 ** 31 }), {
        monthly_spend_cap: 'must not be greater than 2147483647',
      });
      expectFields(await put({ ...none, monthly_spend_cap: 2 ** 53 }), {
        monthly_spend_cap: 'must not be greater than 2147483647',
      });
      expectFields(await put({ ...none, daily_limit: 1e308 }), { daily_limit: 'must not be greater than 100000000' });
      expectFields(await put({ ...none, daily_limit: -(2 ** 31) }), { daily_limit: 'must not be less than 0' });
      expectFields(await put({ ...none, daily_limit: 'abc' }), { daily_limit: INTEGER });
      expectFields(await put({ ...none, daily_limit: '5' }), { daily_limit: INTEGER });
      expectFields(await put({ ...none, reuse_window_seconds: 1.5 }), { reuse_window_seconds: INTEGER });
      expectFields(await put({ ...none, reuse_window_seconds: { n: 1 } }), { reuse_window_seconds: INTEGER });
    });

    it('names a missing field as required, without the constraints of fields not sent', async () => {
      expectFields(await put({ daily_limit: 5 }), {
        monthly_spend_cap: 'is required',
        reuse_window_seconds: 'is required',
      });
    });
  });

  describe('POST /v1/billing/prices', () => {
    const price = (body: unknown) =>
      h.t.http
        .post('/v1/billing/prices')
        .set(as(admin))
        .send(body as object);
    const future = '2099-01-01T00:00:00Z';

    it('refuses dates out of range or not on the calendar, null and NUL', async () => {
      expectFields(await price({ amount: 1, currency: 'CNY', valid_from: '10000-01-01T00:00:00Z' }), {
        valid_from: YEARS,
      });
      expectFields(await price({ amount: 1, currency: 'CNY', valid_from: '275760-09-13T00:00:00Z' }), {
        valid_from: YEARS,
      });
      expectFields(await price({ amount: 1, currency: 'CNY', valid_from: '2099-02-30T00:00:00Z' }), {
        valid_from: CALENDAR,
      });
      expectFields(await price({ amount: 1, currency: 'CNY', valid_from: null }), { valid_from: NOT_NULL });
      expectFields(await price({ amount: 1, currency: 'CN\u0000', valid_from: future }), { currency: NUL });
      expectFields(await price({ amount: 1, currency: 5, valid_from: future }), { currency: 'must be a string' });
    });

    it('checks the type of amount before its range', async () => {
      expectFields(await price({ amount: 'abc', currency: 'CNY', valid_from: future }), { amount: INTEGER });
      expectFields(await price({ amount: '60', currency: 'CNY', valid_from: future }), { amount: INTEGER });
      expectFields(await price({ amount: 2 ** 53, currency: 'CNY', valid_from: future }), {
        amount: 'must not be greater than 100000000',
      });
    });

    it('reports an empty body as three required fields', async () => {
      expectFields(await price({}), { amount: 'is required', currency: 'is required', valid_from: 'is required' });
    });
  });

  describe('POST /v1/api-keys', () => {
    const create = (body: unknown) =>
      h.t.http
        .post('/v1/api-keys')
        .set(as(admin))
        .send(body as object);

    it('reports missing fields as required, not by their length or pattern', async () => {
      expectFields(await create({}), { role: 'is required', name: 'is required' });
      expectFields(await create({ role: 'admin' }), { name: 'is required' });
    });

    it('refuses null, NUL and wrong types, naming the field', async () => {
      expectFields(await create({ role: 'admin', name: null }), { name: NOT_NULL });
      expectFields(await create({ role: 'client', name: 'x', client_id: null }), { client_id: NOT_NULL });
      expectFields(await create({ role: 'admin', name: 'ops\u0000' }), { name: NUL });
      expectFields(await create({ role: 'admin', name: 42 }), { name: 'must be a string' });
      expectFields(await create({ role: 'admin', name: '' }), { name: /longer than or equal to 1/ });
      await create({ role: 'finance', name: 'books' }).expect(201);
    });
  });

  describe('headers', () => {
    /** A raw request: HTTP clients refuse to send a NUL in a header, the point here is what the server does. */
    const raw = (head: string, body: string) =>
      new Promise<string>((resolve, reject) => {
        const server = h.t.app.getHttpServer() as import('node:http').Server;
        if (!server.listening) server.listen(0);
        const port = (server.address() as import('node:net').AddressInfo).port;
        const socket = net.connect(port, '127.0.0.1', () => socket.end(`${head}\r\n\r\n${body}`, 'latin1'));
        let reply = '';
        socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
        socket.on('error', reject);
        socket.on('close', () => resolve(reply));
      });

    it('a NUL in Idempotency-Key never reaches the service: 400, nothing recorded', async () => {
      const before = await h.t.prisma.verification.count();
      const body = JSON.stringify({ name: p.name, id_card: p.id_card });
      const reply = await raw(
        [
          'POST /v1/verifications HTTP/1.1',
          'Host: localhost',
          `Authorization: Bearer ${client}`,
          'Content-Type: application/json',
          `Content-Length: ${Buffer.byteLength(body)}`,
          'Idempotency-Key: abc\u0000def',
          'Connection: close',
        ].join('\r\n'),
        body,
      );
      expect(reply).toMatch(/^HTTP\/1\.1 400 /);
      expect(await h.t.prisma.verification.count()).toBe(before);
    });
  });

  describe('unpaired UTF-16 surrogates (not valid Unicode; PostgreSQL stores neither their text nor their JSON escape)', () => {
    const SURROGATE = /^must be valid Unicode/;
    const post = (url: string, key: string, body: unknown) =>
      h.t.http
        .post(url)
        .set(as(key))
        .send(body as object);

    it('are refused in every string of every body, keys included, naming the field', async () => {
      for (const lone of ['\ud800', 'x\udc00', 'a\udc00b', '\ud83d']) {
        expectFields(await post('/v1/verifications', client, { name: lone, id_card: p.id_card }), { name: SURROGATE });
        expectFields(await post('/v1/verifications', client, { name: p.name, id_card: p.id_card, reference: lone }), {
          reference: SURROGATE,
        });
        expectFields(await post('/v1/verifications/search', compliance, { name: lone }), { name: SURROGATE });
        expectFields(await post('/v1/api-key-requests', admin, { role: 'compliance', name: lone }), {
          name: SURROGATE,
        });
        expectFields(await post('/v1/api-keys', admin, { role: 'finance', name: lone }), { name: SURROGATE });
        expectFields(await post('/v1/clients', admin, { name: lone }), { name: SURROGATE });
        expectFields(await post('/v1/verifications/search', compliance, { [lone]: 1 }), { [lone]: SURROGATE });
      }
    });

    it('a well-formed pair (an emoji) is ordinary text', async () => {
      const res = await post('/v1/api-keys', admin, { role: 'finance', name: 'till 😀' }).expect(201);
      expect(res.body.name).toBe('till 😀');
    });
  });

  describe('path segments that are not percent-encoded UTF-8', () => {
    it('are a 400 naming the path, with a request id, on every route with a parameter', async () => {
      const routes: Array<[string, string]> = [
        [`/v1/verifications/`, compliance],
        [`/v1/billing/reconciliations/`, finance],
        [`/v1/clients/`, admin],
      ];
      for (const [route, key] of routes) {
        for (const bad of ['%ff', '%c0%ae%c0%ae', '%ed%a0%80', 'a%e4%b8']) {
          const res = await h.t.http.get(route + bad).set(as(key));
          expectFields(res, { path: 'must be valid percent-encoded UTF-8' });
          expect(res.body.request_id).toEqual(expect.any(String));
          expect(res.headers['x-request-id']).toBe(res.body.request_id);
          expect(res.text).not.toContain(bad);
        }
      }
    });
  });
});
