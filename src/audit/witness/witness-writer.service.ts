import { Injectable, Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { loggableError } from '../../common/problem.filter';
import { AppConfig } from '../../config/app-config';
import { PrismaService } from '../../database/prisma.service';
import { lockForTransaction, Transaction, tryLockForTransaction } from '../../database/transaction';
import { AuditIntegrity, SEGMENT_TX_TIMEOUT_MS } from '../audit-integrity.service';
import { SEALER_LOCK } from '../audit-locks';
import { systemContext } from '../audit-vocabulary';
import { GENESIS_HASH } from '../canonical';
import type { ChainFault } from '../chain-walker';
import { CheckpointKind, GENESIS_PREV, SigningKey, signingKeyFromSeed } from '../checkpoint';
import { AuditWitness } from './audit-witness.service';
import type { LatestRecord } from './witness-dir';
import { signWitnessRecord, WitnessRecord } from './witness-record';

export interface ChainHead {
  seq: number;
  hash: string;
}

export type AppendOutcome = { record: WitnessRecord } | { fault: ChainFault };

const SIGNER = systemContext('audit-signer');

/**
 * Sign only what verifies: before a record (a checkpoint, or a sealed head) is signed
 * and written, the segment from the witness's latest record (read from the witness,
 * not from the database, whose checkpoints an attacker may have deleted) to the head
 * is verified. A segment that does not verify is never signed: no record, the refusal
 * shown by the integrity report, and an `audit_chain_broken` alert once per distinct
 * fault (an audit event and idgate_security_alerts_total).
 */
@Injectable()
export class AuditWitnessWriter {
  private readonly logger = new Logger(AuditWitnessWriter.name);
  private readonly key: SigningKey;
  private readonly alerted = new Set<string>();
  /** The head a publication was last refused at: not walked again until the head moves. */
  private refusedAt: ChainHead | null = null;
  /** When this instance last saw the chain verify from the witness: a fault after it is a new incident. */
  private verifiedAt = new Date(0);

  constructor(
    private readonly prisma: PrismaService,
    config: AppConfig,
    private readonly witness: AuditWitness,
    private readonly integrity: AuditIntegrity,
    private readonly moduleRef: ModuleRef,
  ) {
    this.key = signingKeyFromSeed(config.audit.signingKeySeed);
  }

  /**
   * After sealing: writes a head record when the chain's head moved past the witness's
   * latest record. With `wait`, queues for the lock; otherwise gives up when another
   * holder has it (an instance sealing or signing: it publishes the same head or a later
   * one). `refused` means the segment did not verify (already alerted).
   */
  async publishHead(
    wait: boolean,
  ): Promise<{ outcome: 'written' | 'current' | 'busy' | 'refused'; record?: WitnessRecord }> {
    // Set inside the transaction's callback (a cast, so the compiler does not narrow it to null).
    let refused = null as { fault: ChainFault; since: string | null } | null;
    const result = await this.prisma.$transaction(
      async (tx): Promise<{ outcome: 'written' | 'current' | 'busy' | 'refused'; record?: WitnessRecord }> => {
        if (!(await lockSealer(tx, wait))) return { outcome: 'busy' };
        const head = await readHead(tx);
        if (!head) return { outcome: 'current' };
        const latest = await this.witness.latest();
        if (latest && latest.record.seq === head.seq && latest.record.hash === head.hash) {
          this.verified();
          return { outcome: 'current' };
        }
        if (this.refusedAt?.seq === head.seq && this.refusedAt.hash === head.hash) return { outcome: 'refused' };
        const appended = await this.appendLocked(tx, 'head', head, latest);
        if ('fault' in appended) {
          refused = { fault: appended.fault, since: latest?.record.signed_at ?? null };
          this.refusedAt = head;
          return { outcome: 'refused' };
        }
        return { outcome: 'written', record: appended.record };
      },
      { timeout: SEGMENT_TX_TIMEOUT_MS, maxWait: SEGMENT_TX_TIMEOUT_MS },
    );
    if (refused) await this.refuse('head', refused.fault, refused.since);
    return result;
  }

  /**
   * In `tx`, which holds the sealer's lock: verifies the segment from `latest` (the
   * witness's latest record, read under the lock) to `head`; when it verifies, signs a
   * record, runs `beforeWrite` (the checkpoint's database row, in tx, not yet committed)
   * and writes the record to the witness. The row commits after the record is written:
   * a crash between them leaves a witness record without its row, never the reverse.
   */
  async appendLocked(
    tx: Transaction,
    kind: CheckpointKind,
    head: ChainHead,
    latest: LatestRecord | null,
    beforeWrite?: (record: WitnessRecord) => Promise<void>,
  ): Promise<AppendOutcome> {
    const fault = await this.verifyFromWitness(tx, head, latest);
    if (fault) return { fault };
    return { record: await this.appendVerified(kind, head, latest, beforeWrite) };
  }

  /** appendLocked's second half, for a caller that verified the segment itself (verifyFromWitness) in the same lock. */
  async appendVerified(
    kind: CheckpointKind,
    head: ChainHead,
    latest: LatestRecord | null,
    beforeWrite?: (record: WitnessRecord) => Promise<void>,
  ): Promise<WitnessRecord> {
    const record = signWitnessRecord(this.key, {
      kind,
      seq: head.seq,
      hash: head.hash,
      signedAt: new Date(),
      prev: latest?.digest ?? GENESIS_PREV,
    });
    await beforeWrite?.(record);
    await this.witness.append(record, latest);
    this.verified();
    return record;
  }

  /** The segment from the witness's latest record (genesis when it holds none) to the head, in tx (which holds the lock). */
  async verifyFromWitness(tx: Transaction, head: ChainHead, latest: LatestRecord | null): Promise<ChainFault | null> {
    if (!latest) return this.integrity.verifySegment(tx, 1, head.seq, GENESIS_HASH);
    const w = latest.record;
    if (w.seq > head.seq) {
      return {
        seq: head.seq + 1,
        reason: `the chain ends at seq ${head.seq} but the witness holds a ${w.kind} at seq ${w.seq}: entries were removed`,
      };
    }
    const [at] = await tx.$queryRaw<{ hash: string }[]>`SELECT hash FROM audit_chain WHERE seq = ${w.seq}::bigint`;
    if (!at) return { seq: w.seq, reason: `chain entry seq ${w.seq}, which the witness holds, is missing` };
    if (at.hash !== w.hash) {
      return {
        seq: w.seq,
        reason: `hash differs from the witness's latest record (a ${w.kind}) at this seq: the chain was rewritten up to here`,
      };
    }
    return this.integrity.verifySegment(tx, w.seq + 1, head.seq, w.hash);
  }

  /** The chain verified from the witness: signing goes on, and a fault seen before is a new incident if it recurs. */
  verified(): void {
    this.refusedAt = null;
    this.alerted.clear();
    this.verifiedAt = new Date();
    this.witness.clearRefusal();
  }

  /**
   * A refusal: shown in the integrity report, logged, alerted once per distinct fault while the
   * chain stays broken: remembered here, and looked up among the alerts raised since the witness
   * last took a record (`since`, its latest record's time) and since this instance last saw the
   * chain verify, so other instances and restarts do not repeat it, and a fault that recurs after
   * the chain verified again is alerted again.
   */
  async refuse(kind: CheckpointKind, fault: ChainFault, since: string | null): Promise<void> {
    this.witness.refused(kind, fault);
    const faultId = createHash('sha256').update(`${fault.seq}\n${fault.reason}`).digest('hex').slice(0, 16);
    if (this.alerted.has(faultId)) return;
    this.alerted.add(faultId);
    this.logger.error(
      { seq: fault.seq, reason: fault.reason, refused: kind },
      'audit chain does not verify from the witness: nothing signed',
    );
    try {
      const [seen] = await this.prisma.$queryRaw<{ n: number }[]>`
        SELECT 1 AS n FROM audit_events
        WHERE action = 'security.alert' AND details->>'fault_id' = ${faultId}
          AND occurred_at >= ${new Date(Math.max(since === null ? 0 : Date.parse(since), this.verifiedAt.getTime()))}::timestamptz
        LIMIT 1`;
      if (seen) return;
      // Loaded here: security-alerts → audit.service → the sealer → this file is an import cycle.
      const { SecurityAlerts } = require('../security-alerts.service') as typeof import('../security-alerts.service');
      await this.moduleRef.get(SecurityAlerts, { strict: false }).raise(
        SIGNER,
        'audit_chain_broken',
        { seq: fault.seq, fault: fault.reason, fault_id: faultId, refused: kind },
        // One target per fault: distinct faults are distinct alerts.
        { type: 'audit_chain', id: faultId },
      );
    } catch (err) {
      this.logger.error({ err: loggableError(err) }, 'could not raise the audit_chain_broken alert');
    }
  }
}

/** The sealer's lock (one chain writer, one witness writer); without `wait`, false when it is taken. */
export async function lockSealer(tx: Transaction, wait: boolean): Promise<boolean> {
  if (!wait) return tryLockForTransaction(tx, SEALER_LOCK);
  await lockForTransaction(tx, SEALER_LOCK);
  return true;
}

export async function readHead(tx: Transaction): Promise<ChainHead | null> {
  const [head] = await tx.$queryRaw<{ seq: bigint; hash: string }[]>`
    SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1`;
  return head ? { seq: Number(head.seq), hash: head.hash } : null;
}
