import { assertNoPii, AuditDetailsError, toJsonDetails } from './audit-details';
import { AuditAction, AuditContext, isAuditAction, Outcome, OUTCOMES } from './audit-vocabulary';
import type { JsonValue } from './canonical';

/** What a caller says happened; who and from where comes from the AuditContext. */
export interface AuditEventInput {
  action: AuditAction;
  /** Defaults to `success`. */
  outcome?: Outcome;
  target?: { type: string; id: string | null } | null;
  /** No PII: masked values or HMACs only (checked). */
  details?: Record<string, unknown>;
  /** From `idCardHmac()`, when the event concerns one ID number: makes it findable by `id_card`. */
  idCardHmac?: string | null;
}

/** The columns of one audit_events row (id, occurred_at and txid aside). */
export interface AuditEventRow {
  actorType: string;
  actorId: string | null;
  actorRole: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  requestId: string | null;
  ip: string | null;
  details: JsonValue;
  idCardHmac: string | null;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * The text the database will store: a lone UTF-16 surrogate (from input, or a pair cut by the
 * clip) reaches it as U+FFFD. Replacing it here keeps the MAC, computed before the insert, over
 * exactly what is stored.
 */
export function wellFormed(value: string): string {
  return value.replace(LONE_SURROGATE, '\ufffd');
}

const clip = (value: string | null | undefined, max: number): string | null =>
  value === undefined || value === null ? null : wellFormed(value.slice(0, max));

/** Shows IPv4 clients as IPv4 (Node reports them IPv4-mapped on a dual-stack socket). */
export function normaliseIp(ip: string | null | undefined): string | null {
  if (!ip) return null;
  return wellFormed((ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip).slice(0, 64));
}

/** Validates an event and shapes its row. Throws AuditDetailsError on PII in details or an unknown action. */
export function buildEventRow(context: AuditContext, input: AuditEventInput): AuditEventRow {
  if (!isAuditAction(input.action)) throw new AuditDetailsError('action', 'is not in the audit vocabulary');
  const outcome = input.outcome ?? 'success';
  if (!OUTCOMES.includes(outcome)) throw new AuditDetailsError('outcome', 'is not success, failure or denied');
  const given = input.details ?? {};
  // The caller's own request id travels in details (hashed with them): no column or hash-format change.
  const details = toJsonDetails(
    context.callerRequestId && !('caller_request_id' in given)
      ? { ...given, caller_request_id: context.callerRequestId }
      : given,
  );
  assertNoPii(details);
  if (input.idCardHmac !== undefined && input.idCardHmac !== null && !/^[0-9a-f]{64}$/.test(input.idCardHmac)) {
    throw new AuditDetailsError('id_card_hmac', 'must be a lowercase hex HMAC-SHA256');
  }
  return {
    actorType: context.actor.type,
    actorId: clip(context.actor.id, 100),
    actorRole: clip(context.actor.role, 32),
    action: input.action,
    targetType: clip(input.target?.type, 64),
    targetId: clip(input.target?.id, 200),
    outcome,
    requestId: clip(context.requestId, 128),
    ip: normaliseIp(context.ip),
    details,
    idCardHmac: input.idCardHmac ?? null,
  };
}
