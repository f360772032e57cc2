import {
  containsKeyLikeRun,
  credentialsFromHeaders,
  generateApiKey,
  hashApiKey,
  looksLikeApiKey,
  repeatedCredentialHeader,
  visiblePrefix,
} from './api-key-secret';

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
    const key = (k: string) => ({ kind: 'key', key: k });
    expect(credentialsFromHeaders({ authorization: 'Bearer abc' })).toEqual(key('abc'));
    expect(credentialsFromHeaders({ authorization: 'bearer   abc  ' })).toEqual(key('abc'));
    expect(credentialsFromHeaders({ authorization: 'BEARER\tabc' })).toEqual(key('abc'));
    expect(credentialsFromHeaders({ 'x-api-key': ' abc ' })).toEqual(key('abc'));
    expect(credentialsFromHeaders({ authorization: 'Bearer abc', 'x-api-key': 'abc' })).toEqual(key('abc'));
    expect(credentialsFromHeaders({})).toEqual({ kind: 'none' });
    expect(credentialsFromHeaders({ authorization: '', 'x-api-key': '  ' })).toEqual({ kind: 'none' });
  });

  it('ignores another scheme (a proxy in front may send Basic) but never falls back from a bad Bearer', () => {
    expect(credentialsFromHeaders({ authorization: 'Basic dXNlcjpwYXNz' })).toEqual({ kind: 'none' });
    expect(credentialsFromHeaders({ authorization: 'Basic x', 'x-api-key': 'k' })).toEqual({ kind: 'key', key: 'k' });
    for (const authorization of [
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Bearer a,b',
      'Bearer a;b',
      'Bearer "abc"',
      'Bearer,abc',
      'Bearerabc',
      'abc',
      'idg_test_x',
    ]) {
      expect({ authorization, got: credentialsFromHeaders({ authorization, 'x-api-key': 'k' }) }).toEqual({
        authorization,
        got: { kind: 'malformed' },
      });
    }
    // An idgate key under another scheme is a mistake to refuse, not to ignore.
    expect(credentialsFromHeaders({ authorization: `Token idg_test_${'a'.repeat(40)}`, 'x-api-key': 'k' })).toEqual({
      kind: 'malformed',
    });
  });

  it('refuses two different keys, and an X-API-Key that is not one token', () => {
    const a = generateApiKey('test').key;
    const b = generateApiKey('test').key;
    expect(credentialsFromHeaders({ authorization: `Bearer ${a}`, 'x-api-key': b })).toEqual({
      kind: 'conflicting',
      prefixes: [visiblePrefix(a), visiblePrefix(b)],
    });
    expect(credentialsFromHeaders({ authorization: `Bearer ${a}`, 'x-api-key': a.toUpperCase() }).kind).toBe(
      'conflicting',
    );
    // A repeated X-API-Key arrives joined with ", ".
    expect(credentialsFromHeaders({ 'x-api-key': `${a}, ${b}` })).toEqual({ kind: 'malformed' });
    expect(credentialsFromHeaders({ 'x-api-key': `${a} ${b}` })).toEqual({ kind: 'malformed' });
    expect(credentialsFromHeaders({ 'x-api-key': `${a};` })).toEqual({ kind: 'malformed' });
    expect(credentialsFromHeaders({ 'x-api-key': [a, b] })).toEqual({ kind: 'malformed' });
    expect(credentialsFromHeaders({ authorization: [`Bearer ${a}`] as unknown as string })).toEqual({
      kind: 'malformed',
    });
  });

  it('refuses a credential header sent twice, whatever the values, from the raw header list', () => {
    const a = generateApiKey('test').key;
    const b = generateApiKey('test').key;
    const cases: Array<[string[], string | null]> = [
      [['Authorization', `Bearer ${a}`, 'Authorization', `Bearer ${b}`], 'Authorization'],
      [['authorization', `Bearer ${a}`, 'AUTHORIZATION', `Bearer ${a}`], 'Authorization'], // the same value
      [['Authorization', `Bearer ${a}`, 'Authorization', 'Bearer bogus'], 'Authorization'],
      [['Authorization', 'Basic eDp5', 'Authorization', `Bearer ${a}`], 'Authorization'],
      [['X-API-Key', a, 'Host', 'x', 'x-api-key', a], 'X-API-Key'],
      [['X-API-Key', a, 'Authorization', `Bearer ${a}`], null],
      [['Host', 'x', 'X-Api-Key-Id', a, 'X-API-Key', a], null],
      [[], null],
    ];
    for (const [raw, repeated] of cases) {
      expect({ raw, got: repeatedCredentialHeader(raw) }).toEqual({ raw, got: repeated });
    }
    // Node's parsed headers keep the first Authorization only: the raw list decides.
    expect(
      credentialsFromHeaders({ authorization: `Bearer ${a}` }, ['Authorization', `Bearer ${a}`, 'Authorization', b]),
    ).toEqual({ kind: 'repeated', header: 'Authorization' });
    expect(credentialsFromHeaders({ authorization: `Bearer ${a}` }, ['Authorization', `Bearer ${a}`])).toEqual({
      kind: 'key',
      key: a,
    });
  });

  it('recognises what may be a key’s secret, with or without its prefix', () => {
    const { key } = generateApiKey('live');
    for (const text of [
      key,
      key.slice('idg_live_'.length),
      `trace.${key.slice(9, 41)}`,
      'idg_TEST_x',
      'x'.repeat(32),
    ]) {
      expect({ text, found: containsKeyLikeRun(text) }).toEqual({ text, found: true });
    }
    for (const text of [
      '0af7651916cd43dd8448eb211c80319c',
      '0af76519-16cd-43dd-8448-eb211c80319c',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'x'.repeat(31),
      'order-1234.attempt-2',
      'dup-both-headers-one-repeated-clients', // words joined by dashes
      'checkout_service_request_0001_retry_2',
    ]) {
      expect({ text, found: containsKeyLikeRun(text) }).toEqual({ text, found: false });
    }
  });
});
