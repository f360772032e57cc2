import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

const FIELDS = ['address', 'birth', 'description', 'id_card', 'name', 'nation', 'result', 'sex'];

describe('POST /identity/idcard/ocr (drop-in for the upstream)', () => {
  let h: VerificationHarness;
  let client: string;

  beforeAll(async () => {
    h = await startWithSandbox();
    client = (await h.t.keyFor('client', 'dropin')).key;
  });
  afterAll(() => h.close());

  // Exactly as the upstream's documentation writes the request (curl / Python requests with json=).
  const documented = (body: unknown) =>
    h.t.http
      .post('/identity/idcard/ocr')
      .set('accept', 'application/json')
      .set('authorization', `Bearer ${client}`)
      .set('content-type', 'application/json')
      .send(JSON.stringify(body));

  it('answers a name + ID number request with the upstream’s fields, all strings, OCR fields empty', async () => {
    const p = KNOWN[100];
    const res = await documented({ name: p.name, id_card: p.id_card }).expect(200);
    expect(Object.keys(res.body).sort()).toEqual(FIELDS);
    for (const f of FIELDS) expect(typeof res.body[f]).toBe('string');
    expect(res.body).toEqual({
      result: '0',
      description: 'The name and ID card number are consistent',
      name: p.name,
      id_card: p.id_card,
      sex: '',
      nation: '',
      birth: '',
      address: '',
    });
    // Recorded, audited and billed like any other verification.
    const stored = await h.t.prisma.verification.findFirstOrThrow({
      where: { channel: 'drop_in' },
      orderBy: { createdAt: 'desc' },
    });
    expect(stored).toMatchObject({ status: 'completed', result: '0', chargeStatus: 'charged', amount: 50 });
  });

  it('answers an image_url request with the card’s fields', async () => {
    const p = KNOWN[101];
    const res = await documented({ image_url: `https://images.example.com/idcard/${p.id_card}.jpg` }).expect(200);
    expect(res.body).toEqual({
      result: '0',
      description: 'The name and ID card number are consistent',
      name: p.name,
      id_card: p.id_card,
      sex: p.sex,
      nation: p.nation,
      birth: p.birth,
      address: p.address,
    });
  });

  it('answers -2 / -3 as the upstream would, without calling it', async () => {
    const before = h.sandbox.stats().calls;
    const res = await documented({ name: '张三', id_card: '110101199003071234' }).expect(200);
    expect(res.body.result).toBe('-2');
    expect(typeof res.body.result).toBe('string');
    const name = await documented({ name: 'Robert); DROP TABLE', id_card: KNOWN[102].id_card }).expect(200);
    expect(name.body.result).toBe('-3');
    expect(h.sandbox.stats().calls).toBe(before);
  });

  it('errors in the upstream’s format and codes', async () => {
    const noToken = await h.t.http
      .post('/identity/idcard/ocr')
      .send({ name: '张三', id_card: KNOWN[0].id_card })
      .expect(401);
    expect(noToken.body).toEqual({
      success: false,
      error: { code: 'invalid_token', message: expect.any(String) },
      trace_id: expect.any(String),
    });
    const badToken = await h.t.http
      .post('/identity/idcard/ocr')
      .set('authorization', 'Bearer nope')
      .send({})
      .expect(401);
    expect(badToken.body.error.code).toBe('invalid_token');

    const finance = (await h.t.keyFor('finance')).key;
    const wrongRole = await h.t.http
      .post('/identity/idcard/ocr')
      .set('authorization', `Bearer ${finance}`)
      .send({})
      .expect(403);
    expect(wrongRole.body.success).toBe(false);

    const badBody = await documented({ name: 42 }).expect(400);
    expect(badBody.body).toMatchObject({ success: false, error: { code: 'token_mismatched' } });
    expect(badBody.body.error.message).toContain('name');

    const malformed = await h.t.http
      .post('/identity/idcard/ocr')
      .set('authorization', `Bearer ${client}`)
      .set('content-type', 'application/json')
      .send('{"name": ')
      .expect(400);
    expect(malformed.body).toMatchObject({ success: false, error: { code: 'token_mismatched' } });

    const unknown = await h.t.http
      .post('/identity/idcard/nope')
      .set('authorization', `Bearer ${client}`)
      .send({})
      .expect(404);
    expect(unknown.body).toMatchObject({ success: false, error: { code: 'api_not_implemented' } });
  });

  it('an indeterminate upstream answer is an api_error naming the recorded verification', async () => {
    const p = KNOWN[103];
    const res = await documented({ name: p.name, id_card: p.id_card }).set('X-Sandbox-Fault', 'http500').expect(500);
    expect(res.body).toMatchObject({ success: false, error: { code: 'api_error' } });
    const v = await h.t.prisma.verification.findUniqueOrThrow({ where: { id: res.body.trace_id } });
    expect(v).toMatchObject({ status: 'unknown', chargeStatus: 'unknown' });
  });
});
