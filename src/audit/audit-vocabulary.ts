/*
 * The audit trail's fixed vocabulary (SPEC §5). Adding an action is a code
 * change on purpose: compliance queries and reports depend on these names.
 */

export const AUDIT_ACTIONS = [
  'verification.created',
  'verification.completed',
  'verification.failed',
  'verification.unknown',
  'verification.viewed',
  'verification.searched',
  'verification.settled',
  'verification.reused',
  'idempotency.mismatched',
  'api_key.created',
  'api_key.revoked',
  'api_key.macs_backfilled',
  'client.created',
  'client.updated',
  'auth.failed',
  'auth.denied',
  'reconciliation.created',
  'price.created',
  'pii.purged',
  'pii.rekeyed',
  'audit.searched',
  'audit.exported',
  'audit.checkpoint_signed',
  'security.alert',
  'approval.requested',
  'approval.approved',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const ACTOR_TYPES = ['api_key', 'system', 'anonymous'] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];

export const OUTCOMES = ['success', 'failure', 'denied'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Who did it: an API key (with its role), idgate itself (`cli`, `bootstrap`, `sweeper`, …), or nobody known. */
export interface AuditActor {
  type: ActorType;
  id: string | null;
  role: string | null;
}

/** Where a change came from; passed by callers into every service method that records an event. */
export interface AuditContext {
  actor: AuditActor;
  requestId?: string | null;
  ip?: string | null;
  /** The caller's X-Request-Id (a correlation token, not unique), recorded as details.caller_request_id. */
  callerRequestId?: string | null;
}

export const SYSTEM_CLI: AuditContext = { actor: { type: 'system', id: 'cli', role: null } };
export const SYSTEM_BOOTSTRAP: AuditContext = { actor: { type: 'system', id: 'bootstrap', role: null } };

export function systemContext(id: string): AuditContext {
  return { actor: { type: 'system', id, role: null } };
}

export function isAuditAction(value: string): value is AuditAction {
  return (AUDIT_ACTIONS as readonly string[]).includes(value);
}
