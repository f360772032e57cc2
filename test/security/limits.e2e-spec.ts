import { monitorEventLoopDelay } from 'node:perf_hooks';
import { JSON_LIMITS } from '../../src/common/body-parsers';
import { MAX_REPORTED_ERRORS } from '../../src/common/validation';
import { startTestApp, TestApp } from '../support/test-app';

/*
 * Finding 1 of the outside security test: a body of 300,000 unknown keys (3.5 MB, under the body
 * limit) froze the event loop for 28 s (class-validator's unknown-property handling is quadratic)
 * and was answered with 32 MB echoing every name; 500,000 entries in `encrypt_list` were answered
 * with 59 MB. Every body and query is now bounded in the work it causes and in its answer: the
 * JSON parse step refuses bodies with too many keys or array entries (413 naming the limit), and a
 * 400 lists at most 20 errors, never echoing a long property name.
 */

const BODY_LIMIT = 5 * 1024 * 1024; // the production default
/** Far above any honest 400 (one error is ~60 bytes), far below the 32 MB that was answered. */
const MAX_ANSWER_BYTES = 8 * 1024;

const manyKeys = (n: number, name = (i: number) => `k${i}`) =>
  `{${Array.from({ length: n }, (_, i) => `"${name(i)}":1`).join(',')}}`;
const encryptionWith = (list: string) =>
  `{"name":"c2VjcmV0","id_card":"Y2lwaGVy","encryption":[{"algorithm":"AES-256-CBC","ciphertext_blob":"blob",` +
  `"iv":"1234567890abcdef","encrypt_list":${list}}]}`;
const listOf = (n: number, entry: string) => `[${Array(n).fill(entry).join(',')}]`;

describe('bodies and queries are bounded in the work they cause and in their answer', () => {
  let t: TestApp;
  let compliance: string;
  let client: string;

  beforeAll(async () => {
    t = await startTestApp({ bodyLimitBytes: BODY_LIMIT });
    compliance = (await t.keyFor('compliance')).key;
    client = (await t.keyFor('client')).key;
  });
  afterAll(() => t.close());

  const post = (path: string, body: string, key: string | null = compliance) => {
    const req = t.http.post(path).set('Content-Type', 'application/json');
    return (key ? req.set('Authorization', `Bearer ${key}`) : req).send(body);
  };
  const size = (res: { text: string }) => Buffer.byteLength(res.text);

  it('refuses the 300,000-key body with 413 naming the limit, while /health/live keeps answering', async () => {
    const attack = manyKeys(300_000);
    expect(attack.length).toBeGreaterThan(3_000_000);
    expect(attack.length).toBeLessThan(BODY_LIMIT);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const [health, ...answers] = await Promise.all([
      t.http.get('/health/live'),
      post('/v1/verifications/search', attack),
      post('/v1/verifications/search', attack, null), // before authentication too: the parser refuses it
      post('/v1/verifications', attack, client),
      post('/identity/idcard/ocr', attack, client),
      post(
        '/v1/clients',
        manyKeys(50_000, (i) => `${'n'.repeat(40)}${i}`),
      ), // 2.3 MB of long names
    ]);
    loop.disable();
    expect(health.status).toBe(200);
    for (const res of answers) {
      expect(res.status).toBe(413);
      expect(size(res)).toBeLessThan(2048);
      expect(res.text).not.toContain('k299999');
    }
    expect(answers[0].body).toMatchObject({
      type: 'urn:idgate:problem:payload-too-large',
      limit: 'json_keys',
      max: JSON_LIMITS.keys,
      detail: expect.stringContaining(`${JSON_LIMITS.keys} object keys`),
    });
    // The drop-in endpoint answers in the upstream's format.
    expect(answers[3].body.error.message).toContain(`${JSON_LIMITS.keys} object keys`);
    // Not a race on wall-clock time: the 28 s freeze would be caught by a bound 10 times as generous as needed.
    expect(loop.max / 1e9).toBeLessThan(3);
    expect((await t.http.get('/health/live')).status).toBe(200);
  });

  it('refuses keys spread over nested objects, and huge arrays anywhere, before validation', async () => {
    const nested = `{"filters":[${Array.from({ length: 5 }, () => manyKeys(500)).join(',')}]}`;
    const cases: Array<[string, string, string]> = [
      ['/v1/verifications/search', nested, 'json_keys'],
      ['/v1/verifications', encryptionWith(listOf(500_000, '"x"')), 'json_array_entries'],
      ['/identity/idcard/ocr', encryptionWith(listOf(1_001, '"name"')), 'json_array_entries'],
      ['/v1/verifications/search', `{"a":${listOf(20, listOf(900, '0'))}}`, 'json_entries'],
      ['/v1/verifications/search', listOf(300_000, '{}'), 'json_array_entries'],
    ];
    for (const [path, body, limit] of cases) {
      const res = await post(path, body, path === '/v1/verifications/search' ? compliance : client);
      expect({ path, limit, status: res.status }).toEqual({ path, limit, status: 413 });
      expect(size(res)).toBeLessThan(2048);
      if (path.startsWith('/v1/')) expect(res.body.limit).toBe(limit);
    }
  });

  it('answers a body at the limits with at most 20 errors and the count of the rest', async () => {
    const cases: Array<[string, string, string | null, number]> = [
      ['/v1/verifications/search', manyKeys(JSON_LIMITS.keys), compliance, JSON_LIMITS.keys],
      ['/v1/clients', manyKeys(1_500, (i) => `field_${i}`), null, 1_500],
      ['/v1/verifications', manyKeys(JSON_LIMITS.keys), client, JSON_LIMITS.keys],
    ];
    for (const [path, body, key, unknown] of cases) {
      const admin = key ?? (await t.keyFor('admin')).key;
      const res = await post(path, body, admin);
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      expect(size(res)).toBeLessThan(MAX_ANSWER_BYTES);
      expect(res.body.errors).toHaveLength(MAX_REPORTED_ERRORS);
      // The other errors are counted, not listed (the required fields missing count too).
      expect(res.body.errors_omitted).toBeGreaterThanOrEqual(unknown - MAX_REPORTED_ERRORS);
      expect(res.body.detail).toMatch(/; and \d+ more$/);
    }
  });

  it('answers the largest encrypt_list accepted with one short message', async () => {
    for (const entry of ['"x"', '"name"', '1', '{}']) {
      const res = await post('/v1/verifications', encryptionWith(listOf(JSON_LIMITS.arrayEntries, entry)), client);
      expect({ entry, status: res.status }).toEqual({ entry, status: 400 });
      expect(size(res)).toBeLessThan(MAX_ANSWER_BYTES);
      const field = (res.body.errors as Array<{ field: string; message: string }>).find(
        (e) => e.field === 'encryption',
      );
      expect(field?.message.length).toBeLessThanOrEqual(240);
    }
  });

  it('never echoes a long property name, in a body or a query', async () => {
    const long = `${'secret'.repeat(20)}360426199101010071`;
    const body = await post('/v1/verifications/search', JSON.stringify({ [long]: 1, [`${long}2`]: { [long]: 2 } }));
    expect(body.status).toBe(400);
    expect(body.text).not.toContain('secretsecret');
    expect(body.body.errors).toContainEqual({
      field: `(a name of ${long.length} characters)`,
      message: `property (a name of ${long.length} characters) should not exist`,
    });
    const query = await t.http
      .get(`/v1/verifications?${encodeURIComponent(long)}=1&${'q'.repeat(5000)}=2`)
      .set('Authorization', `Bearer ${compliance}`);
    expect(query.status).toBe(400);
    expect(query.text).not.toContain('secretsecret');
    expect(query.text).not.toContain('q'.repeat(41));
    // A short unknown name is still named: the caller learns which field to remove.
    const short = await post('/v1/verifications/search', JSON.stringify({ admin: true }));
    expect(short.body.errors).toEqual([{ field: 'admin', message: 'property admin should not exist' }]);
  });

  it('bounds the answer to a query of many unknown parameters', async () => {
    const params = Array.from({ length: 1_500 }, (_, i) => `p${i}=1`).join('&');
    const res = await t.http.get(`/v1/verifications?${params}`).set('Authorization', `Bearer ${compliance}`);
    expect(res.status).toBe(400);
    expect(size(res)).toBeLessThan(MAX_ANSWER_BYTES);
    expect(res.body.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(res.body.errors_omitted).toBeGreaterThan(0);
  });
});
