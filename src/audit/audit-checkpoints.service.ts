import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Page, decodeCursor, toPage } from '../common/pagination';
import { ProblemException } from '../common/problem';
import { loggableError } from '../common/problem.filter';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import { buildEventRow } from './audit-event-row';
import { SEGMENT_TX_TIMEOUT_MS } from './audit-integrity.service';
import { CHECKPOINT_LOCK } from './audit-locks';
import { CheckpointRow, checkpointView, eventCreateData } from './audit-rows';
import { AuditContext } from './audit-vocabulary';
import type { ChainFault } from './chain-walker';
import { CheckpointStatement, GENESIS_PREV, signingKeyFromSeed, SigningKey, verifyCheckpoint } from './checkpoint';
import type { CheckpointView } from './export-format';
import { AuditWitness } from './witness/audit-witness.service';
import { WitnessRecord } from './witness/witness-record';
import { AuditWitnessWriter, lockSealer, readHead } from './witness/witness-writer.service';
import { lockForTransaction } from '../database/transaction';

export { CHECKPOINT_LOCK };

export interface PublicKeyInfo {
  key_id: string;
  algorithm: 'Ed25519';
  pem: string;
  jwk: { kty: string; crv: string; x: string };
}

/** The database row of a format-2 checkpoint record. */
function rowData(record: WitnessRecord): Prisma.AuditCheckpointCreateInput {
  return {
    seq: BigInt(record.seq),
    hash: record.hash,
    signedAt: new Date(record.signed_at),
    keyId: record.key_id,
    signature: record.signature,
    version: record.version,
    prevDigest: record.prev === GENESIS_PREV ? null : record.prev,
  };
}

/** Why a checkpoint was not signed: the chain does not verify from the witness's latest record. */
export class ChainNotSigned extends ProblemException {
  constructor(readonly fault: ChainFault) {
    const detail = `The audit chain does not verify from the witness's latest record (seq ${fault.seq}: ${fault.reason}): nothing was signed.`;
    super('conflict', detail, { first_bad_seq: fault.seq });
    this.message = detail;
  }
}

/**
 * Signs the chain head with idgate's Ed25519 key, periodically (when the head moved),
 * on demand, and once more at shutdown. Each checkpoint is a format-2 witness record:
 * written to the witness, then committed as a row (docs/audit.md), and only over a
 * segment that verifies from the witness's latest record.
 */
@Injectable()
export class AuditCheckpoints implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(AuditCheckpoints.name);
  private readonly key: SigningKey;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly writer: AuditWitnessWriter,
    private readonly witness: AuditWitness,
  ) {
    this.key = signingKeyFromSeed(config.audit.signingKeySeed);
  }

  get keyId(): string {
    return this.key.keyId;
  }

  onApplicationBootstrap(): void {
    if (!this.config.backgroundWorkers) return;
    this.timer = setInterval(() => {
      this.running ??= this.signPeriodically().finally(() => (this.running = undefined));
    }, this.config.audit.checkpointIntervalMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
    // A last checkpoint over what this instance saw grow, so a restart is not a gap in the cadence (a server's
    // concern: a CLI command leaves signing to it).
    if (this.config.backgroundWorkers) await this.signPeriodically();
  }

  private async signPeriodically(): Promise<void> {
    try {
      await this.signHead(null);
    } catch (err) {
      // A refusal is already alerted and shown by the integrity report.
      if (!(err instanceof ChainNotSigned)) {
        this.logger.warn({ err: loggableError(err) }, 'audit checkpoint signing failed');
      }
    }
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
   * Returns null while the chain is empty; throws ChainNotSigned (a 409) when the
   * segment since the witness's latest record does not verify.
   */
  async signHead(context: AuditContext | null): Promise<{ checkpoint: CheckpointView; created: boolean } | null> {
    // Set inside the transaction's callback (a cast, so the compiler does not narrow it to null).
    let refused = null as { fault: ChainFault; since: string | null } | null;
    const result = await this.prisma.$transaction(
      async (tx) => {
        // The sealer's lock first (the head cannot move, one witness writer), then the signer's.
        await lockSealer(tx, true);
        await lockForTransaction(tx, CHECKPOINT_LOCK);
        const head = await readHead(tx);
        if (!head) return null;
        const latest = await this.witness.latest();
        const w = latest?.record;
        const existing = await tx.auditCheckpoint.findUnique({
          where: { seq_keyId: { seq: BigInt(head.seq), keyId: this.key.keyId } },
        });
        if (
          !existing &&
          w &&
          w.kind === 'checkpoint' &&
          w.key_id === this.key.keyId &&
          w.seq === head.seq &&
          w.hash === head.hash
        ) {
          // Written to the witness, but its row never committed (a crash between the two): the witness's copy is the record.
          const row = await tx.auditCheckpoint.create({ data: rowData(w) });
          this.logger.warn({ seq: w.seq }, 'audit checkpoint row restored from the witness (its commit had been lost)');
          return { checkpoint: checkpointView(row), created: false };
        }
        // Never "already signed" without looking: a row at this seq may sign another chain than this one.
        const fault =
          (await this.writer.verifyFromWitness(tx, head, latest)) ??
          (existing && existing.hash !== head.hash
            ? { seq: head.seq, reason: 'hash differs from the signed checkpoint: the chain was rewritten up to here' }
            : null);
        if (fault) {
          refused = { fault, since: latest?.record.signed_at ?? null };
          return null;
        }
        this.writer.verified();
        if (existing) return { checkpoint: checkpointView(existing), created: false };
        let row: CheckpointRow | undefined;
        await this.writer.appendVerified('checkpoint', head, latest, async (record) => {
          row = await tx.auditCheckpoint.create({ data: rowData(record) });
          if (context) {
            const event = buildEventRow(context, {
              action: 'audit.checkpoint_signed',
              target: { type: 'audit_checkpoint', id: row.id },
              details: { seq: record.seq, hash: record.hash, key_id: record.key_id },
            });
            await tx.auditEvent.create({ data: eventCreateData(event, this.config.audit.macKey) });
          }
        });
        return { checkpoint: checkpointView(row as CheckpointRow), created: true };
      },
      { timeout: SEGMENT_TX_TIMEOUT_MS, maxWait: SEGMENT_TX_TIMEOUT_MS },
    );
    if (refused) {
      await this.writer.refuse('checkpoint', refused.fault, refused.since);
      throw new ChainNotSigned(refused.fault);
    }
    return result;
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
