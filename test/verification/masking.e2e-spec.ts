import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

/*
 * Issue 12 (1): what each role sees of each personal-data field, through every read
 * (one, list, search), for both modes and both channels, checked field by field
 * against the table in the README; and, as a set, that nothing a masked role is
 * given reveals what the mask hides (the ID number's hidden digits are the birth date).
 * Identities are drawn at random from the sandbox register on each run.
 */

type Person = (typeof KNOWN)[number];
type Field = 'name' | 'id_card' | 'sex' | 'nation' | 'birth' | 'address';
type Rule = 'full' | 'masked' | 'withheld';

const FIELDS: Field[] = ['name', 'id_card', 'sex', 'nation', 'birth', 'address'];
/** The README's table: reads of a stored verification. */
const READS: Record<'compliance' | 'finance' | 'client', Record<Field, Rule>> = {
  compliance: { name: 'full', id_card: 'full', sex: 'full', nation: 'full', birth: 'full', address: 'full' },
  finance: {
    name: 'masked',
    id_card: 'masked',
    sex: 'withheld',
    nation: 'withheld',
    birth: 'withheld',
    address: 'withheld',
  },
  client: {
    name: 'masked',
    id_card: 'masked',
    sex: 'withheld',
    nation: 'withheld',
    birth: 'withheld',
    address: 'withheld',
  },
};

const maskName = (name: string) => {
  const c = Array.from(name);
  return c.length <= 1 ? name : c.length === 2 ? `${c[0]}*` : c[0] + '*'.repeat(c.length - 2) + c[c.length - 1];
};
const maskId = (id: string) => `${id.slice(0, 6)}********${id.slice(-4)}`;

/** What a field must read under a rule, for a verification of `p` in `mode` (card fields exist in image mode only). */
function expected(rule: Rule, field: Field, p: Person, mode: 'image' | 'name_id_card'): string {
  const card = field === 'name' || field === 'id_card' || mode === 'image';
  if (!card || rule === 'withheld') return '';
  if (rule === 'full') return p[field];
  return field === 'name' ? maskName(p.name) : field === 'id_card' ? maskId(p.id_card) : '';
}

function pick(n: number): Person[] {
  const pool = [...KNOWN];
  const out: Person[] = [];
  while (out.length < n) out.push(pool.splice(Math.floor(Math.random() * pool.length), 1)[0]);
  return out;
}

describe('personal data per role and field (issue 12.1)', () => {
  let h: VerificationHarness;
  const keys = {} as Record<'client' | 'compliance' | 'finance', string>;
  let otherClient: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const [byName, byImage, byDropIn, byDropInImage] = pick(4);
  const made: Array<{ id: string; person: Person; mode: 'image' | 'name_id_card'; reference: string }> = [];
  /** Every body a masked role received, to check as a set. */
  const maskedBodies: unknown[] = [];

  beforeAll(async () => {
    h = await startWithSandbox();
    keys.client = (await h.t.keyFor('client', 'masking')).key;
    keys.compliance = (await h.t.keyFor('compliance')).key;
    keys.finance = (await h.t.keyFor('finance')).key;
    otherClient = (await h.t.keyFor('client', 'masking-other')).key;
  });
  afterAll(() => h.close());

  const image = (p: Person) => `https://images.example.com/idcard/${p.id_card}.jpg`;

  type Page = Array<Record<string, string>>;
  /** Every verification made is on the page, each field as `reads` sees it (README table). */
  const expectEveryFieldAs = (reads: keyof typeof READS, page: Page, who: string) => {
    for (const v of made) {
      const item = page.find((i) => i.id === v.id)!;
      expect(item).toBeDefined();
      for (const f of FIELDS) {
        expect({ who, f, v: item[f] }).toEqual({ who, f, v: expected(READS[reads][f], f, v.person, v.mode) });
      }
    }
  };

  it('the answer to a submission: the card as read in image mode (as the drop-in), the echo masked in name + ID mode', async () => {
    const named = await h.t.http
      .post('/v1/verifications')
      .set(as(keys.client))
      .send({ name: byName.name, id_card: byName.id_card, reference: 'm-name' })
      .expect(201);
    for (const f of FIELDS)
      expect({ f, v: named.body[f] }).toEqual({ f, v: expected('masked', f, byName, 'name_id_card') });
    made.push({ id: named.body.id, person: byName, mode: 'name_id_card', reference: 'm-name' });
    maskedBodies.push(named.body);

    const read = await h.t.http
      .post('/v1/verifications')
      .set(as(keys.client))
      .set('Idempotency-Key', `mask-${byImage.id_card.slice(-6)}`)
      .send({ image_url: image(byImage), reference: 'm-image' })
      .expect(201);
    for (const f of FIELDS) expect({ f, v: read.body[f] }).toEqual({ f, v: expected('full', f, byImage, 'image') });
    made.push({ id: read.body.id, person: byImage, mode: 'image', reference: 'm-image' });
    // Replayed under its key, the answer stays the answer.
    const replay = await h.t.http
      .post('/v1/verifications')
      .set(as(keys.client))
      .set('Idempotency-Key', `mask-${byImage.id_card.slice(-6)}`)
      .send({ image_url: image(byImage), reference: 'm-image' })
      .expect(200);
    expect(replay.body).toEqual(read.body);

    // The drop-in answers as the vendor does, in both modes.
    const dropName = await h.t.http
      .post('/identity/idcard/ocr')
      .set(as(keys.client))
      .send({ name: byDropIn.name, id_card: byDropIn.id_card })
      .expect(200);
    expect(dropName.body).toMatchObject({ name: byDropIn.name, id_card: byDropIn.id_card, birth: '' });
    const dropImage = await h.t.http
      .post('/identity/idcard/ocr')
      .set(as(keys.client))
      .send({ image_url: image(byDropInImage) })
      .expect(200);
    expect(dropImage.body).toMatchObject({
      name: byDropInImage.name,
      id_card: byDropInImage.id_card,
      sex: byDropInImage.sex,
      nation: byDropInImage.nation,
      birth: byDropInImage.birth,
      address: byDropInImage.address,
    });
    for (const [p, mode] of [
      [byDropIn, 'name_id_card'],
      [byDropInImage, 'image'],
    ] as const) {
      const row = await h.t.prisma.verification.findFirstOrThrow({
        where: { channel: 'drop_in', mode },
        orderBy: { createdAt: 'desc' },
      });
      made.push({ id: row.id, person: p, mode, reference: '' });
    }
  });

  for (const role of ['compliance', 'finance', 'client'] as const) {
    it(`${role}: GET one, list and search show each field as the table says`, async () => {
      const key = keys[role];
      for (const v of made) {
        const one = await h.t.http.get(`/v1/verifications/${v.id}`).set(as(key)).expect(200);
        for (const f of FIELDS) {
          expect({ role, mode: v.mode, f, v: one.body[f] }).toEqual({
            role,
            mode: v.mode,
            f,
            v: expected(READS[role][f], f, v.person, v.mode),
          });
        }
        if (role !== 'compliance') maskedBodies.push(one.body);
      }

      const list = await h.t.http.get('/v1/verifications').query({ limit: 100 }).set(as(key)).expect(200);
      const search = await h.t.http
        .post('/v1/verifications/search')
        .set(as(key))
        .send({ limit: 100, charged: 'true' })
        .expect(200);
      for (const page of [list.body.items, search.body.items] as Page[]) {
        expectEveryFieldAs(role, page, role);
        if (role !== 'compliance') maskedBodies.push(page);
      }

      if (role !== 'finance') {
        // An exact search (allowed to clients and compliance) answers with the same view.
        const exact = await h.t.http
          .post('/v1/verifications/search')
          .set(as(key))
          .send({ id_card: byImage.id_card })
          .expect(200);
        expect(exact.body.items).toHaveLength(1);
        for (const f of FIELDS) {
          expect({ role, f, v: exact.body.items[0][f] }).toEqual({
            role,
            f,
            v: expected(READS[role][f], f, byImage, 'image'),
          });
        }
        if (role === 'client') maskedBodies.push(exact.body);
      }
    });
  }

  it('compliance reads are audited, masked reads are not recorded as views of personal data', async () => {
    const viewed = await h.t.prisma.auditEvent.findMany({ where: { action: 'verification.viewed' } });
    expect(viewed.length).toBeGreaterThanOrEqual(made.length);
    expect(new Set(viewed.map((e) => e.actorRole))).toEqual(new Set(['compliance']));
  });

  it('as a set, nothing a masked role was given reveals a hidden digit, a birth date, sex, ethnic group or address', () => {
    const text = JSON.stringify(maskedBodies);
    expect(maskedBodies.length).toBeGreaterThan(10);
    for (const { person: p } of made) {
      // The masked middle of the ID number is the birth date; the card's birth field is the same date.
      expect({ p: p.id_card, leak: text.includes(p.id_card.slice(6, 14)) }).toEqual({ p: p.id_card, leak: false });
      expect({ p: p.id_card, leak: text.includes(p.id_card) }).toEqual({ p: p.id_card, leak: false });
      expect({ p: p.id_card, leak: text.includes(p.birth) }).toEqual({ p: p.id_card, leak: false });
      expect({ p: p.id_card, leak: text.includes(p.address.slice(0, 6)) }).toEqual({ p: p.id_card, leak: false });
      if (Array.from(p.name).length > 1) {
        expect({ p: p.id_card, leak: text.includes(p.name) }).toEqual({ p: p.id_card, leak: false });
      }
    }
    for (const body of maskedBodies.flatMap((b) =>
      Array.isArray(b) ? b : 'items' in (b as object) ? (b as { items: unknown[] }).items : [b],
    ) as Array<Record<string, string>>) {
      expect([body.sex, body.nation, body.birth, body.address]).toEqual(['', '', '', '']);
    }
  });

  it('compliance browsing with view=masked sees what finance sees, and no read of personal data is recorded', async () => {
    const viewedBefore = await h.t.prisma.auditEvent.count({ where: { action: 'verification.viewed' } });
    const list = await h.t.http
      .get('/v1/verifications')
      .query({ limit: 100, view: 'masked' })
      .set(as(keys.compliance))
      .expect(200);
    const search = await h.t.http
      .post('/v1/verifications/search')
      .set(as(keys.compliance))
      .send({ limit: 100, view: 'masked' })
      .expect(200);
    for (const page of [list.body.items, search.body.items] as Page[]) {
      expectEveryFieldAs('finance', page, 'compliance, view=masked');
      maskedBodies.push(page);
    }
    expect(await h.t.prisma.auditEvent.count({ where: { action: 'verification.viewed' } })).toBe(viewedBefore);
    // Opening one record is the audited read.
    const one = await h.t.http.get(`/v1/verifications/${made[0].id}`).set(as(keys.compliance)).expect(200);
    expect(one.body.id_card).toBe(made[0].person.id_card);
    expect(await h.t.prisma.auditEvent.count({ where: { action: 'verification.viewed' } })).toBe(viewedBefore + 1);
    // Only the two views exist; anything else names the field.
    const bad = await h.t.http.get('/v1/verifications').query({ view: 'raw' }).set(as(keys.compliance)).expect(400);
    expect(bad.body.errors).toEqual([{ field: 'view', message: 'must be one of the following values: full, masked' }]);
  });

  it('another client sees none of them', async () => {
    for (const v of made) await h.t.http.get(`/v1/verifications/${v.id}`).set(as(otherClient)).expect(404);
  });

  it.each([
    ['an 18-digit ID number', (p: Person) => p.id_card],
    ['an ID number inside text', (p: Person) => `order/${p.id_card.toLowerCase()}/1`],
    ['a 15-digit legacy number', () => '360426910101007'],
  ])('refuses a reference holding %s (shown unmasked to every role)', async (_, reference) => {
    const p = byName;
    const before = h.sandbox.stats().calls;
    const res = await h.t.http
      .post('/v1/verifications')
      .set(as(keys.client))
      .send({ name: p.name, id_card: p.id_card, reference: reference(p) })
      .expect(400);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual(['reference']);
    expect(JSON.stringify(res.body)).not.toContain(p.id_card);
    expect(h.sandbox.stats().calls).toBe(before);
  });
});
