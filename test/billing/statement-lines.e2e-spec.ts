import { createHash } from 'node:crypto';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';
import { allReconciliationItems } from './support';

/**
 * Issue 12, point 9: one bad line must not lose a statement. The sandbox's own
 * statement of real calls, interleaved with lines a CSV parser chokes on; each
 * bad line is reported as malformed with its (physical) line number, and every
 * good line still reconciles.
 */
describe('reconciliation: bad lines are reported, the rest reconciles', () => {
  let h: VerificationHarness;
  let finance: string;
  let header: string;
  /** The sandbox's statement lines (one per charged call), in call order. */
  let good: string[];
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  const uploadFile = (csv: string | Buffer) =>
    h.t.http
      .post('/v1/billing/reconciliations')
      .set(as(finance))
      .attach('file', Buffer.isBuffer(csv) ? csv : Buffer.from(csv), 'statement.csv');
  const uploadBody = (csv: string | Buffer) =>
    h.t.http
      .post('/v1/billing/reconciliations')
      .set(as(finance))
      .set('Content-Type', 'text/csv')
      .send(Buffer.isBuffer(csv) ? csv : Buffer.from(csv));

  const allItems = (id: string) => allReconciliationItems(h.t, finance, id);

  beforeAll(async () => {
    h = await startWithSandbox();
    const client = (await h.t.keyFor('client', 'lines')).key;
    finance = (await h.t.keyFor('finance')).key;
    for (let i = 0; i < 8; i++) {
      await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send({ name: KNOWN[i].name, id_card: KNOWN[i].id_card })
        .expect(201);
    }
    [header, ...good] = h.sandbox.statementCsv().trim().split('\n');
    expect(good).toHaveLength(8);
  });
  afterAll(() => h.close());

  /** A statement line of a trace id nobody has (it would be missing_internal if it were readable). */
  const stranger = (trace: string) => `${trace},2026-11-25T10:00:00.000Z,0,true,50`;

  it.each([
    ['multipart', uploadFile],
    ['text/csv body', uploadBody],
  ])(
    'reports an unbalanced quote, a NUL byte and too many fields by line number, and matches every other line (%s)',
    async (_how, upload) => {
      const [a, b, c, d, e, f, g, last] = good;
      const [t, at, result, charged, amount] = f.split(',');
      const text =
        '\uFEFF' +
        `${header}\r\n` + // 1 (BOM, CRLF)
        `${a}\n` + // 2
        `quote-1,"2026-11-25T10:00:00.000Z,0,true,50\n` + // 3: unbalanced quote in the middle
        `${b}\r\n` + // 4
        `${stranger('nul-\u0000-1')}\n` + // 5: NUL byte
        `${c},extra\n` + // 6: too many fields (a real trace id: the line still must not count)
        `${c}\r\n` + // 7
        `${d}\n` + // 8
        `${t},${at},"${result}",${charged},"${amount}\n"\r\n` + // 9-10: a quoted field with an embedded newline (valid)
        `\n` + // 11: blank
        `${e}\r\n` + // 12
        `${g}\n` + // 13
        `${last}`; // 14: no line ending
      const res = await upload(text).expect(201);
      const bytes = Buffer.from(text, 'utf8');
      expect(res.body).toMatchObject({
        file_bytes: bytes.length,
        file_sha256: createHash('sha256').update(bytes).digest('hex'),
        line_count: 11,
        counts: { matched: 8, malformed: 3, missing_internal: 0, missing_vendor: 0, duplicate: 0, differences: 3 },
      });
      const items = await allItems(res.body.id);
      const malformed = items.filter((i) => i.status === 'malformed');
      expect(malformed.map((i) => [i.line_no, i.trace_id, i.problem?.split(':')[0]])).toEqual([
        [3, 'quote-1', 'unreadable CSV'],
        [5, 'nul--1', 'unreadable CSV'],
        [6, c.split(',')[0], 'expected 5 fields, found 6'],
      ]);
      expect(malformed[0].problem).toContain('quote');
      expect(malformed[1].problem).toContain('NUL');
      const matched = items.filter((i) => i.status === 'matched');
      expect(matched.map((i) => i.line_no)).toEqual([2, 4, 7, 8, 9, 12, 13, 14]);
      expect(new Set(matched.map((i) => i.trace_id))).toEqual(new Set(good.map((l) => l.split(',')[0])));
    },
  );

  it('an unbalanced quote that never closes, early in a statement larger than a record may be, loses only its line', async () => {
    const strangers = Array.from({ length: 3000 }, (_, i) => stranger(`far-${i}`));
    const lines = [header, good[0], 'open-1,"2026-11-25T10:00:00.000Z,0,true,50', ...strangers, ...good.slice(1)];
    expect(lines.join('\n').length).toBeGreaterThan(64 * 1024);
    const res = await uploadFile(lines.join('\n') + '\n').expect(201);
    expect(res.body.counts).toMatchObject({ matched: 8, malformed: 1, missing_internal: 3000, missing_vendor: 0 });
    const items = await allItems(res.body.id);
    expect(items.filter((i) => i.status === 'malformed').map((i) => [i.line_no, i.trace_id])).toEqual([[3, 'open-1']]);
    const strangerLines = items.filter((i) => i.status === 'missing_internal').map((i) => i.line_no);
    expect(strangerLines).toEqual(strangers.map((_, i) => 4 + i));
  });

  it('an unbalanced quote that a later line seems to close still loses only its own line', async () => {
    const lines = [
      header,
      'open-2,2026-11-25T10:00:00.000Z,"0,true,50', // 2: opens a quote…
      ...good.slice(0, 4),
      `"${good[4].replace(',', '",')}`, // 7: …that this line's first quote seems to close
      ...good.slice(5),
    ];
    const res = await uploadBody(lines.join('\r\n')).expect(201);
    expect(res.body.counts).toMatchObject({ matched: 8, malformed: 1, missing_vendor: 0 });
    const items = await allItems(res.body.id);
    expect(items.filter((i) => i.status === 'malformed').map((i) => i.line_no)).toEqual([2]);
  });

  it('refuses a large file that is not a statement with 400 at once, whole or multipart, storing nothing', async () => {
    const before = await h.t.prisma.reconciliation.count();
    const junk = Buffer.from('name,id_card\n' + 'x,y\n'.repeat(1_000_000));
    const asBody = await uploadBody(junk).expect(400);
    expect(asBody.body.errors).toEqual([{ field: 'file', message: expect.stringContaining('not a vendor statement') }]);
    await uploadFile(junk).expect(400);
    // A NUL in the header line is no header either.
    await uploadBody(`trace_id,called_at,result,charged,amount\u0000\n${good[0]}\n`).expect(400);
    expect(await h.t.prisma.reconciliation.count()).toBe(before);
  });

  it('invalid UTF-8 and a line far over the record limit are malformed lines too, not a refused upload', async () => {
    const text = Buffer.concat([
      Buffer.from(`${header}\n${good[0]}\n`),
      Buffer.from([0x74, 0x72, 0xff, 0xfe, 0x2c, 0x0a]), // line 3: "tr\xff\xfe,"
      Buffer.from(`${'x'.repeat(70 * 1024)},2026-11-25T10:00:00.000Z,0,true,50\n`), // line 4
      Buffer.from(good.slice(1).join('\n')),
    ]);
    const res = await uploadFile(text).expect(201);
    expect(res.body.counts).toMatchObject({ matched: 8, malformed: 2, missing_vendor: 0 });
    const items = await allItems(res.body.id);
    expect(items.filter((i) => i.status === 'malformed').map((i) => i.line_no)).toEqual([3, 4]);
  });

  it.each([
    [
      'ends inside the file part',
      '--XX\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\nContent-Type: text/csv\r\n\r\ntrace_id,called_at,result,charged,amount\n',
    ],
    [
      'ends with a bare boundary',
      '--XX\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\ntrace_id,called_at,result,charged,amount\n--XX',
    ],
    ['ends in the part headers', '--XX\r\nContent-Disposition: form-data; name="file"; filen'],
  ])('a multipart body that %s is a 400, and the process lives on', async (_what, body) => {
    const res = await h.t.http
      .post('/v1/billing/reconciliations')
      .set(as(finance))
      .set('Content-Type', 'multipart/form-data; boundary=XX')
      .send(Buffer.from(body));
    expect(res.status).toBe(400);
    expect(res.body.type).toMatch(/^urn:idgate:problem:/);
    await new Promise((r) => setImmediate(r));
    await h.t.http.get('/health/live').expect(200);
  });
});
