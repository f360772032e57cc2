import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

/*
 * Issue 12 (4): after NFC, a name holds only Han characters (extensions included), ASCII
 * letters, spaces between letters and one `·` between parts; anything else is -3 locally,
 * on both channels, never a paid call.
 */

const MARKS = ['\u0301', '\u0300', '\u0308', '\u030C', '\u0336', '\u20DD', '\u0903', '\uFE0F'];
const pickMark = () => MARKS[Math.floor(Math.random() * MARKS.length)];

describe('names (issue 12.4)', () => {
  let h: VerificationHarness;
  let client: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const p = KNOWN[Math.floor(Math.random() * KNOWN.length)];

  beforeAll(async () => {
    h = await startWithSandbox();
    client = (await h.t.keyFor('client', 'names')).key;
  });
  afterAll(() => h.close());

  const refused: Array<[string, string]> = [
    ['a combining acute accent on a Han character', '张\u0301三'],
    ['a random combining mark inside the registered name', Array.from(p.name).join(pickMark())],
    ['a combining mark at the end', `${p.name}\u0301`],
    [
      'stacked diacritics',
      `${Array.from(p.name)[0]}\u0301\u0302\u0303\u0304\u0305${Array.from(p.name).slice(1).join('')}`,
    ],
    ['zalgo text', 'Z\u0336\u0337a\u0335l\u0334g\u0338o'],
    ['a letter decomposed (NFC makes it é, not ASCII)', 'Jose\u0301'],
    ['a precomposed accented letter', 'José'],
    ['Cyrillic letters', 'Иван Петров'],
    ['full-width Latin letters', 'ＭＡＲＩＡ'],
    ['a variation selector', `${p.name}\uFE00`],
    ['an ideographic iteration mark', '佐々木'],
    ['a zero-width joiner', `${Array.from(p.name)[0]}\u200D${Array.from(p.name).slice(1).join('')}`],
    ['Hangul', '김민준'],
  ];

  it.each(refused)('answers %s with -3 locally, not called, not charged (both channels)', async (_, name) => {
    const calls = h.sandbox.stats().calls;
    const api = await h.t.http.post('/v1/verifications').set(as(client)).send({ name, id_card: p.id_card }).expect(201);
    expect(api.body).toMatchObject({ status: 'completed', result: '-3', charged: false, amount: 0 });
    const dropIn = await h.t.http
      .post('/identity/idcard/ocr')
      .set(as(client))
      .send({ name, id_card: p.id_card })
      .expect(200);
    expect(dropIn.body.result).toBe('-3');
    expect(h.sandbox.stats().calls).toBe(calls);
  });

  it.each([
    ['the registered name', () => p.name, '0'],
    ['a minority name with a look-alike dot', () => '阿依古丽•买买提', null],
    ['a CJK Extension B character', () => '王𠀀', null],
    ['a foreign-style name in ASCII letters', () => 'MARIA JOSE', null],
  ])('still calls the vendor for %s', async (_, name, result) => {
    const calls = h.sandbox.stats().calls;
    const res = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: name(), id_card: p.id_card })
      .expect(201);
    expect(h.sandbox.stats().calls).toBe(calls + 1);
    expect(res.body.result).not.toBe('-3');
    if (result) expect(res.body.result).toBe(result);
  });
});
