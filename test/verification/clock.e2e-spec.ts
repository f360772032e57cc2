import pg from 'pg';
import { VerificationSweeper } from '../../src/verification/verification-sweeper.service';
import { sweepDeadlineMs } from '../../src/verification/verification-rules';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

/*
 * Issue 14: completed_at was 1–33 ms before created_at on local rejections (two readings of
 * the app's clock, taken in the wrong order). Every timestamp of a verification now comes
 * from the database's clock (migration *_verification_clock): these tests write hundreds of
 * verifications through every path that sets one (local rejection, reuse, settle, sweep) and
 * check that each stored value lies between two readings of the database's clock taken
 * around the writes, that completed_at >= created_at, and that the API answers the stored
 * values. That app-supplied times are overridden is shown with values far off (a skewed app
 * clock): the database's reading wins.
 */
jest.setTimeout(180_000);

type Stamps = { id: string; created_at: Date; completed_at: Date | null };

/** `n` at a time: the test app's admission queue is bounded, and this machine has 2 cores. */
async function inBatches<T>(count: number, size: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += size) {
    const batch = Array.from({ length: Math.min(size, count - start) }, (_, k) => fn(start + k));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** An ID number with a wrong check character: a local rejection (-2), no upstream call. */
function wrongCheckCharacter(idCard: string): string {
  const last = idCard.slice(-1).toUpperCase();
  return idCard.slice(0, 17) + (last === '0' ? '1' : '0');
}

describe("a verification's timestamps come from one clock, the database's", () => {
  let h: VerificationHarness;
  let db: pg.Client;
  let admin: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    h = await startWithSandbox({ upstream: { mode: 'sandbox', timeoutMs: 5000, breakerThreshold: 1000 } });
    admin = (await h.t.keyFor('admin')).key;
    db = new pg.Client({ connectionString: h.t.db.adminUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await h?.close();
  });

  /** The database's clock, at the column's precision (rounding is monotonic, so bounds stay bounds). */
  async function databaseNow(): Promise<Date> {
    const { rows } = await db.query<{ t: Date }>('SELECT clock_timestamp()::timestamptz(3) AS t');
    return rows[0].t;
  }

  async function stamps(ids: string[]): Promise<Map<string, Stamps>> {
    const { rows } = await db.query<Stamps>(
      'SELECT id::text AS id, created_at, completed_at FROM verifications WHERE id = ANY($1::uuid[])',
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** Every row: stamped by the database between `before` and `after`, in order, and answered as stored. */
  async function expectOneClock(
    answers: Array<{ id: string; created_at: string; completed_at: string | null }>,
    before: Date,
    after: Date,
  ): Promise<void> {
    const stored = await stamps(answers.map((a) => a.id));
    expect(stored.size).toBe(answers.length);
    const problems: string[] = [];
    for (const answer of answers) {
      const row = stored.get(answer.id)!;
      const created = row.created_at.getTime();
      const completed = row.completed_at?.getTime();
      if (created < before.getTime() || created > after.getTime()) problems.push(`${row.id}: created_at off the clock`);
      if (completed === undefined) problems.push(`${row.id}: not completed`);
      else {
        if (completed < created) problems.push(`${row.id}: completed_at ${created - completed} ms before created_at`);
        if (completed > after.getTime()) problems.push(`${row.id}: completed_at after the last reading`);
      }
      // The API answers what was stored, not the app's own reading of the time.
      if (answer.created_at !== row.created_at.toISOString()) problems.push(`${row.id}: created_at answered differs`);
      if (answer.completed_at !== (row.completed_at?.toISOString() ?? null)) {
        problems.push(`${row.id}: completed_at answered differs`);
      }
    }
    expect(problems).toEqual([]);
  }

  it('local rejections (-2, -3): 300 of them, at once in batches', async () => {
    const client = (await h.t.keyFor('client', 'clock-local')).key;
    const before = await databaseNow();
    const answers = await inBatches(300, 25, async (i) => {
      const person = KNOWN[i % KNOWN.length];
      // Mostly wrong check characters (-2); every fifth a name the rules refuse (-3).
      const body =
        i % 5 === 0
          ? { name: `${person.name}3`, id_card: person.id_card }
          : { name: person.name, id_card: wrongCheckCharacter(person.id_card) };
      const res = await h.t.http.post('/v1/verifications').set(as(client)).send(body).expect(201);
      expect(res.body.result).toBe(i % 5 === 0 ? '-3' : '-2');
      return res.body as { id: string; created_at: string; completed_at: string | null };
    });
    const after = await databaseNow();
    await expectOneClock(answers, before, after);
  });

  it('settled upstream answers: 120 calls to the sandbox', async () => {
    const client = (await h.t.keyFor('client', 'clock-settle')).key;
    const before = await databaseNow();
    const answers = await inBatches(120, 12, async (i) => {
      const person = KNOWN[i % KNOWN.length];
      const res = await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send({ name: person.name, id_card: person.id_card })
        .expect(201);
      expect(res.body.status).toBe('completed');
      return res.body as { id: string; created_at: string; completed_at: string | null };
    });
    const after = await databaseNow();
    await expectOneClock(answers, before, after);
  });

  it('reuses: 150 repeats answered from the reuse window', async () => {
    const { key: client, clientId } = await h.t.keyFor('client', 'clock-reuse');
    await h.t.http
      .put(`/v1/clients/${clientId}/policy`)
      .set(as(admin))
      .send({ daily_limit: null, monthly_spend_cap: null, reuse_window_seconds: 3600 })
      .expect(200);
    const people = KNOWN.slice(200, 210);
    for (const p of people) {
      await h.t.http.post('/v1/verifications').set(as(client)).send({ name: p.name, id_card: p.id_card }).expect(201);
    }
    const before = await databaseNow();
    const answers = await inBatches(150, 15, async (i) => {
      const p = people[i % people.length];
      const res = await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send({ name: p.name, id_card: p.id_card })
        .expect(201);
      expect(res.body.reused).toBe(true);
      return res.body as { id: string; created_at: string; completed_at: string | null };
    });
    const after = await databaseNow();
    await expectOneClock(answers, before, after);
  });

  it('sweeps: 150 abandoned pending rows written with a skewed clock, swept with another', async () => {
    const clientRow = await h.t.keyFor('client', 'clock-sweep');
    const hourAgo = new Date(Date.now() - 3_600_000);
    const before = await databaseNow();
    // Through Prisma as the app writes (runtime role), with the app's idea of the time an hour off.
    const made = await inBatches(150, 25, (i) =>
      h.t.prisma.verification.create({
        data: {
          clientId: clientRow.clientId!,
          apiKeyId: clientRow.id,
          channel: 'api',
          mode: 'name_id_card',
          reference: `clock-sweep-${i}`,
          status: 'pending',
          chargeStatus: 'unknown',
          unitPrice: 50,
          currency: 'CNY',
          createdAt: hourAgo,
        },
      }),
    );
    const inserted = await databaseNow();
    for (const row of made) {
      // What Prisma returns is what the database wrote (RETURNING), not what it was given.
      expect(row.createdAt.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(row.createdAt.getTime()).toBeLessThanOrEqual(inserted.getTime());
    }
    // The rows are fresh by the database's clock: a sweep "now" leaves them alone; one whose clock runs
    // past the deadline takes them, and still its completed_at is the database's, not that clock's.
    const sweeper = h.t.app.get(VerificationSweeper);
    const ahead = new Date(Date.now() + sweepDeadlineMs(h.t.config.upstream) + 60_000);
    expect(await sweeper.sweep(ahead)).toBeGreaterThanOrEqual(made.length);
    const after = await databaseNow();
    const swept = await stamps(made.map((r) => r.id));
    for (const row of swept.values()) {
      expect(row.created_at.getTime()).toBeLessThanOrEqual(inserted.getTime());
      expect(row.completed_at!.getTime()).toBeGreaterThanOrEqual(row.created_at.getTime());
      expect(row.completed_at!.getTime()).toBeGreaterThanOrEqual(inserted.getTime());
      expect(row.completed_at!.getTime()).toBeLessThanOrEqual(after.getTime());
    }
    const reads = await Promise.all(
      made.slice(0, 20).map((r) => h.t.http.get(`/v1/verifications/${r.id}`).set(as(clientRow.key)).expect(200)),
    );
    for (const read of reads) {
      const row = swept.get(read.body.id)!;
      expect(read.body).toMatchObject({
        status: 'unknown',
        created_at: row.created_at.toISOString(),
        completed_at: row.completed_at!.toISOString(),
      });
    }
  });

  it('an update that sets completed_at is stamped; one that does not keeps it; created_at moved by hand keeps the order', async () => {
    const clientRow = await h.t.keyFor('client', 'clock-update');
    const row = await h.t.prisma.verification.create({
      data: {
        clientId: clientRow.clientId!,
        apiKeyId: clientRow.id,
        channel: 'api',
        mode: 'name_id_card',
        status: 'pending',
        chargeStatus: 'unknown',
        unitPrice: 50,
        currency: 'CNY',
      },
    });
    // A late answer written with a clock a day behind: the database's time, not before created_at.
    const before = await databaseNow();
    const settled = await h.t.prisma.verification.update({
      where: { id: row.id },
      data: { status: 'completed', result: '0', chargeStatus: 'charged', amount: 50, completedAt: new Date(0) },
    });
    const after = await databaseNow();
    expect(settled.completedAt!.getTime()).toBeGreaterThanOrEqual(Math.max(before.getTime(), row.createdAt.getTime()));
    expect(settled.completedAt!.getTime()).toBeLessThanOrEqual(after.getTime());
    expect(settled.createdAt).toEqual(row.createdAt);

    // Statements that do not touch the timestamps (charge settlement, purges) leave them as they are.
    const touched = await h.t.prisma.verification.update({ where: { id: row.id }, data: { description: 'later' } });
    expect([touched.createdAt, touched.completedAt]).toEqual([settled.createdAt, settled.completedAt]);

    // created_at moved by hand (tests age rows so): kept as given, and completed_at never falls before it.
    await db.query(`UPDATE verifications SET created_at = created_at - interval '40 days' WHERE id = $1`, [row.id]);
    const aged = (await stamps([row.id])).get(row.id)!;
    expect(aged.created_at.getTime()).toBe(row.createdAt.getTime() - 40 * 86_400_000);
    expect(aged.completed_at).toEqual(settled.completedAt);
    await db.query(`UPDATE verifications SET created_at = completed_at + interval '1 hour' WHERE id = $1`, [row.id]);
    const moved = (await stamps([row.id])).get(row.id)!;
    expect(moved.completed_at).toEqual(moved.created_at);
  });

  it('with the app process clock an hour behind, local rejections and settles still carry the database time', async () => {
    const client = (await h.t.keyFor('client', 'clock-skew')).key;
    const before = await databaseNow();
    // Only Date is faked (timers stay real): the app's `new Date()` and Prisma's now() run an hour slow.
    jest.useFakeTimers({
      now: Date.now() - 3_600_000,
      advanceTimers: true,
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'requestAnimationFrame',
        'cancelAnimationFrame',
        'requestIdleCallback',
        'cancelIdleCallback',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    });
    let answers: Array<{ id: string; created_at: string; completed_at: string | null }>;
    try {
      expect(Math.abs(Date.now() + 3_600_000 - before.getTime())).toBeLessThan(60_000);
      answers = await inBatches(60, 12, async (i) => {
        const person = KNOWN[(i * 7) % KNOWN.length];
        const body =
          i % 2 === 0
            ? { name: person.name, id_card: wrongCheckCharacter(person.id_card) }
            : { name: person.name, id_card: person.id_card };
        const res = await h.t.http.post('/v1/verifications').set(as(client)).send(body).expect(201);
        return res.body as { id: string; created_at: string; completed_at: string | null };
      });
    } finally {
      jest.useRealTimers();
    }
    const after = await databaseNow();
    await expectOneClock(answers, before, after);
  });
});
