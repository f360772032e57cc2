import { createHash } from 'node:crypto';
import { asAttacker } from '../audit/support';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

/*
 * Issue 12 (2): a role that only sees masked data cannot confirm unmasked values by
 * searching; clients search their own verifications only; every key's exact-match
 * searches (verifications and audit events, together) have an hourly budget, then
 * 429 and one security alert; and idempotency fingerprints are keyed.
 */

const BUDGET = 4;
type Person = (typeof KNOWN)[number];

/** The ~4,000 numbers a masked `110101********1234` leaves, as an attacker would try them: a few of them. */
function candidatesFor(masked: Person, n: number): string[] {
  const out: string[] = [];
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const checks = '10X98765432';
  for (let day = 1; out.length < n && day <= 28; day++) {
    const first17 = `${masked.id_card.slice(0, 6)}1990${String((day % 12) + 1).padStart(2, '0')}${String(day).padStart(2, '0')}${masked.id_card.slice(14, 17)}`;
    const sum = [...first17].reduce((s, d, i) => s + Number(d) * weights[i], 0);
    out.push(first17 + checks[sum % 11]);
  }
  out.push(masked.id_card);
  return out;
}

describe('searching by personal data (issue 12.2)', () => {
  let h: VerificationHarness;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const people = KNOWN.slice(60, 66);
  let client: string;
  let other: string;

  beforeAll(async () => {
    h = await startWithSandbox({ abuse: { piiSearchesPerHour: BUDGET } });
    client = (await h.t.keyFor('client', 'search-a')).key;
    other = (await h.t.keyFor('client', 'search-b')).key;
    for (const p of people.slice(0, 3)) {
      await h.t.http.post('/v1/verifications').set(as(client)).send({ name: p.name, id_card: p.id_card }).expect(201);
    }
    await h.t.http
      .post('/v1/verifications')
      .set(as(other))
      .send({ name: people[3].name, id_card: people[3].id_card })
      .expect(201);
  });
  afterAll(() => h.close());

  const search = (key: string, body: object) => h.t.http.post('/v1/verifications/search').set(as(key)).send(body);
  const searchEvents = async (keyId: string) =>
    h.t.prisma.auditEvent.count({
      where: { actorId: keyId, action: { in: ['verification.searched', 'audit.searched'] } },
    });

  describe('finance', () => {
    it.each([
      ['the exact ID number', (p: Person) => ({ id_card: p.id_card })],
      ['a lower-case x / spaces variant', (p: Person) => ({ id_card: ` ${p.id_card.toLowerCase()} ` })],
      ['a 15-digit number', () => ({ id_card: '360426910101007' })],
      ['a wrong number', () => ({ id_card: '110101199003071234' })],
      ['the exact name', (p: Person) => ({ name: p.name })],
      ['name and number', (p: Person) => ({ name: p.name, id_card: p.id_card })],
      ['a number with other filters', (p: Person) => ({ id_card: p.id_card, charged: 'true', limit: 1 })],
    ])('gets 403 for a search by %s, whether or not it matches, and nothing is searched', async (_, body) => {
      const finance = await h.t.keyFor('finance');
      const res = await search(finance.key, body(people[0])).expect(403);
      expect(res.body.type).toBe('urn:idgate:problem:forbidden');
      expect(await searchEvents(finance.id)).toBe(0);
      const denied = await h.t.prisma.auditEvent.findMany({ where: { actorId: finance.id, action: 'auth.denied' } });
      expect(denied).toHaveLength(1);
      expect(JSON.stringify(denied[0].details)).not.toContain(people[0].id_card);
    });

    it('cannot recover a masked number by trying the candidates: every try is 403, the true one included', async () => {
      const finance = (await h.t.keyFor('finance')).key;
      const masked = await h.t.http.get('/v1/verifications').query({ limit: 100 }).set(as(finance)).expect(200);
      const target = people[1];
      expect(masked.body.items.map((v: { id_card: string }) => v.id_card)).toContain(
        `${target.id_card.slice(0, 6)}********${target.id_card.slice(-4)}`,
      );
      // The same answer for every try, the true number included: nothing tells a hit from a miss.
      const answers = new Set<string>();
      for (const candidate of candidatesFor(target, 12)) {
        const res = await search(finance, { id_card: candidate });
        answers.add(JSON.stringify({ status: res.status, body: { ...res.body, request_id: null } }));
      }
      expect(answers.size).toBe(1);
      expect(JSON.parse([...answers][0]).status).toBe(403);
    });

    it('may still search by the filters that hold no personal data', async () => {
      const finance = (await h.t.keyFor('finance')).key;
      const res = await search(finance, { charged: 'true', result: '0' }).expect(200);
      expect(res.body.items.length).toBeGreaterThanOrEqual(4);
      await h.t.http.get('/v1/verifications').query({ result: '0' }).set(as(finance)).expect(200);
    });
  });

  describe('clients', () => {
    it('find their own verifications by ID number or name, never another client’s', async () => {
      const key = await h.t.keyFor('client', 'search-a');
      const own = await search(key.key, { id_card: people[0].id_card }).expect(200);
      expect(own.body.items).toHaveLength(1);
      expect(own.body.items[0].id_card).toBe(`${people[0].id_card.slice(0, 6)}********${people[0].id_card.slice(-4)}`);
      const byName = await search(key.key, { name: people[2].name }).expect(200);
      expect(byName.body.items).toHaveLength(1);
      // Another client's person: no match, as if it did not exist.
      const theirs = await search(key.key, { id_card: people[3].id_card }).expect(200);
      expect(theirs.body).toEqual({ items: [], next_cursor: null });
      const theirsByName = await search(key.key, { name: people[3].name }).expect(200);
      expect(theirsByName.body.items).toEqual([]);
    });
  });

  describe('the hourly budget of exact-match searches', () => {
    it('allows PII_SEARCH_PER_HOUR searches per client app, then 429 with Retry-After and one alert', async () => {
      const key = await h.t.keyFor('client', 'search-budget');
      const alertsBefore = await metric('pii_search_budget_exhausted');
      const bodies = [
        { id_card: people[0].id_card },
        { name: people[1].name },
        { id_card: '110101199003071234' }, // no match counts too
        { name: '张三', id_card: people[2].id_card },
      ];
      for (const body of bodies) await search(key.key, body).expect(200);
      // Searches without personal data are not exact-match searches: they cost nothing.
      await search(key.key, { result: '0' }).expect(200);

      for (const body of [{ id_card: people[0].id_card }, { name: people[1].name }, { id_card: people[2].id_card }]) {
        const refused = await search(key.key, body).expect(429);
        expect(refused.body.type).toBe('urn:idgate:problem:rate-limited');
        expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3000);
        expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(3600);
        expect(JSON.stringify(refused.body)).not.toContain(people[0].id_card);
      }
      expect(await searchEvents(key.id)).toBe(BUDGET);

      const alerts = await alertsOf(key.id);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({ actorId: key.id, outcome: 'denied', targetId: key.id });
      expect(await metric('pii_search_budget_exhausted')).toBe(alertsBefore + 1);

      // A client app's keys share one budget: a freshly minted key of the same client gains nothing
      // (an admin minting keys cannot search past it); another client's key still searches.
      const second = await h.t.keyFor('client', 'search-budget');
      await search(second.key, { id_card: people[0].id_card }).expect(429);
      const other = await h.t.keyFor('client', 'search-budget-other');
      await search(other.key, { id_card: people[0].id_card }).expect(200);
    });

    it('an Idempotency-Key sent again with guessed bodies spends the same budget: 422s, then 429, one alert', async () => {
      const key = await h.t.keyFor('client', 'guess-by-replay');
      const victim = people[4];
      const idem = { ...as(key.key), 'Idempotency-Key': 'order-8817' };
      await h.t.http
        .post('/v1/verifications')
        .set(idem)
        .send({ name: victim.name, id_card: victim.id_card })
        .expect(201);
      // The same body replays, and costs nothing: a client's own retry.
      await h.t.http
        .post('/v1/verifications')
        .set(idem)
        .send({ name: victim.name, id_card: victim.id_card })
        .expect(200);

      // A second key of the same client app, guessing the birth date hidden in the masked number.
      const guesser = await h.t.keyFor('client', 'guess-by-replay');
      const guesses = candidatesFor(victim, BUDGET + 3).filter((c) => c !== victim.id_card);
      const statuses: number[] = [];
      for (const id_card of guesses) {
        const res = await h.t.http
          .post('/v1/verifications')
          .set({ ...as(guesser.key), 'Idempotency-Key': 'order-8817' })
          .send({ name: victim.name, id_card });
        statuses.push(res.status);
        expect(JSON.stringify(res.body)).not.toContain(victim.id_card);
      }
      expect(statuses).toEqual([...Array(BUDGET).fill(422), ...Array(guesses.length - BUDGET).fill(429)]);
      // Past the budget even the true body is refused before it can be told apart.
      await h.t.http
        .post('/v1/verifications')
        .set({ ...as(guesser.key), 'Idempotency-Key': 'order-8817' })
        .send({ name: victim.name, id_card: victim.id_card })
        .expect(429);
      expect(
        await h.t.prisma.auditEvent.count({ where: { action: 'idempotency.mismatched', actorId: guesser.id } }),
      ).toBe(BUDGET);
      expect(await alertsOf(guesser.id)).toHaveLength(1);
    });

    it('is one budget across verification and audit searches (compliance)', async () => {
      const compliance = await h.t.keyFor('compliance');
      const audit = (body: object) => h.t.http.post('/v1/audit/events/search').set(as(compliance.key)).send(body);
      await search(compliance.key, { id_card: people[3].id_card }).expect(200);
      await audit({ id_card: people[3].id_card }).expect(200);
      await search(compliance.key, { name: people[3].name }).expect(200);
      // An audit search without an ID number is not an exact-match search.
      await audit({ action: 'verification.created' }).expect(200);
      await audit({ id_card: people[0].id_card }).expect(200);
      const refused = await audit({ id_card: people[1].id_card }).expect(429);
      expect(refused.headers['retry-after']).toBeDefined();
      await search(compliance.key, { id_card: people[1].id_card }).expect(429);
      expect(await searchEvents(compliance.id)).toBe(BUDGET);
      expect(await alertsOf(compliance.id)).toHaveLength(1);
    });

    it('holds under concurrent searches: exactly the budget succeeds, one alert', async () => {
      const key = await h.t.keyFor('client', 'search-concurrent');
      const statuses = await Promise.all(
        Array.from({ length: 10 }, (_, i) => search(key.key, { id_card: people[i % 3].id_card }).then((r) => r.status)),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(BUDGET);
      expect(statuses.filter((s) => s === 429)).toHaveLength(10 - BUDGET);
      expect(await searchEvents(key.id)).toBe(BUDGET);
      expect(await alertsOf(key.id)).toHaveLength(1);
    });

    it('frees a search when the oldest one leaves the hour', async () => {
      const key = await h.t.keyFor('client', 'search-aging');
      for (let i = 0; i < BUDGET; i++) await search(key.key, { id_card: people[0].id_card }).expect(200);
      await search(key.key, { id_card: people[0].id_card }).expect(429);
      // Age the key's searches by an hour (past the append-only triggers, as the audit tests' attacker does).
      await asAttacker(h.t.db.adminUrl, (c) =>
        c.query(
          `UPDATE audit_events SET occurred_at = occurred_at - interval '61 minutes'
           WHERE actor_id = $1 AND action = 'verification.searched'`,
          [key.id],
        ),
      );
      await search(key.key, { id_card: people[0].id_card }).expect(200);
    });

    async function alertsOf(keyId: string) {
      const events = await h.t.prisma.auditEvent.findMany({ where: { action: 'security.alert', actorId: keyId } });
      return events.filter((e) => (e.details as { reason?: string }).reason === 'pii_search_budget_exhausted');
    }
  });

  async function metric(reason: string): Promise<number> {
    const text = (await h.t.http.get('/metrics')).text;
    const m = new RegExp(`idgate_security_alerts_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
    return Number(m?.[1] ?? NaN);
  }

  describe('idempotency fingerprints (request_hash)', () => {
    const legacy = (endpoint: string, body: object) =>
      createHash('sha256')
        .update(endpoint)
        .update('\n')
        .update(JSON.stringify(Object.fromEntries(Object.entries(body).sort(([a], [b]) => (a < b ? -1 : 1)))))
        .digest('hex');

    it.each([
      ['POST /v1/verifications', '/v1/verifications', 201],
      ['POST /identity/idcard/ocr', '/identity/idcard/ocr', 200],
    ])('are keyed on %s: a stored row confirms no guessed identity', async (endpoint, path, status) => {
      const key = await h.t.keyFor('client', `fp-${status}`);
      const p = people[4];
      const body = { name: p.name, id_card: p.id_card };
      await h.t.http.post(path).set(as(key.key)).set('Idempotency-Key', 'fp-1').send(body).expect(status);
      const row = await h.t.prisma.idempotencyRecord.findFirstOrThrow({
        where: { clientId: key.clientId!, key: 'fp-1' },
      });
      expect(row.requestHash).toMatch(/^[0-9a-f]{64}$/);
      // Neither the unkeyed hash of the true identity, nor of any guess, is what is stored.
      for (const guess of [body, { name: '张三', id_card: p.id_card }, { id_card: p.id_card, name: p.name }]) {
        expect(row.requestHash).not.toBe(legacy(endpoint, guess));
      }
      // The same request still replays; another body is still 422.
      await h.t.http.post(path).set(as(key.key)).set('Idempotency-Key', 'fp-1').send(body).expect(200);
      const other = { name: people[5].name, id_card: people[5].id_card };
      await h.t.http.post(path).set(as(key.key)).set('Idempotency-Key', 'fp-1').send(other).expect(422);
    });

    it('recognise a retry of a key stored before the upgrade (unkeyed hash): replayed, not 422, never a second call', async () => {
      const key = await h.t.keyFor('client', 'fp-legacy');
      const p = people[5];
      const body = { name: p.name, id_card: p.id_card, reference: 'legacy-1' };
      const first = await h.t.http
        .post('/v1/verifications')
        .set(as(key.key))
        .set('Idempotency-Key', 'old-1')
        .send(body)
        .expect(201);
      // As an older idgate stored it.
      await h.t.prisma.idempotencyRecord.update({
        where: { clientId_key: { clientId: key.clientId!, key: 'old-1' } },
        data: { requestHash: legacy('POST /v1/verifications', body) },
      });
      const calls = h.sandbox.stats().calls;
      const retry = await h.t.http
        .post('/v1/verifications')
        .set(as(key.key))
        .set('Idempotency-Key', 'old-1')
        .send(body)
        .expect(200);
      expect(retry.body).toEqual(first.body);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      const different = await h.t.http
        .post('/v1/verifications')
        .set(as(key.key))
        .set('Idempotency-Key', 'old-1')
        .send({ ...body, reference: 'legacy-2' })
        .expect(422);
      expect(different.body.type).toBe('urn:idgate:problem:unprocessable');
      expect(h.sandbox.stats().calls).toBe(calls);
      expect(await h.t.prisma.verification.count({ where: { reference: { startsWith: 'legacy-' } } })).toBe(1);
    });
  });
});
