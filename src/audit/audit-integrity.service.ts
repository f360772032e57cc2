import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import { AuditCheckpoints } from './audit-checkpoints.service';
import { chainedFields, EVENT_COLUMNS, EventSqlRow } from './audit-rows';
import { GENESIS_HASH } from './canonical';
import { ChainFault, ChainWalker } from './chain-walker';
import { AuditEventAuthenticity } from './event-authenticity.service';

export interface IntegrityReport {
  ok: boolean;
  /** Chain entries whose linkage and hash were checked. */
  checked: number;
  from_seq: number;
  to_seq: number;
  /** Signed checkpoints in the range whose signature and hash matched. */
  checkpoints_verified: number;
  first_bad_seq?: number;
  reason?: string;
}

const VERIFY_BATCH = 5000;

type LinkRow = Partial<EventSqlRow> & { seq: bigint; prev_hash: string; link_hash: string; event_id: string };

/**
 * Walks the chain in seq order in batches (constant memory) and reports the
 * first fault: a missing or duplicated seq, broken prev_hash linkage, a hash
 * that does not match its event, a sealed event that is gone, a signed
 * checkpoint the chain no longer matches, or an event that was never sealed
 * though events after it were (inserted behind the sealer's back).
 */
@Injectable()
export class AuditIntegrity {
  constructor(
    private readonly prisma: PrismaService,
    private readonly checkpoints: AuditCheckpoints,
    private readonly authenticity: AuditEventAuthenticity,
  ) {}

  async verifyChain(range: { fromSeq?: number; toSeq?: number } = {}): Promise<IntegrityReport> {
    const [head] = await this.prisma.$queryRaw<{ seq: bigint }[]>`SELECT max(seq) AS seq FROM audit_chain`;
    const headSeq = head?.seq === null || head?.seq === undefined ? 0 : Number(head.seq);
    const from = Math.max(1, range.fromSeq ?? 1);
    const to = Math.min(range.toSeq ?? headSeq, headSeq);
    const report: IntegrityReport = { ok: true, checked: 0, from_seq: from, to_seq: to, checkpoints_verified: 0 };
    const faults: ChainFault[] = [];

    if (from <= to) {
      const walkFault = await this.walk(from, to, report);
      if (walkFault) faults.push(walkFault);
      const behind = await this.unsealedBehindSealer(from, to);
      if (behind) faults.push(behind);
    }
    if (range.toSeq === undefined || range.toSeq > headSeq) {
      // Signatures over entries the chain no longer has: its tail was cut off.
      const beyond = await this.checkpoints.firstAbove(headSeq);
      if (beyond) {
        faults.push({
          seq: headSeq + 1,
          reason: `the chain ends at seq ${headSeq} but a signed checkpoint covers seq ${beyond.seq}: entries were removed`,
        });
      }
    }
    if (faults.length === 0) return report;
    const first = faults.reduce((a, b) => (b.seq < a.seq ? b : a));
    return { ...report, ok: false, first_bad_seq: first.seq, reason: first.reason };
  }

  private async walk(from: number, to: number, report: IntegrityReport): Promise<ChainFault | null> {
    let anchor: string | null = GENESIS_HASH;
    if (from > 1) {
      const prev = await this.prisma.auditChainLink.findUnique({ where: { seq: BigInt(from - 1) } });
      anchor = prev?.hash ?? null;
    }
    const walker = new ChainWalker(from, anchor);
    const events = this.authenticity.begin(from);
    let after = from - 1;
    while (after < to) {
      const rows = await this.prisma.$queryRaw<LinkRow[]>`
        SELECT c.seq, c.prev_hash, c.hash AS link_hash, c.event_id::text AS event_id, ${EVENT_COLUMNS}
        FROM audit_chain c LEFT JOIN audit_events e ON e.id = c.event_id
        WHERE c.seq > ${after}::bigint AND c.seq <= ${to}::bigint
        ORDER BY c.seq LIMIT ${VERIFY_BATCH}`;
      if (rows.length === 0) return { seq: after + 1, reason: `chain entries from seq ${after + 1} are missing` };
      const lastSeq = Number(rows[rows.length - 1].seq);
      const signed = new Map((await this.checkpoints.between(after + 1, lastSeq)).map((c) => [c.seq, c]));
      for (const row of rows) {
        const seq = Number(row.seq);
        const fault = walker.accept({
          seq,
          prevHash: row.prev_hash,
          hash: row.link_hash,
          event: row.id ? chainedFields(row as EventSqlRow) : null,
        });
        if (fault) return fault;
        // What the chain cannot tell: who wrote the event, and whether its time fits its place.
        const eventFault = row.id ? events.check(seq, row as EventSqlRow) : null;
        if (eventFault) return eventFault;
        report.checked = walker.checked;
        const checkpoint = signed.get(seq);
        if (checkpoint) {
          const statement = { seq, hash: checkpoint.hash, signedAt: checkpoint.signed_at, keyId: checkpoint.key_id };
          if (!this.checkpoints.verify(statement, checkpoint.signature)) {
            return { seq, reason: 'the signed checkpoint at this seq has an invalid signature' };
          }
          if (checkpoint.hash !== row.link_hash) {
            return { seq, reason: 'hash differs from the signed checkpoint: the chain was rewritten up to here' };
          }
          report.checkpoints_verified++;
        }
      }
      after = lastSeq;
    }
    return null;
  }

  /**
   * Sealing is in (txid, id) order and never skips: an unsealed event that
   * sorts before a sealed one was slipped in afterwards. Reported at the seq
   * of the first entry sealed after the place it claims.
   */
  private async unsealedBehindSealer(from: number, to: number): Promise<ChainFault | null> {
    const lower =
      from > 1
        ? Prisma.sql`AND (e.txid, e.id) > (SELECT s.txid, s.id FROM audit_chain c JOIN audit_events s ON s.id = c.event_id WHERE c.seq = ${from - 1}::bigint)`
        : Prisma.empty;
    const [stray] = await this.prisma.$queryRaw<{ id: string; next_seq: bigint | null }[]>`
      WITH bound AS (
        SELECT s.txid, s.id FROM audit_chain c JOIN audit_events s ON s.id = c.event_id WHERE c.seq = ${to}::bigint
      )
      SELECT e.id::text AS id,
        (SELECT c2.seq FROM audit_events s2 JOIN audit_chain c2 ON c2.event_id = s2.id
          WHERE (s2.txid, s2.id) > (e.txid, e.id) ORDER BY s2.txid, s2.id LIMIT 1) AS next_seq
      FROM audit_events e, bound
      WHERE (e.txid, e.id) < (bound.txid, bound.id) ${lower}
        AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.id)
      ORDER BY e.txid, e.id LIMIT 1`;
    if (!stray) return null;
    return {
      seq: stray.next_seq === null ? to : Number(stray.next_seq),
      reason: `event ${stray.id} was never sealed though events after it were: it was inserted behind the sealer`,
    };
  }
}
