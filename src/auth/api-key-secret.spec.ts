import { generateApiKey, hashApiKey, keyFromHeaders, looksLikeApiKey, visiblePrefix } from './api-key-secret';

describe('API key secrets', () => {
  it('generates prefixed keys with at least 128 random bits and a stable hash', () => {
    const live = generateApiKey('live');
    const test = generateApiKey('test');
    expect(live.key).toMatch(/^idg_live_[A-Za-z0-9_-]{40}$/);
    expect(test.key).toMatch(/^idg_test_[A-Za-z0-9_-]{40}$/);
    // 40 base64url characters carry 240 bits.
    expect(40 * 6).toBeGreaterThanOrEqual(128);
    expect(live.hash).toBe(hashApiKey(live.key));
    expect(live.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(live.hash).not.toContain(live.key.slice(9));
  });

  it('never generates the same key twice in many draws', () => {
    const keys = new Set(Array.from({ length: 5000 }, () => generateApiKey('test').key));
    expect(keys.size).toBe(5000);
  });

  it('shows only the visible prefix', () => {
    const { key, prefix } = generateApiKey('test');
    expect(prefix).toBe(key.slice(0, 'idg_test_'.length + 8));
    expect(visiblePrefix(key)).toBe(prefix);
    expect(visiblePrefix('Bearer garbage')).toBe('(not an idgate key)');
  });

  it('recognises the key format', () => {
    expect(looksLikeApiKey(generateApiKey('live').key)).toBe(true);
    expect(looksLikeApiKey('idg_live_short')).toBe(false);
    expect(looksLikeApiKey('sk_live_' + 'a'.repeat(40))).toBe(false);
  });

  it('reads the key from Authorization: Bearer or X-API-Key', () => {
    expect(keyFromHeaders({ authorization: 'Bearer abc' })).toBe('abc');
    expect(keyFromHeaders({ authorization: 'bearer   abc  ' })).toBe('abc');
    expect(keyFromHeaders({ 'x-api-key': ' abc ' })).toBe('abc');
    expect(keyFromHeaders({ authorization: 'Basic dXNlcjpwYXNz' })).toBeNull();
    expect(keyFromHeaders({ authorization: 'Basic x', 'x-api-key': 'k' })).toBe('k');
    expect(keyFromHeaders({})).toBeNull();
  });
});
