import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { loggableError } from '../common/problem.filter';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import type { Transaction } from '../database/transaction';
import { eventHash, GENESIS_HASH } from './canonical';
import { chainedFields, EVENT_COLUMNS, EventSqlRow } from './audit-rows';
import { SEALER_LOCK } from './audit-locks';
import { AuditWitnessWriter, lockSealer } from './witness/witness-writer.service';

/*
 * The sealer chains committed events, in commit-safe order, without a lock in
 * any business transaction (notes/performance.md: a chain head locked by every
 * writer cut throughput 5–7×).
 *
 * Every event carries `txid`, the id of the transaction that wrote it. A
 * transaction whose id is below `pg_snapshot_xmin(pg_current_snapshot())` has
 * finished, and ids only grow, so no event can ever appear below that
 * watermark. The sealer therefore takes events with (txid, id) after the last
 * sealed one and txid below the watermark, in (txid, id) order, and appends
 * them to audit_chain. One sealer at a time across all instances holds a
 * transaction-scoped advisory lock; the chain's seq primary key is the backstop.
 *
 * Lag bound: an event is sealed within one sealing interval after every
 * transaction that took an id before its own has ended. The longest open
 * writing transaction in the cluster holds the watermark back (docs/audit.md).
 *
 * After a pass that moved the head, the head is written to the witness (a signed
 * head record, see witness-writer.service.ts), so that cutting the newest entries is
 * caught within one sealing interval rather than one checkpoint interval.
 */

export { SEALER_LOCK };
export const SEAL_BATCH_SIZE = 1000;
/** How often a caught-up sealer looks for events an open transaction keeps it from sealing. */
const PIN_CHECK_INTERVAL_MS = 5_000;

/** Why the chain is not being sealed: someone holds the sealing lock, or an open transaction holds events back. */
export interface SealingStall {
  cause: 'lock_held' | 'open_transaction';
  since: Date;
}

interface ChainHeadRow {
  seq: bigint;
  hash: string;
  txid: bigint;
  id: string;
}

@Injectable()
export class AuditSealer implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(AuditSealer.name);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  /** A head this instance sealed that is not in the witness yet (or the first pass since start). */
  private unpublished = true;
  private publishFailedAt = 0;
  /** When this instance last held the sealing lock (or started trying). */
  private lockedAt = Date.now();
  /** The oldest event a caught-up pass could not seal because its transaction was still open, if any. */
  private heldBackSince: Date | null = null;
  private pinCheckedAt = 0;

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly writer: AuditWitnessWriter,
  ) {}

  onApplicationBootstrap(): void {
    // A CLI command seals (and witnesses) only when asked (sealNow): the server it shares the database with does the rest.
    if (!this.config.backgroundWorkers) return;
    this.lockedAt = Date.now();
    this.schedule();
  }

  /**
   * Whether sealing is held up past AUDIT_SEAL_STALL_MS, as this instance sees it. An event is
   * only protected by the chain once sealed: while sealing stands still, a database superuser can
   * delete events nobody has chained yet. No sealer holds the lock for more than a batch, and every
   * instance tries every interval, so a lock not had for that long is held by someone else.
   */
  stall(now = Date.now()): SealingStall | null {
    if (!this.config.backgroundWorkers || this.stopped) return null;
    const limit = this.config.audit.sealStallMs;
    if (now - this.lockedAt > limit) return { cause: 'lock_held', since: new Date(this.lockedAt) };
    if (this.heldBackSince && now - this.heldBackSince.getTime() > limit) {
      return { cause: 'open_transaction', since: this.heldBackSince };
    }
    return null;
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sealPass()
        .catch((err: unknown) => this.logger.warn({ err: loggableError(err) }, 'audit sealing pass failed'))
        .finally(() => this.schedule());
    }, this.config.audit.sealIntervalMs);
    this.timer.unref();
  }

  /** One periodic pass: seal what is sealable, then witness the head if it moved. */
  private async sealPass(): Promise<void> {
    const sealed = await this.sealAvailable(false);
    if (sealed > 0) this.unpublished = true;
    if (!this.unpublished) return;
    try {
      // Busy: another holder of the lock publishes; this instance tries again next pass.
      this.unpublished = (await this.writer.publishHead(false)).outcome === 'busy';
      this.publishFailedAt = 0;
    } catch (err) {
      // Tried again every pass (the integrity report shows the failure); logged once a minute, not five times a second.
      if (Date.now() - this.publishFailedAt > 60_000) {
        this.publishFailedAt = Date.now();
        this.logger.warn({ err: loggableError(err) }, 'writing the sealed head to the witness failed');
      }
    }
  }

  /**
   * Seals one batch; returns how many events it chained. With `wait` it queues
   * for the lock; otherwise it returns 0 at once when another sealer holds it.
   */
  async sealBatch(wait: boolean, batchSize = SEAL_BATCH_SIZE): Promise<number> {
    return this.prisma.$transaction(
      async (tx) => {
        const locked = await lockSealer(tx, wait);
        if (!locked) return 0;
        this.lockedAt = Date.now();
        // Read after taking the lock, so a sealer that just committed is seen.
        const [head] = await tx.$queryRaw<ChainHeadRow[]>`
          SELECT c.seq, c.hash, e.txid, e.id::text AS id
          FROM audit_chain c JOIN audit_events e ON e.id = c.event_id
          ORDER BY c.seq DESC LIMIT 1`;
        // Taken before this transaction writes anything, so it has no xid of its own to hold the watermark.
        const [{ xmin }] = await tx.$queryRaw<{ xmin: bigint }[]>`
          SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin`;
        const after = head ? Prisma.sql`AND (e.txid, e.id) > (${head.txid}::bigint, ${head.id}::uuid)` : Prisma.empty;
        const events = await tx.$queryRaw<EventSqlRow[]>`
          SELECT ${EVENT_COLUMNS} FROM audit_events e
          WHERE e.txid < ${xmin}::bigint ${after}
          ORDER BY e.txid, e.id LIMIT ${batchSize}`;
        if (events.length < batchSize) await this.checkHeldBack(tx, xmin, after);
        if (events.length === 0) return 0;

        let prevHash = head ? head.hash : GENESIS_HASH;
        const ids: string[] = [];
        const prevHashes: string[] = [];
        const hashes: string[] = [];
        for (const event of events) {
          const hash = eventHash(prevHash, chainedFields(event));
          ids.push(event.id);
          prevHashes.push(prevHash);
          hashes.push(hash);
          prevHash = hash;
        }
        const firstSeq = head ? head.seq + 1n : 1n;
        await tx.$executeRaw`
          INSERT INTO audit_chain (seq, event_id, prev_hash, hash)
          SELECT ${firstSeq}::bigint + t.ord - 1, t.event_id, t.prev_hash, t.hash
          FROM unnest(${ids}::uuid[], ${prevHashes}::text[], ${hashes}::text[])
            WITH ORDINALITY AS t(event_id, prev_hash, hash, ord)`;
        return events.length;
      },
      { timeout: 60_000, maxWait: 60_000 },
    );
  }

  /**
   * Caught up: the oldest event left behind is one whose transaction is still open. Looked at
   * every few seconds (the (txid, id) index makes it a short range scan).
   */
  private async checkHeldBack(tx: Transaction, xmin: bigint, after: Prisma.Sql): Promise<void> {
    if (Date.now() - this.pinCheckedAt < PIN_CHECK_INTERVAL_MS) return;
    this.pinCheckedAt = Date.now();
    const [row] = await tx.$queryRaw<{ oldest: Date | null }[]>`
      SELECT min(e.occurred_at) AS oldest FROM audit_events e WHERE e.txid >= ${xmin}::bigint ${after}`;
    this.heldBackSince = row?.oldest ?? null;
  }

  /** Seals until nothing sealable is left (or, without `wait`, until another sealer holds the lock). */
  async sealAvailable(wait: boolean, batchSize = SEAL_BATCH_SIZE): Promise<number> {
    let total = 0;
    for (;;) {
      const sealed = await this.sealBatch(wait, batchSize);
      total += sealed;
      if (sealed < batchSize) return total;
    }
  }

  /**
   * Seals every event committed before this call, waiting for transactions
   * still open at the call to end (up to `deadlineMs`), and writes the head to the
   * witness. For tests, the CLI, on-demand checkpoints and the integrity check.
   */
  async sealNow(deadlineMs = 60_000): Promise<number> {
    const [{ target }] = await this.prisma.$queryRaw<{ target: bigint }[]>`
      SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS target`;
    const deadline = Date.now() + deadlineMs;
    let total = 0;
    for (;;) {
      const [{ xmin }] = await this.prisma.$queryRaw<{ xmin: bigint }[]>`
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin`;
      total += await this.sealAvailable(true);
      if (xmin >= target) {
        await this.writer.publishHead(true);
        this.unpublished = false;
        return total;
      }
      if (Date.now() > deadline) {
        throw new Error('audit sealing: a transaction older than this request is still open');
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
