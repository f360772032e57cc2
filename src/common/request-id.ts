import { randomUUID } from 'node:crypto';
import { assertNoPii } from '../audit/audit-details';
import { containsKeyLikeRun } from '../auth/api-key-secret';
import { containsIdCardNumber } from '../domain/id-card-in-text';

/*
 * Two ids per request. idgate's own (a UUID, always generated here) is unique and is
 * what the audit trail records. A caller's `X-Request-Id` is only a correlation token:
 * it is kept (echoed, logged, recorded beside our own) when it is a short safe token,
 * but a caller may send the same value twice or copy someone else's, so nothing that
 * needs uniqueness or trust is keyed on it.
 */

const SAFE_TOKEN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The caller's X-Request-Id if it may be kept: a safe token that holds no ID number (however
 * written: `360426-19910101-0071`; see id-card-in-text.ts) and nothing that may be an API key
 * (its prefix, or a key's secret characters without it; see api-key-secret.ts). Otherwise null:
 * the request goes on under idgate's own id.
 */
export function acceptCallerRequestId(value: unknown): string | null {
  if (typeof value !== 'string' || !SAFE_TOKEN.test(value)) return null;
  if (containsIdCardNumber(value) || containsKeyLikeRun(value)) return null;
  try {
    // Whatever the audit trail would refuse is not kept either (it would lose the event).
    assertNoPii(value);
  } catch {
    return null;
  }
  return value;
}

export interface RequestIds {
  /** idgate's id: unique, never taken from the caller. */
  own: string;
  /** The caller's well-formed X-Request-Id, or null. */
  caller: string | null;
}

const IDS = Symbol('idgate.requestIds');

type WithIds = { headers: Record<string, string | string[] | undefined>; [IDS]?: RequestIds };

/** The ids of a request, assigned on first use (the logger asks first, so every later reader sees the same ones). */
export function requestIdsOf(req: object): RequestIds {
  const carrier = req as WithIds;
  let ids = carrier[IDS];
  if (!ids) {
    ids = { own: randomUUID(), caller: acceptCallerRequestId(carrier.headers?.['x-request-id']) };
    carrier[IDS] = ids;
  }
  return ids;
}

/** The id shown to the caller (X-Request-Id, problem bodies, logs): theirs when kept, else ours. */
export function visibleRequestId(ids: RequestIds): string {
  return ids.caller ?? ids.own;
}
