import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Page, decodeCursor, toPage } from '../common/pagination';
import { loggableError } from '../common/problem.filter';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import { buildEventRow } from './audit-event-row';
import { eventCreateData } from './audit-rows';
import { AuditContext } from './audit-vocabulary';
import { signCheckpoint, signingKeyFromSeed, SigningKey, verifyCheckpoint, CheckpointStatement } from './checkpoint';
import type { CheckpointView } from './export-format';

export const CHECKPOINT_LOCK = 7_265_002;

export interface PublicKeyInfo {
  key_id: string;
  algorithm: 'Ed25519';
  pem: string;
  jwk: { kty: string; crv: string; x: string };
}

type CheckpointRow = Prisma.AuditCheckpointGetPayload<object>;

export function checkpointView(row: CheckpointRow): CheckpointView {
  return {
    seq: Number(row.seq),
    hash: row.hash,
    signed_at: row.signedAt.toISOString(),
    key_id: row.keyId,
    signature: row.signature,
  };
}

/** Signs the chain head with idgate's Ed25519 key, periodically (when the head moved) and on demand. */
@Injectable()
export class AuditCheckpoints implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(AuditCheckpoints.name);
  private readonly key: SigningKey;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
  ) {
    this.key = signingKeyFromSeed(config.audit.signingKeySeed);
  }

  get keyId(): string {
    return this.key.keyId;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.signHead(null)
        .catch((err: unknown) => this.logger.warn({ err: loggableError(err) }, 'audit checkpoint signing failed'))
        .finally(() => (this.running = undefined));
    }, this.config.audit.checkpointIntervalMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  publicKey(): PublicKeyInfo {
    const jwk = this.key.publicKey.export({ format: 'jwk' });
    return {
      key_id: this.key.keyId,
      algorithm: 'Ed25519',
      pem: this.key.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      jwk: { kty: String(jwk.kty), crv: String(jwk.crv), x: String(jwk.x) },
    };
  }

  /** True when `signature` is this installation's signature over the statement. */
  verify(statement: CheckpointStatement, signature: string): boolean {
    return verifyCheckpoint(this.key.publicKey, statement, signature);
  }

  /**
   * Signs the current chain head unless this key already signed it. With a
   * context (a person asked), the signing is itself audited; periodic signing
   * is not, or every checkpoint would move the head and call for the next.
   * Returns null while the chain is empty.
   */
  async signHead(context: AuditContext | null): Promise<{ checkpoint: CheckpointView; created: boolean } | null> {
    return this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT true AS locked FROM (SELECT pg_advisory_xact_lock(${CHECKPOINT_LOCK}::bigint)) l`;
      const head = await tx.auditChainLink.findFirst({ orderBy: { seq: 'desc' } });
      if (!head) return null;
      const existing = await tx.auditCheckpoint.findUnique({
        where: { seq_keyId: { seq: head.seq, keyId: this.key.keyId } },
      });
      if (existing) return { checkpoint: checkpointView(existing), created: false };
      const statement = { seq: Number(head.seq), hash: head.hash, signedAt: new Date(), keyId: this.key.keyId };
      const row = await tx.auditCheckpoint.create({
        data: {
          seq: head.seq,
          hash: head.hash,
          signedAt: statement.signedAt,
          keyId: statement.keyId,
          signature: signCheckpoint(this.key, statement),
        },
      });
      if (context) {
        const event = buildEventRow(context, {
          action: 'audit.checkpoint_signed',
          target: { type: 'audit_checkpoint', id: row.id },
          details: { seq: statement.seq, hash: statement.hash, key_id: statement.keyId },
        });
        await tx.auditEvent.create({ data: eventCreateData(event) });
      }
      return { checkpoint: checkpointView(row), created: true };
    });
  }

  /** Newest first. */
  async list(cursor: string | undefined, limit: number): Promise<Page<CheckpointView>> {
    const before =
      cursor === undefined
        ? undefined
        : decodeCursor<[string]>(
            cursor,
            (v) => v.length === 1 && typeof v[0] === 'string' && /^\d{1,18}$/.test(v[0]),
          )[0];
    const rows = await this.prisma.auditCheckpoint.findMany({
      where: before === undefined ? {} : { seq: { lt: BigInt(before) } },
      orderBy: [{ seq: 'desc' }, { keyId: 'asc' }],
      take: limit + 1,
    });
    return toPage(rows, limit, checkpointView, (r) => [r.seq.toString()]);
  }

  /** This key's checkpoints with seq in [fromSeq, toSeq], ascending. */
  async between(fromSeq: number, toSeq: number): Promise<CheckpointView[]> {
    const rows = await this.prisma.auditCheckpoint.findMany({
      where: { keyId: this.key.keyId, seq: { gte: BigInt(fromSeq), lte: BigInt(toSeq) } },
      orderBy: { seq: 'asc' },
    });
    return rows.map(checkpointView);
  }

  /** This key's checkpoints above `seq` (a chain shorter than its signatures lost its tail). */
  async firstAbove(seq: number): Promise<CheckpointView | null> {
    const row = await this.prisma.auditCheckpoint.findFirst({
      where: { keyId: this.key.keyId, seq: { gt: BigInt(seq) } },
      orderBy: { seq: 'asc' },
    });
    return row ? checkpointView(row) : null;
  }
}
