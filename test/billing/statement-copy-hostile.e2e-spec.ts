import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse } from 'csv-parse/sync';
import pg from 'pg';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';
import { allReconciliationItems } from './support';

/**
 * Issue 15: the statement is staged with COPY, and COPY's own CSV reader aborts the whole file at an
 * unbalanced quote or a NUL byte (and its text format at invalid UTF-8 or a stray backslash). Lines
 * like that, anywhere in the file, must each be reported with their line number while every other
 * line reconciles, and the money must come out exact: counts, amounts and settlements.
 */
describe('reconciliation: lines a COPY would choke on', () => {
  let h: VerificationHarness;
  let finance: string;
  let admin: pg.Client;
  let base: string;
  /** Verification per label, in call order. */
  const calls: Record<string, { id: string; trace: string | null }> = {};
  let header: string;
  /** The sandbox's statement lines: ok1..ok4, http500_charged, timeout_charged. */
  let good: string[];
  let from: string;
  let to: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  const allItems = (id: string) => allReconciliationItems(h.t, finance, id);

  const charges = async () =>
    new Map(
      (
        await admin.query<{
          id: string;
          charge_status: string;
          amount: number | null;
          upstream_trace_id: string | null;
        }>(`SELECT id::text AS id, charge_status::text AS charge_status, amount, upstream_trace_id FROM verifications`)
      ).rows.map((r) => [r.id, r]),
    );

  beforeAll(async () => {
    h = await startWithSandbox({ upstream: { timeoutMs: 500, breakerThreshold: 1000 } });
    const client = (await h.t.keyFor('client', 'hostile')).key;
    finance = (await h.t.keyFor('finance')).key;
    await h.t.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(h.t.app.getHttpServer().address() as AddressInfo).port}`;
    admin = new pg.Client({ connectionString: h.t.db.adminUrl });
    await admin.connect();

    from = new Date(Date.now() - 60_000).toISOString();
    const submit = async (label: string, i: number, fault?: string) => {
      const req = h.t.http.post('/v1/verifications').set(as(client));
      if (fault) req.set('X-Sandbox-Fault', fault);
      const res = await req.send({ name: KNOWN[i].name, id_card: KNOWN[i].id_card });
      expect([200, 201]).toContain(res.status);
      calls[label] = { id: res.body.id, trace: res.body.upstream_trace_id };
    };
    await submit('ok1', 0);
    await submit('ok2', 1);
    await submit('http500_charged', 2, 'http500');
    await submit('ok3', 3);
    await submit('timeout_charged', 4, 'timeout');
    await submit('timeout_uncharged', 5, 'timeout,uncharged');
    await submit('ok4', 6);
    to = new Date(Date.now() + 60_000).toISOString();
    [header, ...good] = h.sandbox.statementCsv().trim().split('\n');
    expect(good).toHaveLength(6);
    expect(good.every((l) => l.endsWith(',true,50'))).toBe(true);
  });
  afterAll(async () => {
    await admin?.end();
    await h?.close();
  });

  it('reports every hostile line by number, reconciles the rest, and the money is exact', async () => {
    const lineOf = (label: string) => good.find((l) => l.startsWith(`${calls[label].trace},`))!;
    // The call that timed out never learnt its trace id: its line is the one no trace id of ours starts.
    const timedOut = good.find((l) => !Object.values(calls).some((c) => c.trace && l.startsWith(`${c.trace},`)))!;
    expect(timedOut).toBeDefined();
    const text = Buffer.concat([
      Buffer.from(`\uFEFF${header}\r\n`), // 1: BOM, CRLF
      Buffer.from(`${lineOf('ok1')}\n`), // 2
      Buffer.from('"unbalanced,2026-11-25T10:00:00Z,0,true,50\n'), // 3: a quote that never closes, mid-file
      Buffer.from(`${lineOf('ok2')}\r\n`), // 4
      Buffer.from('nul\u0000id,2026-11-25T10:00:00Z,0,true,50\n'), // 5: a NUL byte
      Buffer.from(`${lineOf('ok3')}\r`), // 6: CR alone
      Buffer.concat([
        Buffer.from('bad'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('utf8,2026-11-25T10:00:00Z,0,true,50\n'),
      ]), // 7
      Buffer.from(`${'y'.repeat(70 * 1024)},2026-11-25T10:00:00Z,0,true,50\n`), // 8: over the record limit
      Buffer.from('=1+2,2026-11-25T10:00:00Z,0,true,50\n'), // 9: a formula
      Buffer.from('back\\slash\ttab,2026-11-25T10:00:00Z,0,true,50\n'), // 10: COPY text's escape and delimiter
      Buffer.from('stranger-max,2026-11-25T10:00:00Z,0,true,999999999\n'), // 11: the largest amount (not ours)
      Buffer.from('stranger-big,2026-11-25T10:00:00Z,0,true,9999999999\n'), // 12: an amount too large
      Buffer.from('stranger-old,0001-01-02T00:00:00Z,0,false,0\n'), // 13: the earliest instant
      Buffer.from('stranger-future,9999-12-31T23:59:59.999Z,-1,false,0\n'), // 14: the latest instant
      Buffer.from('stranger-year0,0000-01-01T00:00:00Z,0,true,50\n'), // 15: no such year
      Buffer.from(`${lineOf('ok4')}\n`), // 16
      Buffer.from(`${lineOf('http500_charged')}\n`), // 17: unknown to us, its trace id known
      Buffer.from(`${lineOf('ok1')}\n`), // 18: billed twice
      Buffer.from(timedOut), // 19: timed out, no trace id of ours (paired by time); no final newline
    ]);
    const eventsBefore = await h.t.prisma.auditEvent.count({ where: { action: 'verification.settled' } });
    const res = await h.t.http
      .post('/v1/billing/reconciliations')
      .query({ from, to })
      .set(as(finance))
      .set('Content-Type', 'text/csv')
      .send(text)
      .expect(201);
    expect(res.body).toMatchObject({
      line_count: 18,
      file_bytes: text.length,
      counts: {
        matched: 6,
        malformed: 8,
        missing_internal: 3,
        duplicate: 1,
        not_billed: 1,
        missing_vendor: 0,
        charge_mismatch: 0,
        amount_mismatch: 0,
        result_mismatch: 0,
        differences: 12,
      },
      // Billed: six calls of ours, one of them twice, and the stranger at the largest amount.
      amounts: { vendor_total: 7 * 50 + 999_999_999, internal_total: 6 * 50, difference: 50 + 999_999_999 },
      settled: { charged: 2, not_charged: 1 },
    });

    const items = await allItems(res.body.id);
    const malformed = items.filter((i) => i.status === 'malformed');
    expect(malformed.map((i) => [i.line_no, i.trace_id, i.problem?.split(':')[0]])).toEqual([
      [3, 'unbalanced', 'unreadable CSV'],
      [5, 'nulid', 'unreadable CSV'],
      [7, 'bad\uFFFD\uFFFDutf8', 'trace_id'],
      [8, 'y'.repeat(128), 'unreadable CSV'],
      [9, '=1+2', 'trace_id'],
      [10, 'back\\slashtab', 'trace_id'],
      [12, 'stranger-big', 'amount'],
      [15, 'stranger-year0', 'called_at'],
    ]);
    expect(malformed.map((i) => i.problem)).toEqual([
      expect.stringContaining('quote'),
      expect.stringContaining('NUL'),
      expect.any(String),
      expect.stringContaining('longer than'),
      expect.any(String),
      expect.any(String),
      expect.any(String),
      expect.stringContaining('between 0001-01-02 and 9999-12-31'),
    ]);
    expect(items.filter((i) => i.status === 'matched').map((i) => [i.line_no, i.verification_id])).toEqual([
      [2, calls.ok1.id],
      [4, calls.ok2.id],
      [6, calls.ok3.id],
      [16, calls.ok4.id],
      [17, calls.http500_charged.id],
      [19, calls.timeout_charged.id],
    ]);
    expect(items.find((i) => i.line_no === 19)).toMatchObject({ match_method: 'time_window', settlement: 'charged' });
    expect(items.find((i) => i.line_no === 17)).toMatchObject({ match_method: 'trace_id', settlement: 'charged' });
    expect(items.find((i) => i.status === 'duplicate')).toMatchObject({ line_no: 18, verification_id: calls.ok1.id });
    expect(
      items.filter((i) => i.status === 'missing_internal').map((i) => [i.line_no, i.called_at, i.vendor_amount]),
    ).toEqual([
      [11, '2026-11-25T10:00:00.000Z', 999_999_999],
      [13, '0001-01-02T00:00:00.000Z', 0],
      [14, '9999-12-31T23:59:59.999Z', 0],
    ]);
    expect(items.find((i) => i.status === 'not_billed')).toMatchObject({
      line_no: null,
      verification_id: calls.timeout_uncharged.id,
      settlement: 'not_charged',
      internal_amount: 0,
    });

    // The money afterwards: the two charged unknowns are charged at 50, the absent one not charged.
    const after = await charges();
    expect(after.get(calls.http500_charged.id)).toMatchObject({ charge_status: 'charged', amount: 50 });
    expect(after.get(calls.timeout_charged.id)).toMatchObject({
      charge_status: 'charged',
      amount: 50,
      upstream_trace_id: timedOut.split(',')[0],
    });
    expect(after.get(calls.timeout_uncharged.id)).toMatchObject({ charge_status: 'not_charged', amount: 0 });
    for (const label of ['ok1', 'ok2', 'ok3', 'ok4']) {
      expect(after.get(calls[label].id)).toMatchObject({ charge_status: 'charged', amount: 50 });
    }
    expect((await h.t.prisma.auditEvent.count({ where: { action: 'verification.settled' } })) - eventsBefore).toBe(3);

    // The formula is shown as text in the export, and the export lists every item.
    const csv = await h.t.http.get(`/v1/billing/reconciliations/${res.body.id}/export`).set(as(finance)).expect(200);
    const records = parse(csv.text, { columns: true }) as Array<Record<string, string>>;
    expect(records).toHaveLength(items.length);
    expect(records.find((r) => r.line_no === '9')?.trace_id).toBe("'=1+2");
  });

  it('a long statement sent in two halves with a pause, a quote and a NUL deep inside, reconciles exactly', async () => {
    // About 20,000 lines: several COPY batches, and the pause makes the loader commit and reconnect.
    const lines = [header];
    const strangers: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const lineNo = lines.length + 1;
      if (i === 9_000) lines.push('"open,2026-11-25T10:00:00Z,0,true,50');
      else if (i === 15_000) lines.push('nul-\u0000-line,2026-11-25T10:00:00Z,0,true,50');
      else {
        lines.push(
          `far-${i},2026-11-25T10:${String(i % 60).padStart(2, '0')}:00.000Z,0,${i % 3 === 0},${i % 3 === 0 ? 50 : 0}`,
        );
        strangers.push(lineNo);
      }
    }
    lines.push(...good);
    const body = lines.join('\n') + '\n';
    const half = Math.floor(body.length / 2);

    const url = new URL('/v1/billing/reconciliations', base);
    url.searchParams.set('from', from);
    url.searchParams.set('to', to);
    const req = http.request(url, {
      method: 'POST',
      headers: { ...as(finance), 'content-type': 'text/csv', 'transfer-encoding': 'chunked' },
    });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
    });
    req.write(body.slice(0, half));
    await new Promise((r) => setTimeout(r, 1000));
    // Waiting for the second half, the loader holds no connection.
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'idgate-reconciliation'`,
    );
    expect(rows[0].n).toBe(0);
    req.end(body.slice(half));
    const res = await answer;
    expect(res.status).toBe(201);
    const summary = JSON.parse(res.body) as {
      id: string;
      line_count: number;
      counts: Record<string, number>;
      amounts: { vendor_total: number; internal_total: number };
      settled: Record<string, number>;
    };
    const chargedStrangers = Array.from({ length: 20_000 }, (_, i) => i).filter(
      (i) => i % 3 === 0 && i !== 9_000 && i !== 15_000,
    ).length;
    expect(summary).toMatchObject({
      line_count: 20_000 + good.length,
      counts: { malformed: 2, missing_internal: 19_998, matched: 6, missing_vendor: 0, duplicate: 0 },
      // Everything of ours was settled by the first statement already: nothing moves now.
      settled: { charged: 0, not_charged: 0 },
      amounts: { vendor_total: (chargedStrangers + 6) * 50, internal_total: 6 * 50 },
    });
    const items = await allItems(summary.id);
    expect(items.filter((i) => i.status === 'malformed').map((i) => [i.line_no, i.trace_id])).toEqual([
      [9_002, 'open'],
      [15_002, 'nul--line'],
    ]);
    expect(items.filter((i) => i.status === 'missing_internal').map((i) => i.line_no)).toEqual(strangers);

    // Once answered, nothing of the statement stays staged.
    for (let i = 0; i < 50; i++) {
      const left = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM reconciliation_lines WHERE reconciliation_id = $1`,
        [summary.id],
      );
      if (left.rows[0].n === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('staged lines were not removed');
  });
});
