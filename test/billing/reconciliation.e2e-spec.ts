import { randomUUID } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import type { ReconciliationItemView } from '../../src/billing/reconciliation/reconciliation.service';
import { classifyLine } from '../../src/billing/reconciliation/statement-rules';
import { KNOWN, startWithSandbox, UNKNOWN_VALID_ID, VerificationHarness } from '../support/verification-app';

type Item = ReconciliationItemView;

/**
 * Issue 6, item 5: traffic through idgate against the real sandbox (with
 * indeterminate faults), the sandbox's own statement reconciled untampered
 * (zero differences, unknowns settled) and tampered (exactly the tampered
 * lines reported), re-runs that change nothing, refusals and roles.
 */
describe('billing reconciliation against the sandbox statement', () => {
  let h: VerificationHarness;
  let client: string;
  let finance: string;
  let admin: string;
  let compliance: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  /** Verification id per label, in call order. */
  const calls: Record<string, { id: string; body: Record<string, unknown> }> = {};
  let statement: string;
  let firstRun: Record<string, unknown>;

  const submit = async (label: string, body: Record<string, unknown>, fault?: string) => {
    const req = h.t.http.post('/v1/verifications').set(as(client));
    if (fault) req.set('X-Sandbox-Fault', fault);
    const res = await req.send(body);
    expect([200, 201]).toContain(res.status);
    calls[label] = { id: res.body.id, body: res.body };
    return res.body;
  };

  const upload = (csv: string, key = finance, name = 'statement.csv') =>
    h.t.http.post('/v1/billing/reconciliations').set(as(key)).attach('file', Buffer.from(csv), name);

  const allItems = async (id: string, status?: string): Promise<Item[]> => {
    const out: Item[] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string | number> = { limit: 3 };
      if (cursor) query.cursor = cursor;
      if (status) query.status = status;
      const page = await h.t.http
        .get(`/v1/billing/reconciliations/${id}/items`)
        .query(query)
        .set(as(finance))
        .expect(200);
      out.push(...(page.body.items as Item[]));
      cursor = page.body.next_cursor;
    } while (cursor);
    return out;
  };

  const chargeRows = () =>
    h.t.prisma.$queryRaw<
      Array<{
        id: string;
        status: string;
        charge_status: string;
        amount: number | null;
        upstream_trace_id: string | null;
      }>
    >`
      SELECT id::text AS id, status::text AS status, charge_status::text AS charge_status, amount, upstream_trace_id
      FROM verifications ORDER BY id`;

  const settledEvents = () => h.t.prisma.auditEvent.count({ where: { action: 'verification.settled' } });

  beforeAll(async () => {
    // Short timeout for the `timeout` fault; breaker off for deliberate faults.
    h = await startWithSandbox({ upstream: { timeoutMs: 500, breakerThreshold: 1000 } });
    client = (await h.t.keyFor('client', 'acme')).key;
    finance = (await h.t.keyFor('finance')).key;
    admin = (await h.t.keyFor('admin')).key;
    compliance = (await h.t.keyFor('compliance')).key;

    const p = (i: number) => ({ name: KNOWN[i].name, id_card: KNOWN[i].id_card });
    await submit('ok1', p(0));
    await submit('ok2', p(1));
    await submit('mismatch', { name: '王小明', id_card: KNOWN[2].id_card });
    await submit('no_record', { name: '王小明', id_card: UNKNOWN_VALID_ID });
    await submit('local_reject', { name: '王小明', id_card: '110101199003071234' });
    await submit('ok3', p(3));
    // Indeterminate outcomes: charged by the vendor, unknown to us (with and without a trace id).
    await submit('http500_charged', p(4), 'http500');
    await submit('timeout_charged', p(5), 'timeout');
    await submit('garbage_charged', p(6), 'garbage');
    // Indeterminate outcomes the vendor did not charge.
    await submit('timeout_uncharged', p(7), 'timeout,uncharged');
    await submit('http500_uncharged', p(8), 'http500,uncharged');
    await submit('ok4', p(9));
    await submit('ok5', p(10));
    statement = h.sandbox.statementCsv();
  });
  afterAll(() => h.close());

  it('the traffic left unknown calls, some without a trace id, and a statement of the charged ones', () => {
    for (const label of [
      'http500_charged',
      'timeout_charged',
      'garbage_charged',
      'timeout_uncharged',
      'http500_uncharged',
    ]) {
      expect(calls[label].body).toMatchObject({ status: 'unknown', charged: null });
    }
    expect(calls.timeout_charged.body.upstream_trace_id).toBeNull();
    expect(calls.http500_charged.body.upstream_trace_id).toEqual(expect.any(String));
    expect(calls.local_reject.body).toMatchObject({ result: '-2', charged: false });
    // ok1..ok5, mismatch, and the three charged faults.
    expect(statement.trim().split('\n')).toHaveLength(1 + 9);
  });

  it('the untampered statement reconciles with zero differences and settles every unknown call', async () => {
    const eventsBefore = await settledEvents();
    const res = await upload(statement).expect(201);
    firstRun = res.body;
    expect(res.body).toMatchObject({
      line_count: 9,
      currency: 'CNY',
      period: { source: 'statement' },
      counts: {
        matched: 9,
        missing_internal: 0,
        missing_vendor: 0,
        charge_mismatch: 0,
        amount_mismatch: 0,
        result_mismatch: 0,
        duplicate: 0,
        malformed: 0,
        not_billed: 2,
        differences: 0,
      },
      amounts: { vendor_total: 450, internal_total: 450, difference: 0 },
      settled: { charged: 3, not_charged: 2 },
    });

    const rows = new Map((await chargeRows()).map((r) => [r.id, r]));
    for (const label of ['http500_charged', 'timeout_charged', 'garbage_charged']) {
      // Status stays unknown (the caller never got the answer); the charge is now known.
      expect(rows.get(calls[label].id)).toMatchObject({ status: 'unknown', charge_status: 'charged', amount: 50 });
    }
    for (const label of ['timeout_uncharged', 'http500_uncharged']) {
      expect(rows.get(calls[label].id)).toMatchObject({ status: 'unknown', charge_status: 'not_charged', amount: 0 });
    }
    // The timed-out call was paired by time and learnt its trace id from the statement.
    const timeoutLine = statement
      .split('\n')
      .find((l) => l.startsWith(`${rows.get(calls.timeout_charged.id)!.upstream_trace_id},`));
    expect(timeoutLine).toBeDefined();

    const items = await allItems(res.body.id);
    const timeoutItem = items.find((i) => i.verification_id === calls.timeout_charged.id)!;
    expect(timeoutItem).toMatchObject({ status: 'matched', match_method: 'time_window', settlement: 'charged' });
    expect(items.filter((i) => i.settlement !== null)).toHaveLength(5);
    expect(
      items
        .filter((i) => i.status === 'not_billed')
        .map((i) => i.verification_id)
        .sort(),
    ).toEqual([calls.timeout_uncharged.id, calls.http500_uncharged.id].sort());

    // One audit event per settled verification, and the reconciliation itself.
    expect((await settledEvents()) - eventsBefore).toBe(5);
    const settledTargets = await h.t.prisma.auditEvent.findMany({
      where: { action: 'verification.settled', details: { path: ['reconciliation_id'], equals: res.body.id } },
      select: { targetId: true },
    });
    expect(settledTargets.map((e) => e.targetId).sort()).toEqual(
      ['http500_charged', 'timeout_charged', 'garbage_charged', 'timeout_uncharged', 'http500_uncharged']
        .map((l) => calls[l].id)
        .sort(),
    );
    expect(
      await h.t.prisma.auditEvent.count({ where: { action: 'reconciliation.created', targetId: res.body.id } }),
    ).toBe(1);

    // Verifications read through the API agree.
    const seen = await h.t.http.get(`/v1/verifications/${calls.timeout_charged.id}`).set(as(client)).expect(200);
    expect(seen.body).toMatchObject({ charged: true, charge_status: 'charged', amount: 50 });
  });

  it('reconciling the same statement again gives the same answer and changes nothing', async () => {
    const before = await chargeRows();
    const eventsBefore = await settledEvents();
    // This time as a text/csv body.
    const res = await h.t.http
      .post('/v1/billing/reconciliations')
      .set(as(finance))
      .set('Content-Type', 'text/csv')
      .send(statement)
      .expect(201);
    expect(res.body.id).not.toBe(firstRun.id);
    expect(res.body.file_sha256).toBe(firstRun.file_sha256);
    expect(res.body.counts).toEqual(firstRun.counts);
    expect(res.body.amounts).toEqual(firstRun.amounts);
    expect(res.body.period).toEqual(firstRun.period);
    expect(res.body.settled).toEqual({ charged: 0, not_charged: 0 });
    expect(await chargeRows()).toEqual(before);
    expect(await settledEvents()).toBe(eventsBefore);
    // Only how our side was found and settled differs: the first run paired by time and settled; this one finds trace ids.
    const strip = (items: Item[]) =>
      items.map(({ settlement: _s, internal_charge_status: _c, match_method: _m, ...rest }) => rest);
    expect(strip(await allItems(res.body.id))).toEqual(strip(await allItems(firstRun.id as string)));
  });

  it('a tampered statement reports exactly the tampered lines', async () => {
    const [header, ...lines] = statement.trim().split('\n');
    const traceOf = (label: string) => calls[label].body.upstream_trace_id as string;
    const lineOf = (label: string) => lines.findIndex((l) => l.startsWith(`${traceOf(label)},`));
    const replace = (label: string, edit: (f: string[]) => string[]) => {
      const i = lineOf(label);
      lines[i] = edit(lines[i].split(',')).join(',');
    };
    replace('ok2', (f) => [f[0], f[1], '-1', f[3], f[4]]); // flip a result
    replace('ok3', (f) => [f[0], f[1], f[2], 'false', '0']); // flip charged
    replace('mismatch', (f) => [f[0], f[1], f[2], f[3], '65']); // change an amount
    const dropped = lines.splice(lineOf('ok4'), 1)[0]; // drop a line
    expect(dropped).toBeDefined();
    const addedTrace = randomUUID();
    const okLine = lines[lineOf('ok1')].split(',');
    lines.splice(2, 0, `${addedTrace},${okLine[1]},0,true,50`); // add a line ours never made
    lines.push('not,a,statement line'); // malformed
    lines.push(lines[lineOf('ok1')]); // billed twice
    const tampered = [header, ...lines].join('\n') + '\n';
    const lineNo = (match: (l: string) => boolean) => lines.findIndex(match) + 2;

    const res = await upload(tampered).expect(201);
    expect(res.body.settled).toEqual({ charged: 0, not_charged: 0 });
    const items = await allItems(res.body.id);
    const differences = items
      .filter((i) => i.status !== 'matched' && i.status !== 'not_billed')
      .map((i) => ({ status: i.status, line_no: i.line_no, verification_id: i.verification_id }));
    expect(differences).toEqual(
      [
        {
          status: 'result_mismatch',
          line_no: lineNo((l) => l.startsWith(traceOf('ok2'))),
          verification_id: calls.ok2.id,
        },
        { status: 'missing_internal', line_no: 4, verification_id: null },
        {
          status: 'amount_mismatch',
          line_no: lineNo((l) => l.startsWith(traceOf('mismatch'))),
          verification_id: calls.mismatch.id,
        },
        {
          status: 'charge_mismatch',
          line_no: lineNo((l) => l.startsWith(traceOf('ok3'))),
          verification_id: calls.ok3.id,
        },
        { status: 'malformed', line_no: lines.length, verification_id: null },
        { status: 'duplicate', line_no: lines.length + 1, verification_id: calls.ok1.id },
        { status: 'missing_vendor', line_no: null, verification_id: calls.ok4.id },
      ].sort((a, b) => (a.line_no ?? 1e9) - (b.line_no ?? 1e9)),
    );
    expect(items.find((i) => i.status === 'missing_internal')!.trace_id).toBe(addedTrace);
    expect(items.find((i) => i.status === 'malformed')!.problem).toContain('expected 5 fields, found 3');
    expect(res.body.counts).toMatchObject({
      matched: 5,
      missing_internal: 1,
      missing_vendor: 1,
      charge_mismatch: 1,
      amount_mismatch: 1,
      result_mismatch: 1,
      duplicate: 1,
      malformed: 1,
      differences: 7,
    });
    // Vendor: 9 lines − dropped − uncharged + added + duplicate, +15 on the changed amount; ours: all 9 charged calls.
    expect(res.body.amounts).toMatchObject({ vendor_total: 450 - 50 - 50 + 50 + 50 + 15, internal_total: 450 });
    expect(res.body.amounts.difference).toBe(res.body.amounts.vendor_total - res.body.amounts.internal_total);

    // Every stored judgement agrees with the matching rule as written in statement-rules.ts.
    for (const item of items.filter(
      (i) => i.line_no !== null && i.verification_id !== null && i.status !== 'duplicate',
    )) {
      const judged = classifyLine(
        { charged: item.vendor_charged!, result: item.vendor_result!, amount: item.vendor_amount! },
        {
          status: 'completed',
          chargeStatus: item.internal_charge_status as 'charged' | 'not_charged',
          result: item.internal_result,
          unitPrice: 50,
          amount: item.internal_amount,
        },
      );
      expect({ line: item.line_no, status: judged.status }).toEqual({ line: item.line_no, status: item.status });
    }

    // The export streams the same items as CSV.
    const csv = await h.t.http
      .get(`/v1/billing/reconciliations/${res.body.id}/export?format=csv`)
      .set(as(finance))
      .expect(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const records = parse(csv.text, { columns: true }) as Array<Record<string, string>>;
    expect(records).toHaveLength(items.length);
    expect(records.map((r) => r.status)).toEqual(items.map((i) => i.status));
    const onlyMissing = await h.t.http
      .get(`/v1/billing/reconciliations/${res.body.id}/export`)
      .query({ status: 'missing_vendor' })
      .set(as(admin))
      .expect(200);
    expect(parse(onlyMissing.text, { columns: true })).toHaveLength(1);

    // Items filtered by status, paged.
    expect((await allItems(res.body.id, 'matched')).map((i) => i.status)).toEqual(Array(5).fill('matched'));
  });

  it('refuses a file that is not a statement with 400, storing nothing', async () => {
    const before = await h.t.prisma.reconciliation.count();
    const notCsv = await upload('name,id_card\n张三,110101199003071234\n').expect(400);
    expect(notCsv.body).toMatchObject({ type: 'urn:idgate:problem:validation', errors: [{ field: 'file' }] });
    await upload('').expect(400);
    await upload(`\n${statement}`).expect(400);
    await h.t.http.post('/v1/billing/reconciliations').set(as(finance)).field('from', '2026-01-01').expect(400);
    await h.t.http
      .post('/v1/billing/reconciliations')
      .set(as(finance))
      .set('Content-Type', 'application/json')
      .send({ file: statement })
      .expect(415);
    const badPeriod = await upload(statement).query({ from: '2026-01-01' });
    expect(badPeriod.status).toBe(400);
    expect(badPeriod.body.errors).toEqual([{ field: 'to', message: expect.any(String) }]);
    expect(await h.t.prisma.reconciliation.count()).toBe(before);
    const [orphans] = await h.t.prisma.$queryRaw<Array<{ n: bigint }>>`
      SELECT count(*) AS n FROM reconciliation_lines l
      WHERE NOT EXISTS (SELECT 1 FROM reconciliations r WHERE r.id = l.reconciliation_id AND r.state = 'completed')`;
    expect(Number(orphans.n)).toBe(0);
  });

  it('reports malformed lines with their numbers and goes on with the rest', async () => {
    const [header, ...lines] = statement.trim().split('\n');
    const csv = [
      header,
      lines[0],
      'x,2026-13-01T00:00:00Z,0,true,50',
      lines[1],
      `${randomUUID()},2026-11-25T00:00:00Z,0,maybe,50`,
      '"unclosed,quote',
    ].join('\n');
    const res = await upload(csv, finance).query({ from: '2000-01-01', to: '2000-01-02' }).expect(201);
    expect(res.body.period).toEqual({
      from: '2000-01-01T00:00:00.000Z',
      to: '2000-01-02T00:00:00.000Z',
      source: 'explicit',
    });
    const malformed = await allItems(res.body.id, 'malformed');
    expect(malformed.map((i) => [i.line_no, i.problem?.split(':')[0]])).toEqual([
      [3, 'called_at'],
      [5, 'charged'],
      [6, 'unreadable CSV'],
    ]);
    expect(res.body.counts).toMatchObject({ matched: 2, malformed: 3 });
  });

  it('serves summaries and items to finance and admin only; uploads to finance only', async () => {
    const id = firstRun.id as string;
    await h.t.http.get(`/v1/billing/reconciliations/${id}`).set(as(finance)).expect(200);
    const asAdmin = await h.t.http.get(`/v1/billing/reconciliations/${id}`).set(as(admin)).expect(200);
    expect(asAdmin.body).toEqual(firstRun);
    await h.t.http.get(`/v1/billing/reconciliations/${id}`).set(as(client)).expect(403);
    await h.t.http.get(`/v1/billing/reconciliations/${id}/items`).set(as(compliance)).expect(403);
    await h.t.http.get(`/v1/billing/reconciliations/${id}`).expect(401);
    await upload(statement, admin).expect(403);
    await upload(statement, client).expect(403);
    await h.t.http.get(`/v1/billing/reconciliations/${randomUUID()}`).set(as(finance)).expect(404);
    await h.t.http.get(`/v1/billing/reconciliations/${randomUUID()}/export`).set(as(finance)).expect(404);
    const bad = await h.t.http.get('/v1/billing/reconciliations/not-a-uuid').set(as(finance)).expect(400);
    expect(bad.body.errors).toEqual([{ field: 'id', message: 'must be a UUID' }]);
  });
});
