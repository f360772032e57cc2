import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

/*
 * Findings 3-5 of the outside security test: personal data and keys leaking through the masks,
 * free-text fields, correlation headers and request paths.
 * 3. Wrong-length ID numbers (answered -2) were masked as first 6 + last 4, and for such lengths
 *    the last 4 are birth-date digits (`36042619910101` → `360426****0101`).
 * 4. ID numbers written with separators, invisible characters, other scripts' digits or a
 *    trailing x got into `reference` (shown to finance), `X-Request-Id` (audit trail and logs, and
 *    so did a key's secret without its prefix) and `Idempotency-Key` (stored in clear).
 * 5. Request paths were logged as sent, and echoed in the problem body's `instance`.
 * Each class is tried with several inputs, checked where an attacker (or an operator) would look:
 * answers, stored rows, the audit trail and the log lines.
 */

const ID = '360426199101010071';

describe('personal data and keys stay out of masks, free text, headers and paths', () => {
  let h: VerificationHarness;
  let client: string;
  let clientId: string;
  let finance: string;
  let compliance: string;

  beforeAll(async () => {
    h = await startWithSandbox();
    const issued = await h.t.keyFor('client');
    client = issued.key;
    clientId = issued.clientId!;
    finance = (await h.t.keyFor('finance')).key;
    compliance = (await h.t.keyFor('compliance')).key;
  });
  afterAll(() => h.close());

  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const submit = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set(headers)
      .send({ name: '张三', ...body });
  const logs = () => h.t.logs.join('\n');

  describe('3. the mask shows no birth-date digit, whatever the length', () => {
    it.each([
      ['36042619910101', '360426********'], // 14: used to end in 0101, the birth day
      ['360426199101', '360426******'],
      ['3604261991010', '360426*******'],
      ['36042619910101007', '360426***********'],
      ['3604261991010100', '360426**********'],
      ['360426199101010', '360426*********'], // 15 digits, but not a legacy number (no month 91)
      ['36042619910101007100', '360426**************'],
      ['3604261', '*******'],
    ])('%j is shown to finance and to the client as %j, everywhere', async (idCard, masked) => {
      const sent = await submit({ id_card: idCard });
      expect(sent.status).toBe(201);
      expect(sent.body).toMatchObject({ result: '-2', id_card: masked });
      const id = sent.body.id as string;
      for (const key of [finance, client]) {
        expect((await h.t.http.get(`/v1/verifications/${id}`).set(as(key))).body.id_card).toBe(masked);
        const listed = await h.t.http.get('/v1/verifications').set(as(key));
        expect(listed.body.items.find((v: { id: string }) => v.id === id)?.id_card).toBe(masked);
      }
      // Compliance sees it in full: the mask is a view, not a loss.
      expect((await h.t.http.get(`/v1/verifications/${id}`).set(as(compliance))).body.id_card).toBe(idCard);
      const events = await h.t.prisma.auditEvent.findMany({ where: { targetId: id } });
      for (const e of events) {
        const shown = (e.details as Record<string, unknown>).id_card;
        if (shown !== undefined) expect(shown).toBe(masked);
      }
    });

    it('a well-formed number still shows 6 + 4, in the answers and the audit trail', async () => {
      const person = KNOWN[0];
      const sent = await submit({ name: person.name, id_card: person.id_card });
      const masked = `${person.id_card.slice(0, 6)}********${person.id_card.slice(-4)}`;
      expect(sent.body.id_card).toBe(masked);
      expect((await h.t.http.get(`/v1/verifications/${sent.body.id}`).set(as(finance))).body.id_card).toBe(masked);
      const created = await h.t.prisma.auditEvent.findFirst({
        where: { targetId: sent.body.id, action: 'verification.created' },
      });
      expect((created?.details as Record<string, unknown>).id_card).toBe(masked);
    });
  });

  describe('4. ID numbers however written are refused in reference, X-Request-Id and Idempotency-Key', () => {
    const WRITTEN = [
      '360426-19910101-0071',
      '360426 19910101 0071',
      '360426.19910101.0071',
      '360426/1991/01/01/0071',
      '360426_19910101_0071',
      'order 360426\u200b19910101\u200b0071', // zero-width space
      '360426\u00ad19910101\u00ad0071', // soft hyphen
      '3604261991\u206001010071', // word joiner
      '٣٦٠٤٢٦١٩٩١٠١٠١٠٠٧١', // Arabic-Indic digits
      '३६०४२६१९९१०१०१००७१', // Devanagari digits
      '３６０４２６１９９１０１０１００７１', // full-width digits
      '340524-19800101-001x',
      'ref:34052419800101001X.',
      '360426910101007', // the legacy form
      '110101199003071234', // a mistyped check character is still someone's number
    ];

    it.each(WRITTEN)('reference %j is a 400 naming reference, and nothing is recorded', async (reference) => {
      const before = await h.t.prisma.verification.count({ where: { clientId } });
      const res = await submit({ id_card: KNOWN[1].id_card, name: KNOWN[1].name, reference });
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([
        { field: 'reference', message: expect.stringMatching(/must not contain an ID number/) },
      ]);
      expect(await h.t.prisma.verification.count({ where: { clientId } })).toBe(before);
    });

    it('ordinary references are kept', async () => {
      for (const reference of ['order-1234', 'invoice 2024-06-01 #17', 'batch/7/item/42', '订单 20240601-0042']) {
        const res = await submit({ id_card: 'x', reference });
        expect({ reference, status: res.status }).toEqual({ reference, status: 201 });
        expect(res.body.reference).toBe(reference);
      }
    });

    it('an X-Request-Id holding an ID number or a key secret is not kept, echoed, recorded or logged', async () => {
      const secret = client.slice('idg_test_'.length);
      const values = [
        '360426-19910101-0071',
        '360426.19910101.0071',
        '360426_19910101_0071',
        '360426:19910101:0071',
        'req-34052419800101001X',
        'abc360426199101010071',
        client,
        secret, // the 40 secret characters without the idg_…_ prefix
        `trace.${secret.slice(0, 32)}`,
      ];
      for (const value of values) {
        const res = await submit({ id_card: 'x' }, { 'X-Request-Id': value });
        expect({ value, status: res.status }).toEqual({ value, status: 201 });
        expect({ value, echoed: res.headers['x-request-id'] }).toEqual({
          value,
          echoed: expect.stringMatching(/^[0-9a-f-]{36}$/),
        });
        const events = await h.t.prisma.auditEvent.findMany({ where: { targetId: res.body.id } });
        expect(events.length).toBeGreaterThan(0);
        for (const e of events) expect(e.details).not.toHaveProperty('caller_request_id');
      }
      const written = logs();
      for (const value of values) expect({ value, logged: written.includes(value) }).toEqual({ value, logged: false });
      // A correlation token is still kept, echoed and recorded.
      const kept = await submit({ id_card: 'x' }, { 'X-Request-Id': 'trace-abc.1' });
      expect(kept.headers['x-request-id']).toBe('trace-abc.1');
      const [event] = await h.t.prisma.auditEvent.findMany({ where: { targetId: kept.body.id } });
      expect(event.details).toMatchObject({ caller_request_id: 'trace-abc.1' });
    });

    it('an Idempotency-Key holding an ID number is a 400 naming it, and is never stored', async () => {
      const keys = [
        ID,
        'verify-360426-19910101-0071',
        '360426 19910101 0071',
        '360426/19910101/0071',
        '360426\u00ad19910101\u00ad0071', // soft hyphen (sent as UTF-8, read by Node as Latin-1: Â­)
        '360426\u00a019910101\u00a00071', // no-break space
        '34052419800101001x',
        '360426910101007',
      ];
      const before = await h.t.prisma.verification.count({ where: { clientId } });
      for (const key of keys) {
        for (const path of ['/v1/verifications', '/identity/idcard/ocr']) {
          const res = await h.t.http
            .post(path)
            .set(as(client))
            .set('Idempotency-Key', key)
            .send({ name: KNOWN[2].name, id_card: KNOWN[2].id_card });
          expect({ key, path, status: res.status }).toEqual({ key, path, status: 400 });
          if (path.startsWith('/v1/')) {
            expect(res.body.errors).toEqual([
              { field: 'Idempotency-Key', message: expect.stringMatching(/must not contain an ID number/) },
            ]);
          } else {
            expect(res.body.error.message).toMatch(/^Idempotency-Key: must not contain an ID number/);
          }
        }
      }
      expect(await h.t.prisma.idempotencyRecord.count({ where: { clientId } })).toBe(0);
      expect(await h.t.prisma.verification.count({ where: { clientId } })).toBe(before);
      const rows = await h.t.prisma.$queryRaw<Array<{ key: string }>>`SELECT key FROM idempotency_keys`;
      for (const row of rows) expect(keys).not.toContain(row.key);
      // An ordinary key is still taken.
      const ok = await submit({ id_card: 'x' }, { 'Idempotency-Key': 'order-42' });
      expect(ok.status).toBe(201);
      expect(await h.t.prisma.idempotencyRecord.count({ where: { clientId, key: 'order-42' } })).toBe(1);
    });
  });

  describe('5. request paths are logged and echoed with ID numbers and keys redacted', () => {
    it('redacts ID numbers, keys and phone numbers in path segments, in the log and in instance', async () => {
      const secret = client.slice('idg_test_'.length);
      const paths: Array<[string, string, string]> = [
        [`/v1/verifications/${ID}`, '/v1/verifications/:redacted', ID],
        ['/v1/verifications/360426-19910101-0071', '/v1/verifications/:redacted', '19910101'],
        [
          '/v1/verifications/%33%36%30%34%32%36%31%39%39%31%30%31%30%31%30%30%37%31',
          '/v1/verifications/:redacted',
          '%31%39%39%31',
        ],
        ['/v1/verifications/%EF%BC%93%EF%BC%96%EF%BC%90426199101010071', '/v1/verifications/:redacted', '199101010071'],
        [`/v1/${client}`, '/v1/:redacted', secret],
        [`/v1/api-keys/${secret}`, '/v1/api-keys/:redacted', secret],
        [`/v1/verifications/${ID}/items`, '/v1/verifications/:redacted/items', ID],
        ['/v1/verifications/13800138000', '/v1/verifications/:redacted', '13800138000'],
        ['/v1/verifications/%E5%BC%A0%E4%B8%89', '/v1/verifications/:redacted', '%E5%BC%A0'],
      ];
      for (const [path, shown, secretPart] of paths) {
        const before = h.t.logs.length;
        const res = await h.t.http.get(path).set(as(compliance));
        expect({ path, status: res.status }).toEqual({ path, status: expect.any(Number) });
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect({ path, instance: res.body.instance }).toEqual({ path, instance: shown });
        const lines = h.t.logs.slice(before).join('\n');
        expect({ path, logged: lines.includes(`"path":"${shown}"`) }).toEqual({ path, logged: true });
        expect({ path, leaked: lines.includes(secretPart) }).toEqual({ path, leaked: false });
      }
      expect(logs()).not.toContain(secret);
    });

    it('never logs a query string, and keeps idgate’s own path segments', async () => {
      const before = h.t.logs.length;
      const res = await h.t.http.get(`/v1/verifications?reference=${ID}&limit=5`).set(as(compliance));
      expect(res.status).toBe(200);
      const listed = await h.t.http
        .get(`/v1/verifications/${(await submit({ id_card: 'x' })).body.id}`)
        .set(as(finance));
      expect(listed.status).toBe(200);
      const lines = h.t.logs.slice(before).join('\n');
      expect(lines).not.toContain(ID);
      expect(lines).toContain('"path":"/v1/verifications"');
      expect(lines).toContain(`"path":"/v1/verifications/${listed.body.id}"`);
    });
  });
});
