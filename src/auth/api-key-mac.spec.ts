import { randomBytes } from 'node:crypto';
import { apiKeyMac, apiKeyMacValid } from './api-key-mac';

describe('API key row MAC', () => {
  const key = randomBytes(32);
  const row = { id: 'k1', keyHash: 'a'.repeat(64), role: 'finance', clientId: null, createdByKeyId: 'admin-1' };

  it('accepts the row it was made for', () => {
    expect(apiKeyMacValid(key, row, apiKeyMac(key, row))).toBe(true);
  });

  it.each([
    ['another role', { role: 'compliance' }],
    ['another hash', { keyHash: 'b'.repeat(64) }],
    ['another client', { clientId: 'c1' }],
    ['another maker', { createdByKeyId: null }],
    ['another id', { id: 'k2' }],
  ])('refuses the same MAC on a row with %s', (_what, change) => {
    expect(apiKeyMacValid(key, { ...row, ...change }, apiKeyMac(key, row))).toBe(false);
  });

  it('refuses a missing, malformed or foreign-key MAC', () => {
    expect(apiKeyMacValid(key, row, null)).toBe(false);
    expect(apiKeyMacValid(key, row, 'zz')).toBe(false);
    expect(apiKeyMacValid(key, row, apiKeyMac(randomBytes(32), row))).toBe(false);
  });
});
