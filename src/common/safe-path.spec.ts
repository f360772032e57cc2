import { REDACTED_SEGMENT, isSafeSegment, safePath } from './safe-path';

const KEY = `idg_test_${'Ab3dE6gH'.repeat(5)}`;
const SECRET = 'Zq8xYv-Ab3dE6gH_Kl9mNo1pQr2sTu4vWx5yZa7b';

describe('safePath', () => {
  it('keeps the segments of idgate’s routes: words and UUIDs', () => {
    for (const path of [
      '/v1/verifications',
      '/v1/verifications/0190f3c2-8d1e-7a4b-9c2d-3e4f5a6b7c8d',
      // Digit groups that, joined across the dashes, make 11 digits or more: still an id.
      '/v1/verifications/01a22e91-8886-7680-8f16-32415649f606',
      '/v1/verifications/12345678-1234-7234-8234-123456789012',
      '/v1/billing/reconciliations/0190F3C2-8D1E-7A4B-9C2D-3E4F5A6B7C8D/items',
      '/identity/idcard/ocr',
      '/console/js/views/audit.js',
      '/docs/swagger-ui-bundle.js',
      '/health/live',
      '/',
      '',
    ]) {
      expect(safePath(path)).toBe(path);
    }
  });

  it('never keeps the query string or fragment', () => {
    expect(safePath('/v1/verifications?id_card=360426199101010071&x=1')).toBe('/v1/verifications');
    expect(safePath('/v1/me#token=abc')).toBe('/v1/me');
  });

  it.each([
    ['/v1/verifications/360426199101010071', '/v1/verifications/:redacted'],
    ['/v1/verifications/34052419800101001x', '/v1/verifications/:redacted'],
    ['/v1/verifications/360426910101007', '/v1/verifications/:redacted'],
    ['/v1/verifications/360426-19910101-0071', '/v1/verifications/:redacted'],
    ['/v1/verifications/360426.19910101.0071/items', '/v1/verifications/:redacted/items'],
    ['/v1/verifications/%33%36%30%34%32%36%31%39%39%31%30%31%30%31%30%30%37%31', '/v1/verifications/:redacted'],
    ['/v1/verifications/%2533%2536%2530426199101010071', '/v1/verifications/:redacted'],
    ['/v1/verifications/%EF%BC%93%EF%BC%96%EF%BC%90426199101010071', '/v1/verifications/:redacted'], // full-width
    ['/v1/verifications/360426%E2%80%8B19910101%E2%80%8B0071', '/v1/verifications/:redacted'], // zero-width space
    ['/v1/verifications/13800138000', '/v1/verifications/:redacted'], // a mobile number
    [`/v1/${KEY}`, '/v1/:redacted'],
    [`/v1/api-keys/${SECRET}`, '/v1/api-keys/:redacted'],
    ['/v1/verifications/%E5%BC%A0%E4%B8%89', '/v1/verifications/:redacted'], // 张三: a name
    ['/v1/verifications/a%20b', '/v1/verifications/:redacted'],
    ['/v1/verifications/%ZZ', '/v1/verifications/:redacted'],
    [`/v1/${'a'.repeat(41)}`, '/v1/:redacted'],
  ])('redacts %j', (path, expected) => {
    expect(safePath(path)).toBe(expected);
  });

  it('judges one segment at a time', () => {
    expect(isSafeSegment('v1')).toBe(true);
    expect(isSafeSegment('api-key-requests')).toBe(true);
    expect(isSafeSegment('1234567890')).toBe(true);
    expect(isSafeSegment('12345678901')).toBe(false);
    expect(isSafeSegment(REDACTED_SEGMENT)).toBe(false);
  });
});
