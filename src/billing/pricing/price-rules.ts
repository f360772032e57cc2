/*
 * Prices over time (pure): the price in force at T is the one with the latest
 * `valid_from <= T`; with no such price, the configured default applies.
 */

export interface PriceVersion {
  id: string | null;
  amount: number;
  currency: string;
  validFrom: Date;
}

/** How far in the past a new price may start: clock skew between admin and server, not a rewrite of history. */
export const PRICE_BACKDATE_TOLERANCE_MS = 60_000;

/** `prices` sorted by validFrom ascending. */
export function priceInForce(prices: readonly PriceVersion[], at: Date, fallback: PriceVersion): PriceVersion {
  let found: PriceVersion | null = null;
  for (const p of prices) {
    if (p.validFrom.getTime() <= at.getTime()) found = p;
    else break;
  }
  return found ?? fallback;
}

/** Null when `validFrom` is acceptable for a new price, else why not (for the `valid_from` field). */
export function validFromProblem(validFrom: Date, now: Date): string | null {
  if (Number.isNaN(validFrom.getTime())) return 'must be an ISO 8601 date-time';
  if (validFrom.getTime() < now.getTime() - PRICE_BACKDATE_TOLERANCE_MS) {
    return 'must not be in the past: price history is immutable, add a price that starts now or later';
  }
  return null;
}
