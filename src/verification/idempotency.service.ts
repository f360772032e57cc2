import { Injectable } from '@nestjs/common';
import { ProblemException } from '../common/problem';
import { PrismaService } from '../database/prisma.service';
import { PiiVault } from './pii-vault.service';
import { IDEMPOTENCY_TTL_MS } from './verification-rules';
import type { Tx } from './verification.store';

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

/** A key claimed earlier by the same request (an earlier attempt of this client's). */
export interface EarlierClaim {
  /** `in_flight` while the first request may still run; `ended` once it answered without a final reply; `completed` with a reply. */
  state: string;
  verificationId: string | null;
  createdAt: Date;
  reply: StoredReply | null;
}

/**
 * Idempotency-Key records with Stripe's semantics, stored in PostgreSQL so they hold
 * across instances. The claim is taken in the same transaction that records the
 * verification, so a claim exists only together with the verification it is linked to:
 * there is nothing to release when a request is refused, and a claim linked to a
 * verification is never released (a retry can never make a second paid call). The
 * final reply is stored in the transaction that settles the verification.
 */
/** 422: the key was used with another request. Answering it confirms a guess: the caller spends search budget on it. */
export class IdempotencyKeyReused extends ProblemException {
  constructor() {
    super('unprocessable', 'This Idempotency-Key was used with a different request.', {
      errors: [{ field: 'Idempotency-Key', message: 'was already used with a different request body' }],
    });
  }
}

@Injectable()
export class IdempotencyService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly vault: PiiVault,
  ) {}

  /**
   * Claims the key inside `tx`: 'claimed' when this request owns it now (an expired
   * record is replaced), otherwise the earlier claim of the same request. Another
   * request under the key → 422. `takeOverUnlinkedAfterMs`: a claim older than this
   * with no verification (left by an older idgate) is taken over.
   */
  async claimIn(tx: Tx, scope: IdempotencyScope, takeOverUnlinkedAfterMs: number): Promise<'claimed' | EarlierClaim> {
    const expiresAt = new Date(Date.now() + IDEMPOTENCY_TTL_MS);
    const takeOverBefore = new Date(Date.now() - takeOverUnlinkedAfterMs);
    // One round trip in the common case: insert, or replace a record that expired or
    // was abandoned unlinked; a live record is left alone and read below.
    const claimed = await tx.$executeRaw`
      INSERT INTO idempotency_keys (client_id, key, request_hash, state, expires_at)
      VALUES (${scope.clientId}::uuid, ${scope.key}, ${scope.fingerprint}, 'in_flight', ${expiresAt})
      ON CONFLICT (client_id, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, state = 'in_flight', verification_id = NULL,
            response_status = NULL, response_enc = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at < now()
           OR (idempotency_keys.verification_id IS NULL AND idempotency_keys.state = 'in_flight'
               AND idempotency_keys.created_at < ${takeOverBefore})`;
    if (claimed === 1) return 'claimed';
    const existing = await tx.idempotencyRecord.findUniqueOrThrow({
      where: { clientId_key: { clientId: scope.clientId, key: scope.key } },
    });
    const sameRequest =
      existing.requestHash === scope.fingerprint ||
      (scope.legacyFingerprint !== undefined && existing.requestHash === scope.legacyFingerprint);
    if (!sameRequest) {
      throw new IdempotencyKeyReused();
    }
    return {
      state: existing.state,
      verificationId: existing.verificationId,
      createdAt: existing.createdAt,
      reply: this.openReply(existing.responseEnc),
    };
  }

  /**
   * A stored reply, or null when there is none — or when it can no longer be opened (its
   * key was dropped from PII_KEYS before a rekey reached it): the retry is then answered
   * from the verification as it stands, never with a 500.
   */
  private openReply(sealed: string | null): StoredReply | null {
    if (!sealed) return null;
    try {
      return JSON.parse(this.vault.open('idempotent_response', sealed)) as StoredReply;
    } catch {
      return null;
    }
  }

  /** Links the claim to the verification recorded in the same transaction. */
  async linkIn(tx: Tx, clientId: string, key: string, verificationId: string): Promise<void> {
    await tx.idempotencyRecord.updateMany({ where: { clientId, key }, data: { verificationId } });
  }

  /** Links the claim and stores the final reply at once (a verification final when recorded). */
  async completeIn(tx: Tx, clientId: string, key: string, verificationId: string, reply: StoredReply): Promise<void> {
    await tx.idempotencyRecord.updateMany({
      where: { clientId, key },
      data: {
        verificationId,
        state: 'completed',
        responseStatus: reply.status,
        responseEnc: this.vault.seal('idempotent_response', JSON.stringify(reply)),
      },
    });
  }

  /**
   * Stores the final reply (in the transaction that settles the verification, or later on
   * a retry). A reply stored once is never replaced: every replay is the same.
   */
  async storeReplyIn(tx: Tx | PrismaService, clientId: string, key: string, reply: StoredReply): Promise<void> {
    await tx.idempotencyRecord.updateMany({
      where: { clientId, key, state: { not: 'completed' } },
      data: {
        state: 'completed',
        responseStatus: reply.status,
        responseEnc: this.vault.seal('idempotent_response', JSON.stringify(reply)),
      },
    });
  }

  async storeReply(clientId: string, key: string, reply: StoredReply): Promise<void> {
    await this.storeReplyIn(this.prisma, clientId, key, reply);
  }

  /**
   * The first request answered without a final reply (202: still being recorded), so a
   * retry need not wait for it. Best effort: without this mark, retries wait for the
   * request deadline instead.
   */
  async markEnded(clientId: string, key: string): Promise<void> {
    await this.prisma.idempotencyRecord.updateMany({
      where: { clientId, key, state: 'in_flight' },
      data: { state: 'ended' },
    });
  }

  /** Forgets keys older than 24 h. */
  async purgeExpired(now = new Date()): Promise<number> {
    const res = await this.prisma.idempotencyRecord.deleteMany({ where: { expiresAt: { lt: now } } });
    return res.count;
  }
}
