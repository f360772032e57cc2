import type { Role } from './roles';

/*
 * Separation of duties, as plain rules: an action that one key must not be able to do
 * alone takes effect only after a second key approves it. The second key must be a
 * different key, exist before the request, hold a role the action needs, not be revoked,
 * and come from a different origin: keys made through the API descend from the key that
 * made them, up to a root made from the shell (CLI, bootstrap). Approver and requester
 * must have different roots — so no key approves for a key it made, for the key that made
 * it, or for a sibling or cousin (one admin key minting two keys that approve each other).
 * A request is approved once, within its time, and carried out once.
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

/** What is known of a key: the one that wants to approve, or the one that asked. */
export interface ApproverFacts {
  keyId: string;
  role: Role;
  revoked: boolean;
  createdAt: Date;
  /** The keys that created it, nearest first (createdByKeyId, then its creator, …). */
  ancestors: readonly string[];
}

/** The shell-made key at the top of a key's lineage (itself when it was made from the shell). */
export function rootOf(key: { keyId: string; ancestors: readonly string[] }): string {
  return key.ancestors.length > 0 ? key.ancestors[key.ancestors.length - 1] : key.keyId;
}

/** Why `approver` may not approve `request` now, or null when it may. */
export function approvalRefusal(
  request: ApprovalFacts,
  approver: ApproverFacts,
  requester: { keyId: string; ancestors: readonly string[] },
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
  if (requester.ancestors.includes(approver.keyId)) {
    return 'the approving key created the requesting key (or a key that created it)';
  }
  if (rootOf(approver) === rootOf(requester)) {
    return 'the approving key and the requesting key were made by the same key: they are one person';
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
