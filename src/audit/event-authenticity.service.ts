import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import type { PrismaService } from '../database/prisma.service';
import { chainedFields, EVENT_COLUMNS, EventSqlRow } from './audit-rows';
import type { ChainFault } from './chain-walker';
import { AuthenticityWalk, MAC_REQUIRED_FROM, WalkedEvent } from './event-authenticity';
import type { Transaction } from '../database/transaction';

export interface EventChecker {
  check(seq: number, event: EventSqlRow): ChainFault | null;
}

const walked = (row: EventSqlRow): WalkedEvent => ({
  ...chainedFields(row),
  occurredAt: row.occurred_at,
  mac: row.mac,
});

/**
 * Checks of each sealed event that the hash chain cannot make: that idgate wrote it (its
 * MAC under AUDIT_MAC_KEY, a key the database never sees) and that its time fits the
 * order it was sealed in. The integrity walk asks it about every entry, in seq order;
 * `begin` starts a walk (the checks keep state across entries, e.g. the tail's time).
 * The rules themselves are in event-authenticity.ts.
 */
@Injectable()
export class AuditEventAuthenticity {
  constructor(private readonly config: AppConfig) {}

  /**
   * A fresh checker for one walk starting at `fromSeq`. `previous`, the event sealed at
   * fromSeq - 1, gives a ranged walk what came before it: its time is the tail to compare
   * with, and once it has a valid MAC no later event may lack one. Without it, a ranged walk
   * compares times from its first entry on, and takes MAC-less events dated before the
   * cut-over as written before MACs existed until it meets one with a MAC.
   */
  begin(fromSeq: number, previous: EventSqlRow | null = null): EventChecker {
    const walk = new AuthenticityWalk({
      macKey: this.config.audit.macKey,
      toleranceMs: this.config.audit.orderToleranceMs,
      macRequiredFrom: MAC_REQUIRED_FROM,
    });
    if (previous && fromSeq > 1) walk.after(fromSeq - 1, walked(previous));
    return { check: (seq, row) => walk.check(seq, walked(row)) };
  }

  /** `begin`, with the event before `fromSeq` read first (one indexed lookup). */
  async beginAt(db: Transaction | PrismaService, fromSeq: number): Promise<EventChecker> {
    if (fromSeq <= 1) return this.begin(fromSeq);
    const [previous] = await db.$queryRaw<EventSqlRow[]>`
      SELECT ${EVENT_COLUMNS} FROM audit_chain c JOIN audit_events e ON e.id = c.event_id
      WHERE c.seq = ${fromSeq - 1}::bigint`;
    return this.begin(fromSeq, previous ?? null);
  }
}
