import { ProblemException } from '../common/problem';

/*
 * Idempotency-Key records with Stripe's semantics, stored in PostgreSQL so they hold across
 * instances (VerificationStore alone reads and writes them). The claim is taken in the same
 * statement or transaction that records the verification, so a claim exists only together with
 * the verification it is linked to: there is nothing to release when a request is refused, and
 * a claim linked to a verification is never released (a retry can never make a second paid
 * call). The final reply is stored with the settlement.
 */

/** A response as it was sent, so that it can be sent again byte for byte. */
export interface StoredReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface IdempotencyScope {
  clientId: string;
  key: string;
  /** From requestFingerprint(): the same key with another request is refused. */
  fingerprint: string;
  /**
   * The unkeyed hash records claimed before fingerprints were keyed hold (at most 24 h):
   * compared with, never stored, so such a retry is recognised without writing an
   * unkeyed hash again.
   */
  legacyFingerprint?: string;
}

/** A claim as the store takes it: the scope, and when an earlier claim may be replaced. */
export interface KeyClaim extends IdempotencyScope {
  expiresAt: Date;
  /** A claim older than this with no verification (left by an older idgate) is taken over. */
  takeOverUnlinkedBefore: Date;
}

/** A key claimed earlier by the same request (an earlier attempt of this client's). */
export interface EarlierClaim {
  /** `in_flight` while the first request may still run; `ended` once it answered without a final reply; `completed` with a reply. */
  state: string;
  verificationId: string | null;
  createdAt: Date;
  reply: StoredReply | null;
}

/** 422: the key was used with another request. Answering it confirms a guess: the caller spends search budget on it. */
export class IdempotencyKeyReused extends ProblemException {
  constructor() {
    super('unprocessable', 'This Idempotency-Key was used with a different request.', {
      errors: [{ field: 'Idempotency-Key', message: 'was already used with a different request body' }],
    });
  }
}

/** The earlier claim a retry finds: the same request (by fingerprint), else the key was reused. */
export function earlierClaimOf(
  scope: IdempotencyScope,
  existing: { requestHash: string; state: string; verificationId: string | null; createdAt: Date },
  reply: StoredReply | null,
): EarlierClaim {
  const sameRequest =
    existing.requestHash === scope.fingerprint ||
    (scope.legacyFingerprint !== undefined && existing.requestHash === scope.legacyFingerprint);
  if (!sameRequest) throw new IdempotencyKeyReused();
  return { state: existing.state, verificationId: existing.verificationId, createdAt: existing.createdAt, reply };
}
