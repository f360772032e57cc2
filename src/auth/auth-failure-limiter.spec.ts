import type { AppConfig } from '../config/app-config';
import { AuthFailureLimiter, knownKeyIdentity, presentedKeyIdentity } from './auth-failure-limiter';
import { RateLimitStore } from './rate-limit-store';

function limiter(limit: number): AuthFailureLimiter {
  const config = { rateLimit: { perMinute: 100 }, abuse: { authFailuresPerMinute: limit } } as unknown as AppConfig;
  return new AuthFailureLimiter(config, new RateLimitStore(config));
}

describe('AuthFailureLimiter (per-process counters)', () => {
  it('answers `limit` refusals, then limits; the crossing is reported once', async () => {
    const l = limiter(3);
    const verdicts = [];
    for (let i = 0; i < 8; i++) verdicts.push(await l.registerFailure('203.0.113.1', null));
    expect(verdicts.map((v) => v.limited)).toEqual([false, false, false, true, true, true, true, true]);
    expect(verdicts.map((v) => v.crossed)).toEqual([[], [], [], ['address'], [], [], [], []]);
    expect(verdicts[3].retryAfterSeconds).toBeGreaterThan(0);
    expect(verdicts[3].retryAfterSeconds).toBeLessThanOrEqual(60);
    // Another address has its own count.
    expect((await l.registerFailure('203.0.113.2', null)).limited).toBe(false);
  });

  it('counts a key across addresses, and says when a presented key is used up', async () => {
    const l = limiter(2);
    const key = presentedKeyIdentity(`idg_test_${'k'.repeat(40)}`);
    expect(await l.keyExhausted(key)).toBeNull();
    expect((await l.registerFailure('198.51.100.1', key)).limited).toBe(false);
    expect((await l.registerFailure('198.51.100.2', key)).limited).toBe(false);
    expect(await l.keyExhausted(key)).toBeGreaterThan(0);
    const third = await l.registerFailure('198.51.100.3', key);
    expect(third).toMatchObject({ limited: true, crossed: ['key'] });
  });

  it('opens no key counter for an address already past its limit', async () => {
    const l = limiter(1);
    await l.registerFailure('203.0.113.9', null);
    const made = presentedKeyIdentity('made-up');
    expect((await l.registerFailure('203.0.113.9', made)).crossed).toEqual(['address']);
    expect(await l.keyExhausted(made)).toBeNull();
    // The same key from an address with budget left is counted.
    await l.registerFailure('203.0.113.10', made);
    expect(await l.keyExhausted(made)).not.toBeNull();
  });

  it('names keys by hash or id, never by the key', () => {
    const secret = `idg_live_${'s'.repeat(40)}`;
    expect(presentedKeyIdentity(secret)).toMatch(/^presented:[0-9a-f]{32}$/);
    expect(presentedKeyIdentity(secret)).not.toContain('ssss');
    expect(knownKeyIdentity('0190-abc')).toBe('key:0190-abc');
  });
});
