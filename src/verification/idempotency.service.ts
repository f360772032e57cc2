import { Injectable } from '@nestjs/common';
import { ProblemException } from '../common/problem';
import { PrismaService } from '../database/prisma.service';
import { PiiVault } from './pii-vault.service';
import { IDEMPOTENCY_TTL_MS } from './verification-rules';

/** A response as it was sent, so that it can be sent again byte for byte. */
export interface StoredReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface IdempotentResult extends StoredReply {
  replayed: boolean;
}

export interface IdempotencyScope {
  clientId: string;
  key: string;
  /** From requestFingerprint(): the same key with another request is refused. */
  fingerprint: string;
  /** After this long an in-flight claim whose process died may be taken over or recovered. */
  staleAfterMs: number;
}

/**
 * Idempotency-Key handling with Stripe's semantics, stored in PostgreSQL so it
 * holds across instances: the first response is stored and replayed; another
 * request under the same key is 422; a request while the first is in flight is 409.
 * A request that fails before doing anything (thrown) releases its claim.
 */
@Injectable()
export class IdempotencyService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly vault: PiiVault,
  ) {}

  async execute(
    scope: IdempotencyScope,
    work: () => Promise<StoredReply>,
    recover: (verificationId: string) => Promise<StoredReply | null>,
  ): Promise<IdempotentResult> {
    const claimed = await this.claim(scope);
    if (claimed !== true) {
      const replay = claimed.responseEnc
        ? (JSON.parse(this.vault.open('idempotent_response', claimed.responseEnc)) as StoredReply)
        : await this.recoverStale(scope, claimed, recover);
      if (replay === 'take_over') return this.run(scope, work);
      return { ...replay, replayed: true };
    }
    return this.run(scope, work);
  }

  private async run(scope: IdempotencyScope, work: () => Promise<StoredReply>): Promise<IdempotentResult> {
    let reply: StoredReply;
    try {
      reply = await work();
    } catch (err) {
      await this.prisma.idempotencyRecord.deleteMany({
        where: { clientId: scope.clientId, key: scope.key, state: 'in_flight' },
      });
      throw err;
    }
    await this.store(scope, reply);
    return { ...reply, replayed: false };
  }

  private async store(scope: IdempotencyScope, reply: StoredReply): Promise<void> {
    await this.prisma.idempotencyRecord.update({
      where: { clientId_key: { clientId: scope.clientId, key: scope.key } },
      data: {
        state: 'completed',
        responseStatus: reply.status,
        responseEnc: this.vault.seal('idempotent_response', JSON.stringify(reply)),
      },
    });
  }

  /** true: this request owns the key now. Otherwise the existing record (same request). */
  private async claim(scope: IdempotencyScope) {
    const now = new Date();
    return this.prisma.$transaction(async (tx) => {
      await tx.idempotencyRecord.deleteMany({
        where: { clientId: scope.clientId, key: scope.key, expiresAt: { lt: now } },
      });
      const inserted = await tx.$executeRaw`
        INSERT INTO idempotency_keys (client_id, key, request_hash, state, expires_at)
        VALUES (${scope.clientId}::uuid, ${scope.key}, ${scope.fingerprint}, 'in_flight', ${new Date(now.getTime() + IDEMPOTENCY_TTL_MS)})
        ON CONFLICT (client_id, key) DO NOTHING`;
      if (inserted === 1) return true as const;
      const existing = await tx.idempotencyRecord.findUniqueOrThrow({
        where: { clientId_key: { clientId: scope.clientId, key: scope.key } },
      });
      if (existing.requestHash !== scope.fingerprint) {
        throw new ProblemException('unprocessable', 'This Idempotency-Key was used with a different request.', {
          errors: [{ field: 'Idempotency-Key', message: 'was already used with a different request body' }],
        });
      }
      return existing;
    });
  }

  private async recoverStale(
    scope: IdempotencyScope,
    record: { state: string; verificationId: string | null; createdAt: Date },
    recover: (verificationId: string) => Promise<StoredReply | null>,
  ): Promise<StoredReply | 'take_over'> {
    const stale = Date.now() - record.createdAt.getTime() > scope.staleAfterMs;
    if (stale && record.verificationId === null) {
      // The first attempt died before recording anything: nothing was sent upstream.
      const taken = await this.prisma.idempotencyRecord.updateMany({
        where: {
          clientId: scope.clientId,
          key: scope.key,
          state: 'in_flight',
          verificationId: null,
          createdAt: record.createdAt,
        },
        data: { createdAt: new Date() },
      });
      if (taken.count === 1) return 'take_over';
    }
    if (stale && record.verificationId !== null) {
      // The first attempt died after recording: answer from the verification as it stands now.
      const reply = await recover(record.verificationId);
      if (reply) {
        await this.store(scope, reply);
        return reply;
      }
    }
    throw new ProblemException(
      'conflict',
      'A request with this Idempotency-Key is still in progress; retry later.',
      {},
      { 'Retry-After': '1' },
    );
  }

  /** Forgets keys older than 24 h. */
  async purgeExpired(now = new Date()): Promise<number> {
    const res = await this.prisma.idempotencyRecord.deleteMany({ where: { expiresAt: { lt: now } } });
    return res.count;
  }
}
