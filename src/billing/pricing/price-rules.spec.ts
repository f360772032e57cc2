import { PRICE_BACKDATE_TOLERANCE_MS, priceInForce, PriceVersion, validFromProblem } from './price-rules';

describe('price rules', () => {
  const fallback: PriceVersion = { id: null, amount: 50, currency: 'CNY', validFrom: new Date(0) };
  const at = (iso: string) => new Date(iso);
  const prices: PriceVersion[] = [
    { id: 'a', amount: 60, currency: 'CNY', validFrom: at('2026-01-01T00:00:00Z') },
    { id: 'b', amount: 70, currency: 'CNY', validFrom: at('2026-06-01T00:00:00Z') },
  ];

  it('falls back to the configured price before the first price and with an empty table', () => {
    expect(priceInForce(prices, at('2025-12-31T23:59:59.999Z'), fallback)).toBe(fallback);
    expect(priceInForce([], at('2026-03-01T00:00:00Z'), fallback)).toBe(fallback);
  });

  it('takes the latest price whose valid_from is not after the instant (inclusive)', () => {
    expect(priceInForce(prices, at('2026-01-01T00:00:00Z'), fallback).id).toBe('a');
    expect(priceInForce(prices, at('2026-05-31T23:59:59.999Z'), fallback).id).toBe('a');
    expect(priceInForce(prices, at('2026-06-01T00:00:00Z'), fallback).id).toBe('b');
    expect(priceInForce(prices, at('2030-01-01T00:00:00Z'), fallback).id).toBe('b');
  });

  it('accepts a start now, in the future, or within the skew tolerance; refuses older ones', () => {
    const now = at('2026-03-01T12:00:00Z');
    expect(validFromProblem(now, now)).toBeNull();
    expect(validFromProblem(at('2026-04-01T00:00:00Z'), now)).toBeNull();
    expect(validFromProblem(new Date(now.getTime() - PRICE_BACKDATE_TOLERANCE_MS), now)).toBeNull();
    expect(validFromProblem(new Date(now.getTime() - PRICE_BACKDATE_TOLERANCE_MS - 1), now)).toMatch(/past/);
    expect(validFromProblem(new Date('nope'), now)).toMatch(/ISO 8601/);
  });
});
