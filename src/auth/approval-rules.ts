import type { Role } from './roles';

/*
 * Separation of duties, as plain rules: an action that one key must not be able to do
 * alone takes effect only after a second key approves it. The second key must be a
 * different key, exist before the request, not descend from the requesting key (a key
 * cannot approve for the key that made it, or for its maker's maker), hold a role the
 * action needs, and not be revoked. A request is approved once, within its time, and
 * carried out once.
 */

/** Roles whose keys read personal data in full: such keys are never made by one admin key alone. */
export const FULL_PII_ROLES: readonly Role[] = ['compliance'];

export function readsFullPii(role: Role): boolean {
  return FULL_PII_ROLES.includes(role);
}

/** The approval request as stored. */
export interface ApprovalFacts {
  requestedByKeyId: string;
  createdAt: Date;
  expiresAt: Date;
  approvedByKeyId: string | null;
  consumedAt: Date | null;
}

/** What is known of the key that wants to approve. */
export interface ApproverFacts {
  keyId: string;
  role: Role;
  revoked: boolean;
  createdAt: Date;
  /** The keys that created it, nearest first (createdByKeyId, then its creator, …). */
  ancestors: readonly string[];
}

/** Why `approver` may not approve `request` now, or null when it may. */
export function approvalRefusal(
  request: ApprovalFacts,
  approver: ApproverFacts,
  rolesThatMayApprove: readonly Role[],
  now: Date,
): string | null {
  if (request.consumedAt !== null) return 'this request has already been carried out';
  if (request.approvedByKeyId !== null) return 'this request is already approved';
  if (now.getTime() >= request.expiresAt.getTime()) return 'this request has expired';
  if (approver.keyId === request.requestedByKeyId) return 'a request cannot be approved by the key that made it';
  if (approver.revoked) return 'the approving key is revoked';
  if (!rolesThatMayApprove.includes(approver.role)) {
    return `approval needs a key with role ${rolesThatMayApprove.join(' or ')}`;
  }
  if (approver.createdAt.getTime() >= request.createdAt.getTime()) {
    return 'the approving key must be older than the request';
  }
  if (approver.ancestors.includes(request.requestedByKeyId)) {
    return 'the approving key was created by the requesting key (or by a key it created)';
  }
  return null;
}

/** Why `keyId` may not carry out the approved `request`, or null when it may. */
export function carryOutRefusal(request: ApprovalFacts, keyId: string, now: Date): string | null {
  if (request.requestedByKeyId !== keyId) return 'only the key that made the request may carry it out';
  if (request.consumedAt !== null) return 'this request has already been carried out';
  if (request.approvedByKeyId === null) return 'this request is not approved yet';
  if (now.getTime() >= request.expiresAt.getTime()) return 'this request has expired';
  return null;
}
