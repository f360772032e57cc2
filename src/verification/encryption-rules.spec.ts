import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  answerHmacs,
  encryptedFieldsOf,
  encryptionProblems,
  prepareFields,
  readsAsIdCardNumber,
  readsAsName,
} from './encryption-rules';

const NOW = new Date('2026-11-25T12:00:00Z');
const CIPHER_NAME = 'q83vEjRWeJCrze8SNFZ4kA==';
const CIPHER_ID = 'c2VjcmV0LWNpcGhlcnRleHQtb2YtaWQ=';
const aes = (encrypt_list: unknown, extra: Record<string, unknown> = {}) => ({
  algorithm: 'AES-256-CBC',
  ciphertext_blob: 'AQICAHh8kms-blob==',
  encrypt_list,
  iv: '0123456789abcdef',
  tag_list: [],
  ...extra,
});
const both = { name: CIPHER_NAME, id_card: CIPHER_ID };

describe('encryptionProblems', () => {
  it.each([
    ['both fields, AES-256-CBC', [aes(['name', 'id_card'])], both],
    ['one field, the other in clear', [aes(['id_card'])], { name: '张三', id_card: CIPHER_ID }],
    ['the name only', [aes(['name'])], { name: CIPHER_NAME, id_card: '360426199101010071' }],
    ['one object per field', [aes(['name']), aes(['id_card'])], both],
    [
      'SM4-GCM with one tag per field',
      [aes(['name', 'id_card'], { algorithm: 'SM4-GCM', tag_list: ['t1', 't2'] })],
      both,
    ],
    ['tag_list left out (AES-256-CBC)', [aes(['name', 'id_card'], { tag_list: undefined })], both],
    ['a numeric ciphertext_blob (the vendor OpenAPI type)', [aes(['name', 'id_card'], { ciphertext_blob: 12 })], both],
    ['a single ASCII word as the name ciphertext', [aes(['name', 'id_card'])], { ...both, name: 'abcdEFGH' }],
  ])('accepts %s', (_, encryption, request) => {
    expect(encryptionProblems(encryption, request)).toEqual([]);
  });

  it('accepts no encryption at all', () => {
    expect(encryptionProblems(undefined, { name: '张三', id_card: '360426199101010071' })).toEqual([]);
  });

  it.each([
    ['an empty array', [], /at least one encryption object/],
    ['an empty object', [{}], /algorithm[\s\S]*ciphertext_blob[\s\S]*iv[\s\S]*encrypt_list/],
    ['an object, not an array', aes(['name']), /must be an array/],
    ['a string', 'AES', /must be an array/],
    ['an entry that is not an object', ['x'], /must be an object/],
    ['an entry that is an array', [[]], /must be an object/],
    ['an empty encrypt_list', [aes([])], /encrypt_list must name/],
    ['encrypt_list not an array', [aes('name')], /encrypt_list must name/],
    ['an unknown field name', [aes(['name', 'id_card', 'phone'])], /may name only name and id_card/],
    ['Tencent-style field names', [aes(['Name', 'IdCard'])], /may name only/],
    ['a non-string field name', [aes([1])], /may name only/],
    ['a field listed twice', [aes(['name', 'name', 'id_card'])], /a second time/],
    ['a field listed in two objects', [aes(['name', 'id_card']), aes(['name'])], /a second time/],
    ['three objects', [aes(['name']), aes(['id_card']), aes(['name'])], /at most 2/],
    ['an unknown algorithm', [aes(['name', 'id_card'], { algorithm: 'AES-128-ECB' })], /algorithm must be one of/],
    ['no algorithm', [aes(['name', 'id_card'], { algorithm: undefined })], /algorithm must be one of/],
    ['a lower-case algorithm', [aes(['name', 'id_card'], { algorithm: 'aes-256-cbc' })], /algorithm must be one of/],
    ['no ciphertext_blob', [aes(['name', 'id_card'], { ciphertext_blob: undefined })], /ciphertext_blob/],
    ['an empty ciphertext_blob', [aes(['name', 'id_card'], { ciphertext_blob: ' ' })], /ciphertext_blob/],
    ['an object as ciphertext_blob', [aes(['name', 'id_card'], { ciphertext_blob: {} })], /ciphertext_blob/],
    ['a short iv', [aes(['name', 'id_card'], { iv: '0123' })], /iv must be a string of 16/],
    ['a long iv', [aes(['name', 'id_card'], { iv: '0123456789abcdef0' })], /iv must be a string of 16/],
    ['no iv', [aes(['name', 'id_card'], { iv: undefined })], /iv must be a string of 16/],
    ['a tag_list of numbers', [aes(['name', 'id_card'], { tag_list: [1] })], /tag_list must be an array of strings/],
    ['SM4-GCM without tags', [aes(['name', 'id_card'], { algorithm: 'SM4-GCM' })], /one tag per field/],
    [
      'SM4-GCM with too few tags',
      [aes(['name', 'id_card'], { algorithm: 'SM4-GCM', tag_list: ['t'] })],
      /one tag per field/,
    ],
    ['a field the vendor does not define', [aes(['name', 'id_card'], { key: 'k' })], /may only have/],
  ])('refuses %s', (_, encryption, message) => {
    const problems = encryptionProblems(encryption, both);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('; ')).toMatch(message);
  });

  it.each([
    ['an 18-digit number', '360426199101010071'],
    ['an 18-digit number with a lower-case x', '34052419800101001x'],
    ['a number with a wrong check character (still readable)', '110101199003071234'],
    ['a 15-digit number', '360426910101007'],
    ['a number with spaces around and inside', ' 360426 19910101 0071 '],
    ['a number with hyphens', '360426-19910101-0071'],
    ['full-width digits', '３６０４２６１９９１０１０１００７１'],
  ])('refuses id_card listed as encrypted but holding %s', (_, idCard) => {
    const problems = encryptionProblems([aes(['name', 'id_card'])], { name: CIPHER_NAME, id_card: idCard });
    expect(problems).toEqual([expect.stringMatching(/names id_card, but id_card is readable/)]);
    expect(problems.join()).not.toContain(idCard.trim());
  });

  it.each([
    ['a Chinese name', '张三'],
    ['a minority name', '阿依古丽·买买提'],
    ['a name with a look-alike dot', '买买提•艾力'],
    ['a foreign-style name of two words', 'MARIA JOSE'],
    ['a name with an accent', 'José'],
    ['a name with combining marks', '张\u0301三'],
    ['a Chinese name with a digit (not a ciphertext either)', '张3'],
  ])('refuses name listed as encrypted but holding %s', (_, name) => {
    const problems = encryptionProblems([aes(['name', 'id_card'])], { name, id_card: CIPHER_ID });
    expect(problems).toEqual([expect.stringMatching(/names name, but name is readable/)]);
  });

  it.each([
    ['name listed but not sent', [aes(['name', 'id_card'])], { id_card: CIPHER_ID }, /requires name and id_card/],
    ['an empty listed value', [aes(['name', 'id_card'])], { name: '  ', id_card: CIPHER_ID }, /no encrypted name/],
    ['image mode (nothing to encrypt)', [aes(['name'])], { image_url: 'https://a.example/x.jpg' }, /no encrypted name/],
    [
      'a listed value that is not a string',
      [aes(['name', 'id_card'])],
      { name: 5, id_card: CIPHER_ID },
      /no encrypted/,
    ],
  ])('refuses %s', (_, encryption, request, message) => {
    expect(encryptionProblems(encryption, request).join('; ')).toMatch(message);
  });

  it('never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (encryption, name, idCard) => {
        expect(() => encryptionProblems(encryption, { name, id_card: idCard })).not.toThrow();
      }),
    );
  });
});

describe('readable values', () => {
  it.each([
    '360426199101010071',
    '36042619910101007', // without its check character
    '3604261991010100711', // one digit too many
    '360426910101007', // the legacy 15 digits
    'abc360426199101010071', // inside hex-looking text
    'Zm9v360426199101010071', // inside base64-looking text
    '3604-2619-9101-0100-71',
    '３６０４２６１９９１０１０１００７１', // full width
  ])('takes %j for an ID number in clear', (text) => {
    expect(readsAsIdCardNumber(text)).toBe(true);
  });

  it('never takes a base64 or hex ciphertext for a readable name or ID number', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 96 }), fc.constantFrom('base64', 'base64url', 'hex'), (n, encoding) => {
        const text = randomBytes(n).toString(encoding as BufferEncoding);
        expect(readsAsName(text)).toBe(false);
        expect(readsAsIdCardNumber(text)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('encryptedFieldsOf', () => {
  it('is exactly what the encrypt_lists name', () => {
    expect([...encryptedFieldsOf([aes(['id_card'])])]).toEqual(['id_card']);
    expect([...encryptedFieldsOf([aes(['name']), aes(['id_card'])])].sort()).toEqual(['id_card', 'name']);
    expect([...encryptedFieldsOf([])]).toEqual([]);
    expect([...encryptedFieldsOf([{}])]).toEqual([]);
    expect([...encryptedFieldsOf(undefined)]).toEqual([]);
  });
});

describe('prepareFields', () => {
  const nameMode = 'name_id_card' as const;

  it('checks and normalises both fields in clear', () => {
    expect(prepareFields({ name: ' 买买提•艾力 ', idCard: '34052419800101001x' }, nameMode, NOW)).toEqual({
      name: '买买提·艾力',
      idCard: '34052419800101001X',
      rejection: null,
      bothClear: true,
      upstream: { name: '买买提·艾力', id_card: '34052419800101001X' },
    });
  });

  it('answers -2 then -3 on the clear fields, keeping what was sent', () => {
    expect(prepareFields({ name: '张3', idCard: '110101199003071234' }, nameMode, NOW)).toMatchObject({
      rejection: { result: '-2' },
      name: '张3',
      idCard: '110101199003071234',
    });
    expect(prepareFields({ name: '张\u0301三', idCard: '360426199101010071' }, nameMode, NOW)).toMatchObject({
      rejection: { result: '-3' },
    });
  });

  it('checks the clear field and passes the encrypted one through untouched', () => {
    const idEncrypted = { name: '张3', idCard: CIPHER_ID, encryption: [aes(['id_card'])] };
    expect(prepareFields(idEncrypted, nameMode, NOW)).toEqual({
      name: '张3',
      idCard: null,
      rejection: { result: '-3', description: expect.any(String) },
      bothClear: false,
      upstream: { name: '张3', id_card: CIPHER_ID },
    });
    const nameEncrypted = { name: CIPHER_NAME, idCard: '34052419800101001x', encryption: [aes(['name'])] };
    expect(prepareFields(nameEncrypted, nameMode, NOW)).toEqual({
      name: null,
      idCard: '34052419800101001X',
      rejection: null,
      bothClear: false,
      upstream: { name: CIPHER_NAME, id_card: '34052419800101001X' },
    });
    const badId = { name: CIPHER_NAME, idCard: '110101199003071234', encryption: [aes(['name'])] };
    expect(prepareFields(badId, nameMode, NOW).rejection?.result).toBe('-2');
  });

  it('checks nothing when both are encrypted, and nothing in image mode', () => {
    const encrypted = { name: CIPHER_NAME, idCard: CIPHER_ID, encryption: [aes(['name', 'id_card'])] };
    expect(prepareFields(encrypted, nameMode, NOW)).toEqual({
      name: null,
      idCard: null,
      rejection: null,
      bothClear: false,
      upstream: { name: CIPHER_NAME, id_card: CIPHER_ID },
    });
    expect(prepareFields({ imageUrl: 'https://a.example/x.jpg' }, 'image', NOW)).toEqual({
      name: null,
      idCard: null,
      rejection: null,
      bothClear: false,
      upstream: {},
    });
  });
});

describe('answerHmacs', () => {
  const hasher = { idCardHmac: (v: string) => `id:${v}`, nameHmac: (v: string) => `name:${v}` };
  const answer = (name: string, id_card: string) => ({ name, id_card, sex: '', nation: '', birth: '', address: '' });

  it('hashes the ID number read from a card', () => {
    expect(
      answerHmacs(
        hasher,
        { mode: 'image', nameHmac: null, idCardHmac: null },
        answer('张伟', '360426199101010071'),
        NOW,
      ),
    ).toEqual({ idCardHmac: 'id:360426199101010071' });
  });

  it('hashes readable echoes of encrypted fields only', () => {
    const encrypted = { mode: 'name_id_card', nameHmac: null, idCardHmac: null };
    expect(answerHmacs(hasher, encrypted, answer('张伟', '360426199101010071'), NOW)).toEqual({
      nameHmac: 'name:张伟',
      idCardHmac: 'id:360426199101010071',
    });
    // The vendor echoed the ciphertext: nothing readable to hash.
    expect(answerHmacs(hasher, encrypted, answer('q83vEjRW+JCrze8=', CIPHER_ID), NOW)).toEqual({});
    // A field sent in clear keeps the HMAC it was stored with.
    const clearId = { mode: 'name_id_card', nameHmac: null, idCardHmac: 'stored' };
    expect(answerHmacs(hasher, clearId, answer('张伟', '360426199101010071'), NOW)).toEqual({ nameHmac: 'name:张伟' });
    expect(answerHmacs(hasher, encrypted, null, NOW)).toEqual({});
  });
});
