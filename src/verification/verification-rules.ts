import { createHash, createHmac } from 'node:crypto';
import { checkIdCardNumber } from '../domain/id-card-number';
import { checkPersonName } from '../domain/person-name';
import {
  RESULT_DESCRIPTIONS,
  UpstreamOcrFields,
  UpstreamOutcome,
  UpstreamResultCode,
} from '../upstream/upstream.types';

/*
 * The verification rules that need no database or framework: local checks,
 * how an upstream outcome settles a verification, and request fingerprints
 * for idempotency.
 */

export type VerificationState = 'pending' | 'completed' | 'failed' | 'unknown';
export type ChargeState = 'charged' | 'not_charged' | 'unknown';

export interface NameAndIdCard {
  name: string;
  idCard: string;
}

export type LocalCheck =
  { kind: 'passed'; normalized: NameAndIdCard } | { kind: 'rejected'; result: '-2' | '-3'; description: string };

/**
 * The upstream's own first checks, done here so an invalid request costs nothing
 * and never leaves idgate: the ID number first (-2), then the name (-3).
 */
export function checkLocally(input: NameAndIdCard, now: Date): LocalCheck {
  const idCard = checkIdCardNumber(input.idCard, now);
  if (!idCard.ok) return { kind: 'rejected', result: '-2', description: RESULT_DESCRIPTIONS['-2'] };
  const name = checkPersonName(input.name);
  if (!name.ok) return { kind: 'rejected', result: '-3', description: RESULT_DESCRIPTIONS['-3'] };
  return { kind: 'passed', normalized: { name: name.normalized, idCard: idCard.normalized } };
}

/** How one upstream outcome settles a pending verification. */
export interface Settlement {
  status: Exclude<VerificationState, 'pending'>;
  result: UpstreamResultCode | null;
  description: string | null;
  chargeStatus: ChargeState;
  traceId: string | null;
  attempts: number;
  /** Upstream error code or transport reason, for failed/unknown; never PII. */
  error: string | null;
  ocr: UpstreamOcrFields | null;
  /** How the submission is answered once this is recorded. */
  answer: SettledAnswer;
}

/** How a settled submission is answered (the channel renders it). */
export type SettledAnswer =
  /** The verification as recorded (completed, or unknown until the vendor's statement says). */
  | { kind: 'recorded' }
  /** The upstream could not be reached or refused for load: recorded as failed, try again later. */
  | { kind: 'unavailable'; retryAfterSeconds: number }
  /** The upstream refused the request itself (not charged). */
  | { kind: 'upstream_rejected'; errorCode: string };

const retryAfter = (seconds: number | null | undefined) => Math.max(1, Math.ceil(seconds ?? 5));

/** The one reading of an upstream outcome: what is recorded, and how the submission is answered. */
export function settle(outcome: UpstreamOutcome): Settlement {
  switch (outcome.kind) {
    case 'answered':
      return {
        status: 'completed',
        result: outcome.result,
        description: outcome.description,
        chargeStatus: outcome.charged ? 'charged' : 'not_charged',
        traceId: outcome.traceId,
        attempts: outcome.attempts,
        error: null,
        ocr: outcome.fields,
        answer: { kind: 'recorded' },
      };
    case 'rejected':
      return {
        status: 'failed',
        result: null,
        description: null,
        chargeStatus: 'not_charged',
        traceId: outcome.traceId,
        attempts: outcome.attempts,
        error: (outcome.errorCode ?? `http_${outcome.httpStatus}`).slice(0, 64),
        ocr: null,
        answer:
          outcome.httpStatus === 429
            ? { kind: 'unavailable', retryAfterSeconds: retryAfter(outcome.retryAfterSeconds) }
            : { kind: 'upstream_rejected', errorCode: outcome.errorCode ?? `http_${outcome.httpStatus}` },
      };
    case 'unsent':
      return {
        status: 'failed',
        result: null,
        description: null,
        chargeStatus: 'not_charged',
        traceId: null,
        attempts: outcome.attempts,
        error: outcome.reason,
        ocr: null,
        answer: { kind: 'unavailable', retryAfterSeconds: retryAfter(outcome.retryAfterSeconds) },
      };
    case 'indeterminate':
      // May have been charged: nobody can tell until the vendor's statement says.
      return {
        status: 'unknown',
        result: null,
        description: null,
        chargeStatus: 'unknown',
        traceId: outcome.traceId,
        attempts: outcome.attempts,
        error: outcome.reason,
        ocr: null,
        answer: { kind: 'recorded' },
      };
  }
}

/** What a verification costs: the unit price when charged, nothing when not, unknown while unknown. */
export function amountFor(chargeStatus: ChargeState, unitPrice: number): number | null {
  if (chargeStatus === 'unknown') return null;
  return chargeStatus === 'charged' ? unitPrice : 0;
}

/** `charged` as the API shows it: true, false, or null while not known. */
export function chargedFlag(chargeStatus: ChargeState): boolean | null {
  return chargeStatus === 'unknown' ? null : chargeStatus === 'charged';
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** Domain label of the key that fingerprints requests, derived from PII_HMAC_KEY (never the key itself). */
const FINGERPRINT_KEY_LABEL = 'idgate/idempotency-request-fingerprint/v1';

/**
 * Identifies a request for idempotency: same endpoint and same body (key order ignored) → same
 * value. Keyed (HMAC-SHA256 under a key derived from PII_HMAC_KEY): the body holds a name and
 * an ID number, and an unkeyed hash in `idempotency_keys` would confirm a guessed identity offline.
 */
export function requestFingerprint(piiHmacKey: Buffer, endpoint: string, body: unknown): string {
  const key = createHmac('sha256', piiHmacKey).update(FINGERPRINT_KEY_LABEL).digest();
  return createHmac('sha256', key).update(endpoint).update('\n').update(canonicalJson(body)).digest('hex');
}

/**
 * The unkeyed fingerprint idgate stored before requests were fingerprinted with an HMAC. Used only
 * to recognise a retry of a key claimed before the upgrade (such rows expire within 24 h).
 */
export function legacyRequestFingerprint(endpoint: string, body: unknown): string {
  return createHash('sha256').update(endpoint).update('\n').update(canonicalJson(body)).digest('hex');
}

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** Start of the UTC day and month of `now`, for quotas. */
export function quotaPeriods(now: Date): { dayStart: Date; monthStart: Date } {
  return {
    dayStart: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())),
    monthStart: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
  };
}

/**
 * How long a `pending` row may wait before the sweeper calls it `unknown`: longer
 * than any call can take (every attempt timing out, plus backoff), with a margin.
 */
export function pendingDeadlineMs(upstream: {
  timeoutMs: number;
  maxAttempts: number;
  retryMaxDelayMs: number;
}): number {
  return upstream.timeoutMs * upstream.maxAttempts + upstream.retryMaxDelayMs * (upstream.maxAttempts - 1) + 5_000;
}

/**
 * Once the upstream has answered, the process holding the answer keeps trying to record
 * it (backoff capped at about a second). The sweeper leaves a pending row alone for this
 * much longer than the longest call, so that it never calls `unknown` an answer that a
 * live process is still recording (a late answer would still settle it, but as a
 * correction with two audit events).
 */
export const SETTLE_GRACE_MS = 15_000;

/** How old a `pending` row must be before the sweeper turns it into `unknown`. */
export function sweepDeadlineMs(upstream: { timeoutMs: number; maxAttempts: number; retryMaxDelayMs: number }): number {
  return pendingDeadlineMs(upstream) + SETTLE_GRACE_MS;
}

/**
 * The longest one submission can run: waiting for admission, the call with its
 * retries, and the wait for its answer to be recorded. A retry under the same
 * Idempotency-Key before this has passed may still be racing the original (409);
 * after it, the original has certainly ended.
 */
export function requestDeadlineMs(config: {
  upstream: { timeoutMs: number; maxAttempts: number; retryMaxDelayMs: number };
  admission: { queueWaitMs: number };
  settleWaitMs: number;
}): number {
  return config.admission.queueWaitMs + pendingDeadlineMs(config.upstream) + config.settleWaitMs;
}
