import { randomBytes } from 'node:crypto';
import { KNOWN, startWithSandbox, UNKNOWN_VALID_ID, VerificationHarness } from '../support/verification-app';

/*
 * Issue 12 (3): `encryption` is validated against the vendor's shape, and a field counts as
 * encrypted if and only if an `encrypt_list` names it. A parameter that encrypts nothing,
 * names unknown fields or claims a readable field is 400 on both channels (nothing recorded,
 * nothing called); fields sent in clear get the local checks and their HMACs, so compliance
 * finds the verification by them.
 */

type Person = (typeof KNOWN)[number];
const cipher = (bytes = 16) => randomBytes(bytes).toString('base64');
const entry = (encrypt_list: unknown, extra: Record<string, unknown> = {}) => ({
  algorithm: 'AES-256-CBC',
  ciphertext_blob: cipher(48),
  encrypt_list,
  iv: randomBytes(8).toString('hex'),
  tag_list: [],
  ...extra,
});

describe('field encryption (issue 12.3)', () => {
  let h: VerificationHarness;
  let client: string;
  let compliance: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  /** A fresh identity per test, drawn at random from the register. */
  const pool = [...KNOWN];
  const used: Person[] = [];
  const person = (): Person => {
    const p = pool.splice(Math.floor(Math.random() * pool.length), 1)[0];
    used.push(p);
    return p;
  };

  beforeAll(async () => {
    h = await startWithSandbox();
    client = (await h.t.keyFor('client', 'encrypting')).key;
    compliance = (await h.t.keyFor('compliance')).key;
  });
  afterAll(() => h.close());

  const both = () => ({ name: cipher(), id_card: cipher(32) });

  const refusals: Array<[string, (p: Person) => Record<string, unknown>]> = [
    ['an empty array', (p) => ({ name: p.name, id_card: p.id_card, encryption: [] })],
    ['an empty object', (p) => ({ name: p.name, id_card: p.id_card, encryption: [{}] })],
    ['an object with an empty encrypt_list', (p) => ({ name: p.name, id_card: p.id_card, encryption: [entry([])] })],
    ['an object instead of an array', () => ({ ...both(), encryption: entry(['name', 'id_card']) })],
    ['an unknown field name', () => ({ ...both(), encryption: [entry(['name', 'id_card', 'mobile'])] })],
    ['only unknown field names', (p) => ({ name: p.name, id_card: p.id_card, encryption: [entry(['IdCard'])] })],
    ['a field listed twice', () => ({ ...both(), encryption: [entry(['name', 'id_card']), entry(['name'])] })],
    ['an unknown algorithm', () => ({ ...both(), encryption: [entry(['name', 'id_card'], { algorithm: 'RC4' })] })],
    ['an iv that is not 16 characters', () => ({ ...both(), encryption: [entry(['name', 'id_card'], { iv: 'x' })] })],
    ['no ciphertext_blob', () => ({ ...both(), encryption: [entry(['name', 'id_card'], { ciphertext_blob: '' })] })],
    ['SM4-GCM without tags', () => ({ ...both(), encryption: [entry(['name', 'id_card'], { algorithm: 'SM4-GCM' })] })],
    ['an extra field', () => ({ ...both(), encryption: [entry(['name', 'id_card'], { plaintext: true })] })],
    ['a listed field not sent', () => ({ id_card: cipher(32), encryption: [entry(['name', 'id_card'])] })],
    [
      'the ID number in clear, listed',
      (p) => ({ name: cipher(), id_card: p.id_card, encryption: [entry(['id_card'])] }),
    ],
    [
      'the 15-digit / lower-case / spaced ID number in clear, listed',
      () => ({ name: cipher(), id_card: ' 34052419800101001x ', encryption: [entry(['name', 'id_card'])] }),
    ],
    [
      'an invalid ID number in clear, listed',
      () => ({ ...both(), id_card: '110101199003071234', encryption: [entry(['name', 'id_card'])] }),
    ],
    ['the name in clear, listed', (p) => ({ name: p.name, id_card: cipher(32), encryption: [entry(['name'])] })],
    ['both in clear, listed', (p) => ({ name: p.name, id_card: p.id_card, encryption: [entry(['name', 'id_card'])] })],
    [
      'a two-word name in clear, listed',
      () => ({ name: 'MARIA JOSE', id_card: cipher(32), encryption: [entry(['name'])] }),
    ],
    [
      'a name with combining marks, listed',
      () => ({ name: '张\u0301三', id_card: cipher(32), encryption: [entry(['name'])] }),
    ],
  ];

  it.each(refusals)('refuses %s with 400 on /v1 and on the drop-in, recording and calling nothing', async (_, make) => {
    const p = person();
    const body = make(p);
    const calls = h.sandbox.stats().calls;
    const rows = await h.t.prisma.verification.count();

    const api = await h.t.http.post('/v1/verifications').set(as(client)).send(body).expect(400);
    expect(api.body.type).toBe('urn:idgate:problem:validation');
    expect(api.body.errors.map((e: { field: string }) => e.field)).toContain('encryption');
    const dropIn = await h.t.http.post('/identity/idcard/ocr').set(as(client)).send(body).expect(400);
    expect(dropIn.body).toMatchObject({ success: false, error: { code: 'token_mismatched' } });
    expect(dropIn.body.error.message).toContain('encryption');
    // Never echoes a value.
    for (const text of [JSON.stringify(api.body), JSON.stringify(dropIn.body)]) {
      expect(text).not.toContain(p.id_card);
      expect(text).not.toContain(p.name);
    }
    expect(h.sandbox.stats().calls).toBe(calls);
    expect(await h.t.prisma.verification.count()).toBe(rows);
  });

  it('passes fully encrypted fields through: no local check, no HMAC of the ciphertexts', async () => {
    const body = { ...both(), encryption: [entry(['name', 'id_card'])] };
    const calls = h.sandbox.stats().calls;
    const res = await h.t.http.post('/v1/verifications').set(as(client)).send(body).expect(201);
    expect(h.sandbox.stats().calls).toBe(calls + 1);
    const row = await h.t.prisma.verification.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(row).toMatchObject({ localCheck: false, nameEnc: null, idCardEnc: null, idCardHmac: null, nameHmac: null });
    // The drop-in too, with SM4-GCM and its tags.
    const sm4 = {
      ...both(),
      encryption: [entry(['name', 'id_card'], { algorithm: 'SM4-GCM', tag_list: [cipher(), cipher()] })],
    };
    await h.t.http.post('/identity/idcard/ocr').set(as(client)).send(sm4);
    expect(h.sandbox.stats().calls).toBe(calls + 2);
  });

  describe('a field in clear beside an encrypted one', () => {
    it.each([
      ['a wrong check character', '110101199003071234'],
      ['a birth date in the future', '360426209901010071'],
      ['17 digits', '36042619910101007'],
      ['letters', 'ABCDEFGHIJKLMNOPQR'],
    ])('an ID number in clear with %s is -2 locally: not called, not charged', async (_, idCard) => {
      const calls = h.sandbox.stats().calls;
      const res = await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send({ name: cipher(), id_card: idCard, encryption: [entry(['name'])] })
        .expect(201);
      expect(res.body).toMatchObject({ result: '-2', charged: false, amount: 0 });
      expect(h.sandbox.stats().calls).toBe(calls);
    });

    it.each([
      ['a combining accent', '张\u0301三'],
      ['stacked diacritics', '李\u0300\u0301\u0302四'],
      ['a digit', '王5'],
      ['an emoji', '张三😀'],
    ])('a name in clear with %s is -3 locally: not called, not charged', async (_, name) => {
      const calls = h.sandbox.stats().calls;
      const res = await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send({ name, id_card: cipher(32), encryption: [entry(['id_card'])] })
        .expect(201);
      expect(res.body).toMatchObject({ result: '-3', charged: false, amount: 0 });
      expect(h.sandbox.stats().calls).toBe(calls);
    });

    it('an ID number in clear gets its HMAC: compliance finds the verification by it, in any of its forms', async () => {
      const p = person();
      const res = await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send({ name: cipher(), id_card: p.id_card.toLowerCase(), encryption: [entry(['name'])] })
        .expect(201);
      for (const form of [p.id_card, p.id_card.toLowerCase(), ` ${p.id_card} `]) {
        const found = await h.t.http
          .post('/v1/verifications/search')
          .set(as(compliance))
          .send({ id_card: form })
          .expect(200);
        expect(found.body.items.map((v: { id: string }) => v.id)).toEqual([res.body.id]);
      }
      const events = await h.t.http
        .post('/v1/audit/events/search')
        .set(as(compliance))
        .send({ id_card: p.id_card, target_id: res.body.id })
        .expect(200);
      expect(events.body.items.map((e: { action: string }) => e.action)).toContain('verification.created');
    });

    it('a name in clear gets its HMAC: compliance finds the verification by it', async () => {
      const p = person();
      const res = await h.t.http
        .post('/identity/idcard/ocr')
        .set(as(client))
        .send({ name: p.name, id_card: cipher(32), encryption: [entry(['id_card'])] });
      const row = await h.t.prisma.verification.findFirstOrThrow({
        where: { channel: 'drop_in' },
        orderBy: { createdAt: 'desc' },
      });
      expect(res.status).toBeLessThan(500);
      expect(row.nameHmac).not.toBeNull();
      expect(row.idCardHmac).toBeNull();
      const found = await h.t.http
        .post('/v1/verifications/search')
        .set(as(compliance))
        .send({ name: p.name })
        .expect(200);
      expect(found.body.items.map((v: { id: string }) => v.id)).toContain(row.id);
    });

    it('an encrypted field gets the HMAC of what the vendor echoes back, when it is readable', async () => {
      // The sandbox does not decrypt: it echoes what it got. A single ASCII word cannot be told from a
      // short ciphertext, so idgate passes it as encrypted; the sandbox reads it as a name and echoes it,
      // as a decrypting vendor would echo the plaintext.
      const p = person();
      const word = `ZZ${randomBytes(4).toString('hex').replace(/[0-9]/g, 'Q').toUpperCase()}`;
      const res = await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send({ name: word, id_card: p.id_card, encryption: [entry(['name'])] })
        .expect(201);
      expect(res.body.result).toBe('-1'); // not the registered name: consistent-or-not is charged
      const found = await h.t.http
        .post('/v1/verifications/search')
        .set(as(compliance))
        .send({ name: word, id_card: p.id_card })
        .expect(200);
      expect(found.body.items.map((v: { id: string }) => v.id)).toEqual([res.body.id]);
    });

    it('an encrypted ID number the vendor echoes as a ciphertext gets no HMAC', async () => {
      const res = await h.t.http
        .post('/v1/verifications')
        .set(as(client))
        .send({ name: '王小明', id_card: cipher(32), encryption: [entry(['id_card'])] })
        .expect(201);
      const row = await h.t.prisma.verification.findUniqueOrThrow({ where: { id: res.body.id } });
      expect(row.idCardHmac).toBeNull();
      expect(row.nameHmac).not.toBeNull();
    });
  });

  it('no log line holds a name or ID number that was sent, refused or not', () => {
    const logs = h.t.logs.join('\n');
    expect(used.length).toBeGreaterThan(10);
    for (const p of used) {
      expect({ p: p.id_card, found: logs.includes(p.id_card) || logs.includes(p.name) }).toEqual({
        p: p.id_card,
        found: false,
      });
    }
  });

  it('without encryption, nothing changes: a valid number not on record is -5', async () => {
    await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: '王小明', id_card: UNKNOWN_VALID_ID })
      .expect(201)
      .expect((r) => expect(r.body.result).toBe('-5'));
  });
});
