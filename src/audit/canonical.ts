import { createHash } from 'node:crypto';
import type { AuditEventRow } from './audit-event-row';

/*
 * The canonical form of an audit event and the hash chain over it. This is the
 * contract an auditor re-implements (docs/audit.md, docs/verify-audit-export.mjs):
 *
 *   canonical = JSON of { action, actor: { id, role, type }, details, id, id_card_hmac,
 *                         ip, occurred_at, outcome, request_id, target: { id, type } }
 *               with object keys sorted by UTF-16 code units at every depth, no
 *               whitespace, absent values as null, strings escaped as JSON.stringify
 *               does, encoded as UTF-8; occurred_at is ISO 8601 UTC with milliseconds
 *               ("2026-01-02T03:04:05.678Z").
 *   hash      = lowercase hex SHA-256 of UTF-8( prev_hash + "\n" + canonical )
 *   prev_hash of seq 1 = 64 zeros ("genesis").
 */

export const GENESIS_HASH = '0'.repeat(64);

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The hashed fields of an event, as stored: its row plus its id and time. */
export type ChainedEventFields = AuditEventRow & { id: string; occurredAt: Date | string };

/** JSON with sorted keys and no whitespace. Refuses values JSON cannot carry faithfully. */
export function canonicalJson(value: JsonValue): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON: non-finite number');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const keys = Object.keys(value).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON: unsupported ${typeof value}`);
  }
}

export function isoMillis(value: Date | string): string {
  const date = typeof value === 'string' ? new Date(value) : value;
  if (Number.isNaN(date.getTime())) throw new TypeError('canonical form: invalid occurred_at');
  return date.toISOString();
}

export function canonicalEvent(e: ChainedEventFields): string {
  return canonicalJson({
    action: e.action,
    actor: { id: e.actorId, role: e.actorRole, type: e.actorType },
    details: e.details,
    id: e.id,
    id_card_hmac: e.idCardHmac,
    ip: e.ip,
    occurred_at: isoMillis(e.occurredAt),
    outcome: e.outcome,
    request_id: e.requestId,
    target: { id: e.targetId, type: e.targetType },
  });
}

export function chainHash(prevHash: string, canonical: string): string {
  return createHash('sha256').update(`${prevHash}\n${canonical}`, 'utf8').digest('hex');
}

export function eventHash(prevHash: string, event: ChainedEventFields): string {
  return chainHash(prevHash, canonicalEvent(event));
}
