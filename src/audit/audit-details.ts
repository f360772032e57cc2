import type { JsonValue } from './canonical';

/*
 * Audit details must never hold personal data or secrets (SPEC §4.3, §5): the
 * audit trail is kept for years and exported to auditors. Masked values and
 * HMACs are fine. This guard is the last line of defence against a caller
 * passing a raw value by mistake; it throws, so the business transaction
 * fails loudly in tests instead of leaking quietly in production.
 */

/** Keys that hold PII: allowed only with a masked value (containing "*"). */
const MASKABLE_KEYS = new Set(['name', 'id_card', 'idcard', 'id_number', 'id_card_number', 'phone', 'mobile']);
/** Keys whose values may never appear, masked or not. */
const FORBIDDEN_KEYS = new Set([
  'address',
  'birth',
  'birthday',
  'sex',
  'nation',
  'image_url',
  'image_base64',
  'image',
  'encryption',
  'key',
  'api_key',
  'secret',
  'token',
  'password',
  'authorization',
]);
// Standalone runs only: digits inside a hex hash or an id are bounded by letters and do not match.
const ID_NUMBER = /(^|[^0-9A-Za-z])([0-9]{17}[0-9Xx]|[0-9]{15})($|[^0-9A-Za-z])/;
const FULL_API_KEY = /idg_(live|test)_[A-Za-z0-9_-]{40}/;

export class AuditDetailsError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    // The message names the path only, never the value.
    super(`audit details ${path}: ${problem}`);
    this.name = 'AuditDetailsError';
  }
}

function normaliseKey(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Throws AuditDetailsError when `details` holds a known PII key unmasked, an ID-number-like or API-key-like value. */
export function assertNoPii(details: JsonValue, path = 'details'): void {
  if (details === null || typeof details === 'number' || typeof details === 'boolean') return;
  if (typeof details === 'string') {
    if (ID_NUMBER.test(details)) throw new AuditDetailsError(path, 'looks like an ID number; record an HMAC or a mask');
    if (FULL_API_KEY.test(details)) throw new AuditDetailsError(path, 'looks like an API key; record its prefix');
    return;
  }
  if (Array.isArray(details)) {
    details.forEach((v, i) => assertNoPii(v, `${path}[${i}]`));
    return;
  }
  if (typeof details !== 'object') throw new AuditDetailsError(path, 'is not JSON');
  for (const [key, value] of Object.entries(details)) {
    const child = `${path}.${key}`;
    const k = normaliseKey(key);
    if (FORBIDDEN_KEYS.has(k))
      throw new AuditDetailsError(child, 'is personal data or a secret and may not be audited');
    if (MASKABLE_KEYS.has(k) && !(typeof value === 'string' && value.includes('*'))) {
      throw new AuditDetailsError(child, 'must be masked');
    }
    assertNoPii(value, child);
  }
}

/** Copies `details` into plain JSON (dropping undefined), refusing values JSON cannot carry. */
export function toJsonDetails(details: unknown, path = 'details'): JsonValue {
  if (details === null || typeof details === 'string' || typeof details === 'boolean') return details;
  if (typeof details === 'number') {
    if (!Number.isFinite(details)) throw new AuditDetailsError(path, 'is not a finite number');
    return details;
  }
  if (typeof details === 'bigint') return details.toString();
  if (details instanceof Date) return details.toISOString();
  if (Array.isArray(details)) return details.map((v, i) => toJsonDetails(v, `${path}[${i}]`));
  if (typeof details === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [key, value] of Object.entries(details as Record<string, unknown>)) {
      if (value === undefined) continue;
      out[key] = toJsonDetails(value, `${path}.${key}`);
    }
    return out;
  }
  throw new AuditDetailsError(path, `is a ${typeof details}, not JSON`);
}
