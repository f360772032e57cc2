/**
 * Sandbox faults. Per request with the `X-Sandbox-Fault` header, queued by tests through
 * the programmatic handle, or drawn at random from configured rates. Pure parsing here.
 *
 * Header grammar: comma-separated tokens, e.g. `latency=50,db_error`:
 *   latency=MS    wait MS milliseconds before answering (0–60000)
 *   timeout       accept the request and never answer
 *   reset         read the request, then destroy the connection
 *   http500       500 api_error
 *   http429       429 too_many_requests (never charged)
 *   garbage       200 with a truncated JSON body
 *   daily_limit   result -7;  db_error  result -4;  upgrading  result -6 (never charged)
 *   unknown_result  200 with an undocumented result code ("-9")
 *   wrong_types     200 with `result` as a JSON number
 *   charged | uncharged   whether a call hit by a fault that strikes after the vendor has
 *                 decided (timeout, reset, http500, garbage, unknown_result, wrong_types)
 *                 is on the statement; default: the sandbox's `chargeFaultedCalls` setting.
 * At most one fault besides latency and charged/uncharged.
 */

export const FAULT_NAMES = [
  'timeout',
  'reset',
  'http500',
  'http429',
  'garbage',
  'daily_limit',
  'db_error',
  'upgrading',
  'unknown_result',
  'wrong_types',
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

/**
 * Faults that strike after the vendor has decided the result: a charged decision stays
 * charged although the caller never learns it. This is the "charged but unknown" case
 * that billing reconciliation exists for.
 */
export const POST_DECISION_FAULTS: readonly FaultName[] = [
  'timeout',
  'reset',
  'http500',
  'garbage',
  'unknown_result',
  'wrong_types',
];

export const MAX_LATENCY_MS = 60_000;

export interface FaultPlan {
  latencyMs?: number;
  fault?: FaultName;
  /** Overrides the sandbox's chargeFaultedCalls for a post-decision fault. */
  charged?: boolean;
}

/** Configured rates: `latency` in ms (always applied), each fault a probability (sum ≤ 1). */
export type FaultRates = { latency?: number } & Partial<Record<FaultName, number>>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const isFaultName = (s: string): s is FaultName => (FAULT_NAMES as readonly string[]).includes(s);

function parseLatency(value: string | undefined): number | null {
  if (value === undefined || !/^\d{1,5}$/.test(value)) return null;
  const ms = Number(value);
  return ms <= MAX_LATENCY_MS ? ms : null;
}

/** Parses an `X-Sandbox-Fault` header value (or a queued fault spec). */
export function parseFaultSpec(text: string): Parsed<FaultPlan> {
  const plan: FaultPlan = {};
  for (const raw of text.split(',')) {
    const token = raw.trim().toLowerCase();
    if (token === '') continue;
    const [key, value] = token.split('=', 2);
    if (key === 'latency') {
      const ms = parseLatency(value);
      if (ms === null) return { ok: false, error: `latency must be a number of milliseconds up to ${MAX_LATENCY_MS}` };
      plan.latencyMs = ms;
    } else if (value !== undefined) {
      return { ok: false, error: `"${key}" takes no value` };
    } else if (key === 'charged' || key === 'uncharged') {
      plan.charged = key === 'charged';
    } else if (isFaultName(key)) {
      if (plan.fault !== undefined) return { ok: false, error: 'at most one fault besides latency' };
      plan.fault = key;
    } else {
      return { ok: false, error: `unknown fault "${key.slice(0, 32)}"` };
    }
  }
  return { ok: true, value: plan };
}

/** Parses configured rates, e.g. `latency=20,http500=0.05,timeout=0.01`. */
export function parseFaultRates(text: string): Parsed<FaultRates> {
  const rates: FaultRates = {};
  for (const raw of text.split(',')) {
    const token = raw.trim().toLowerCase();
    if (token === '') continue;
    const [key, value] = token.split('=', 2);
    if (key === 'latency') {
      const ms = parseLatency(value);
      if (ms === null) return { ok: false, error: `latency must be a number of milliseconds up to ${MAX_LATENCY_MS}` };
      rates.latency = ms;
    } else if (isFaultName(key)) {
      const rate = value === undefined ? NaN : Number(value);
      if (!(rate >= 0 && rate <= 1)) return { ok: false, error: `${key} needs a rate between 0 and 1` };
      rates[key] = rate;
    } else {
      return { ok: false, error: `unknown fault "${key.slice(0, 32)}"` };
    }
  }
  return validateFaultRates(rates);
}

export function validateFaultRates(rates: FaultRates): Parsed<FaultRates> {
  let sum = 0;
  for (const name of FAULT_NAMES) {
    const rate = rates[name];
    if (rate === undefined) continue;
    if (!(rate >= 0 && rate <= 1)) return { ok: false, error: `${name} needs a rate between 0 and 1` };
    sum += rate;
  }
  if (sum > 1 + 1e-9) return { ok: false, error: 'fault rates add up to more than 1' };
  if (rates.latency !== undefined && parseLatency(String(rates.latency)) === null) {
    return { ok: false, error: `latency must be a number of milliseconds up to ${MAX_LATENCY_MS}` };
  }
  return { ok: true, value: rates };
}

/** Draws at most one fault from the rates with a uniform number in [0, 1). */
export function drawFault(rates: FaultRates, uniform: number): FaultName | undefined {
  let cumulative = 0;
  for (const name of FAULT_NAMES) {
    cumulative += rates[name] ?? 0;
    if (uniform < cumulative) return name;
  }
  return undefined;
}

/** mulberry32: a tiny seeded PRNG, so a configured fault mix can be replayed exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
