import { KNOWN, startWithSandbox, UNKNOWN_VALID_ID, VerificationHarness } from '../support/verification-app';

describe('POST /v1/verifications and reads', () => {
  let h: VerificationHarness;
  let client: string;
  let clientId: string;
  let other: string;
  let compliance: string;
  let finance: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const person = KNOWN[0];
  const minority = KNOWN.find((p) => p.name.includes('·'))!;

  beforeAll(async () => {
    h = await startWithSandbox();
    const c = await h.t.keyFor('client', 'acme');
    client = c.key;
    clientId = c.clientId!;
    other = (await h.t.keyFor('client', 'globex')).key;
    compliance = (await h.t.keyFor('compliance')).key;
    finance = (await h.t.keyFor('finance')).key;
  });
  afterAll(() => h.close());

  it('verifies a consistent name and ID number: completed, "0", charged, masked for the client', async () => {
    const before = h.sandbox.stats().calls;
    const res = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: person.name, id_card: person.id_card, reference: 'order-1' })
      .expect(201);
    expect(res.body).toMatchObject({
      status: 'completed',
      result: '0',
      charged: true,
      charge_status: 'charged',
      amount: 50,
      currency: 'CNY',
      reused: false,
      reference: 'order-1',
      client_id: clientId,
      sex: '',
      nation: '',
      birth: '',
      address: '',
    });
    expect(typeof res.body.result).toBe('string');
    expect(res.body.id_card).toBe(`${person.id_card.slice(0, 6)}********${person.id_card.slice(-4)}`);
    expect(res.body.name).not.toBe(person.name);
    expect(Array.from(res.body.name as string)[0]).toBe(Array.from(person.name)[0]);
    expect(res.body.upstream_trace_id).toEqual(expect.any(String));
    expect(h.sandbox.stats().calls).toBe(before + 1);
  });

  it('an inconsistent name is "-1" and charged; a valid number not on record is "-5" and not charged', async () => {
    const mismatch = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: '王小明', id_card: person.id_card })
      .expect(201);
    expect(mismatch.body).toMatchObject({ status: 'completed', result: '-1', charged: true });
    const missing = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: '王小明', id_card: UNKNOWN_VALID_ID })
      .expect(201);
    expect(missing.body).toMatchObject({ status: 'completed', result: '-5', charged: false, amount: 0 });
  });

  it('accepts minority names with look-alike dots and a lower-case x', async () => {
    const dotted = minority.name.replace('·', '•');
    const res = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: dotted, id_card: minority.id_card.toLowerCase() })
      .expect(201);
    expect(res.body.result).toBe('0');
  });

  it.each([
    ['a wrong check digit', '张三', '110101199003071234', '-2'],
    ['an impossible date', '张三', '360426199902290071', '-2'],
    ['a birth date in the future', '张三', '360426209901010071', '-2'],
    ['a name with digits', '张3', KNOWN[1].id_card, '-3'],
    ['an empty name', '  ', KNOWN[1].id_card, '-3'],
  ])('answers %s locally (%s / %s → %s) without calling or charging', async (_, name, idCard, code) => {
    const before = h.sandbox.stats().calls;
    const res = await h.t.http.post('/v1/verifications').set(as(client)).send({ name, id_card: idCard }).expect(201);
    expect(res.body).toMatchObject({
      status: 'completed',
      result: code,
      charged: false,
      charge_status: 'not_charged',
      amount: 0,
    });
    expect(h.sandbox.stats().calls).toBe(before);
  });

  it('reads an ID card image: the answer carries the card as read; later reads are masked', async () => {
    const card = KNOWN[2];
    const res = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ image_url: `https://images.example.com/idcard/${card.id_card}.jpg` })
      .expect(201);
    // The client sent the card: its answer is what the vendor read (as the drop-in's).
    expect(res.body).toMatchObject({
      status: 'completed',
      result: '0',
      name: card.name,
      id_card: card.id_card,
      sex: card.sex,
      nation: card.nation,
      birth: card.birth,
      address: card.address,
    });
    // Read later, it is masked like any read: the hidden digits are the birth date, so no birth, sex, nation, address.
    const later = await h.t.http.get(`/v1/verifications/${res.body.id}`).set(as(client)).expect(200);
    expect(later.body).toMatchObject({
      id_card: `${card.id_card.slice(0, 6)}********${card.id_card.slice(-4)}`,
      sex: '',
      nation: '',
      birth: '',
      address: '',
    });
  });

  it.each([
    [{ image_base64: 'aGVsbG8=' }, 'image_base64'],
    [{ name: '张三', id_card: person.id_card, image_url: 'https://x.example/idcard/1.jpg' }, 'image_url'],
    [{ name: '张三' }, 'id_card'],
    [{ id_card: person.id_card }, 'name'],
    [{ name: 123, id_card: person.id_card }, 'name'],
    [{ name: '张三', id_card: person.id_card, admin: true }, 'admin'],
    [{ name: '张三', id_card: person.id_card, reference: 'x'.repeat(300) }, 'reference'],
    [{ image_url: 'https://169.254.169.254/latest/meta-data/idcard/1.jpg' }, 'image_url'],
    [{ image_url: 'http://images.example.com/idcard/1.jpg' }, 'image_url'],
  ])('refuses %j with 400 naming %s, calling nothing', async (body, field) => {
    const before = h.sandbox.stats().calls;
    const res = await h.t.http.post('/v1/verifications').set(as(client)).send(body).expect(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(h.sandbox.stats().calls).toBe(before);
  });

  it('keeps clients apart: another client gets 404 and sees none of them', async () => {
    const mine = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: person.name, id_card: person.id_card })
      .expect(201);
    await h.t.http.get(`/v1/verifications/${mine.body.id}`).set(as(client)).expect(200);
    const theirs = await h.t.http.get(`/v1/verifications/${mine.body.id}`).set(as(other)).expect(404);
    expect(theirs.body.type).toBe('urn:idgate:problem:not-found');
    const list = await h.t.http.get('/v1/verifications').set(as(other)).expect(200);
    expect(list.body.items).toEqual([]);
    const asked = await h.t.http.get('/v1/verifications').query({ client: clientId }).set(as(other)).expect(200);
    expect(asked.body.items).toEqual([]);
  });

  it('compliance sees personal data in full, and each such read is audited; finance sees it masked', async () => {
    const created = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: person.name, id_card: person.id_card })
      .expect(201);
    const full = await h.t.http.get(`/v1/verifications/${created.body.id}`).set(as(compliance)).expect(200);
    expect(full.body).toMatchObject({ name: person.name, id_card: person.id_card });
    const masked = await h.t.http.get(`/v1/verifications/${created.body.id}`).set(as(finance)).expect(200);
    expect(masked.body.id_card).toBe(created.body.id_card);
    expect(masked.body.name).not.toBe(person.name);

    const viewed = await h.t.prisma.auditEvent.findMany({
      where: { action: 'verification.viewed', targetId: created.body.id },
    });
    expect(viewed).toHaveLength(1);
    expect(JSON.stringify(viewed[0].details)).not.toContain(person.id_card);
  });

  it('lists newest first with keyset paging and filters, and searches by exact ID number in the body', async () => {
    for (let i = 0; i < 5; i++) {
      await h.t.http
        .post('/v1/verifications')
        .set(as(other))
        .send({ name: KNOWN[10 + i].name, id_card: KNOWN[10 + i].id_card, reference: `batch-${i}` })
        .expect(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: Array<{ reference: string }>; next_cursor: string | null } } = await h.t.http
        .get('/v1/verifications')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(as(other))
        .expect(200);
      seen.push(...page.body.items.map((v) => v.reference));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(['batch-4', 'batch-3', 'batch-2', 'batch-1', 'batch-0']);

    const byRef = await h.t.http.get('/v1/verifications').query({ reference: 'batch-2' }).set(as(other)).expect(200);
    expect(byRef.body.items).toHaveLength(1);
    const charged = await h.t.http.get('/v1/verifications').query({ charged: 'false' }).set(as(client)).expect(200);
    expect(charged.body.items.every((v: { charged: boolean }) => v.charged === false)).toBe(true);
    const byResult = await h.t.http.get('/v1/verifications').query({ result: '-2' }).set(as(compliance)).expect(200);
    expect(byResult.body.items.length).toBeGreaterThanOrEqual(3);
    expect(byResult.body.items.every((v: { result: string }) => v.result === '-2')).toBe(true);

    const search = await h.t.http
      .post('/v1/verifications/search')
      .set(as(compliance))
      .send({ id_card: KNOWN[12].id_card })
      .expect(200);
    expect(search.body.items).toHaveLength(1);
    expect(search.body.items[0].name).toBe(KNOWN[12].name);
    const legacy15 = await h.t.http
      .post('/v1/verifications/search')
      .set(as(other))
      .send({ name: KNOWN[13].name })
      .expect(200);
    expect(legacy15.body.items.map((v: { reference: string }) => v.reference)).toEqual(['batch-3']);

    const badFilter = await h.t.http.get('/v1/verifications').query({ from: 'yesterday' }).set(as(client)).expect(400);
    expect(badFilter.body.errors[0].field).toBe('from');
  });
});
