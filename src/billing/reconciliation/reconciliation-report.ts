import { Injectable } from '@nestjs/common';
import { csvRows } from '../../common/csv-safety';
import { decodeCursor, encodeCursor, Page } from '../../common/pagination';
import { ProblemException } from '../../common/problem';
import { PrismaService } from '../../database/prisma.service';
import { Prisma } from '../../generated/prisma/client';
import type { ItemStatus } from './statement-rules';

/** Rows per query while exporting. */
const EXPORT_BATCH = 5000;

export interface ReconciliationSummary {
  id: string;
  created_at: string;
  file_sha256: string;
  file_bytes: number;
  line_count: number;
  period: { from: string | null; to: string | null; source: string };
  currency: string;
  counts: Record<ItemStatus | 'differences', number>;
  amounts: {
    vendor_total: number;
    internal_total: number;
    difference: number;
    by_status: Record<string, { vendor: number; internal: number }>;
  };
  settled: { charged: number; not_charged: number };
}

export interface ReconciliationItemView {
  seq: number;
  line_no: number | null;
  status: ItemStatus;
  trace_id: string | null;
  called_at: string | null;
  vendor_result: string | null;
  vendor_charged: boolean | null;
  vendor_amount: number | null;
  verification_id: string | null;
  match_method: string | null;
  internal_charge_status: string | null;
  internal_result: string | null;
  internal_amount: number | null;
  settlement: string | null;
  problem: string | null;
}

export const ITEM_CSV_COLUMNS: (keyof ReconciliationItemView)[] = [
  'seq',
  'line_no',
  'status',
  'trace_id',
  'called_at',
  'vendor_result',
  'vendor_charged',
  'vendor_amount',
  'verification_id',
  'match_method',
  'internal_charge_status',
  'internal_result',
  'internal_amount',
  'settlement',
  'problem',
];

/** An item as the database returns it: the view's fields, before status narrowing and date formatting. */
type ItemRow = Omit<ReconciliationItemView, 'status' | 'called_at'> & { status: string; called_at: Date | null };

const ITEM_COLUMNS = Prisma.sql`seq, line_no, status, trace_id, called_at, vendor_result, vendor_charged, vendor_amount,
  verification_id::text AS verification_id, match_method, internal_charge_status, internal_result, internal_amount,
  settlement, problem`;

/** A `reconciliations` row as Prisma reads it. */
export interface ReconciliationRow {
  id: string;
  createdAt: Date;
  fileSha256: string;
  fileBytes: bigint;
  lineCount: number;
  periodFrom: Date | null;
  periodTo: Date | null;
  periodSource: string;
  currency: string;
  counts: unknown;
  amounts: unknown;
  settled: unknown;
}

/**
 * Report reader: completed reconciliations as the API shows them (summary, items
 * in report order, the CSV export). Reads only; loads in progress are invisible.
 */
@Injectable()
export class ReconciliationReport {
  constructor(private readonly prisma: PrismaService) {}

  async summary(id: string): Promise<ReconciliationSummary> {
    const row = await this.prisma.reconciliation.findFirst({ where: { id, state: 'completed' } });
    if (!row) throw new ProblemException('not-found', 'No such reconciliation.');
    return toSummary(row);
  }

  /** Items in report order (statement lines by line number, then ours), keyset on seq. */
  async items(
    id: string,
    status: ItemStatus | undefined,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<ReconciliationItemView>> {
    await this.summary(id);
    const after = cursor
      ? decodeCursor<[number]>(cursor, (v) => v.length === 1 && Number.isInteger(v[0]) && (v[0] as number) >= 0)[0]
      : -1;
    const rows = await this.prisma.$queryRaw<ItemRow[]>`
      SELECT ${ITEM_COLUMNS} FROM reconciliation_items
      WHERE reconciliation_id = ${id}::uuid AND seq > ${after}::int
        ${status ? Prisma.sql`AND status = ${status}` : Prisma.empty}
      ORDER BY seq
      LIMIT ${limit + 1}`;
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { items: page.map(itemView), next_cursor: more ? encodeCursor([page[page.length - 1].seq]) : null };
  }

  /** The whole report as CSV, read in keyset batches: memory stays flat for any size. */
  async *exportCsv(id: string, status?: ItemStatus): AsyncGenerator<string> {
    await this.summary(id);
    yield csvRows([ITEM_CSV_COLUMNS]);
    let after = -1;
    for (;;) {
      const rows = await this.prisma.$queryRaw<ItemRow[]>`
        SELECT ${ITEM_COLUMNS} FROM reconciliation_items
        WHERE reconciliation_id = ${id}::uuid AND seq > ${after}::int
          ${status ? Prisma.sql`AND status = ${status}` : Prisma.empty}
        ORDER BY seq
        LIMIT ${EXPORT_BATCH}`;
      if (rows.length === 0) return;
      after = rows[rows.length - 1].seq;
      yield csvRows(rows.map((r) => ITEM_CSV_COLUMNS.map((c) => csvValue(itemView(r)[c]))));
      if (rows.length < EXPORT_BATCH) return;
    }
  }
}

export function toSummary(row: ReconciliationRow): ReconciliationSummary {
  return {
    id: row.id,
    created_at: row.createdAt.toISOString(),
    file_sha256: row.fileSha256,
    file_bytes: Number(row.fileBytes),
    line_count: row.lineCount,
    period: {
      from: row.periodFrom?.toISOString() ?? null,
      to: row.periodTo?.toISOString() ?? null,
      source: row.periodSource,
    },
    currency: row.currency,
    counts: row.counts as ReconciliationSummary['counts'],
    amounts: row.amounts as ReconciliationSummary['amounts'],
    settled: row.settled as ReconciliationSummary['settled'],
  };
}

function csvValue(value: unknown): string | number {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return value as string | number;
}

function itemView(r: ItemRow): ReconciliationItemView {
  return {
    seq: r.seq,
    line_no: r.line_no,
    status: r.status as ItemStatus,
    trace_id: r.trace_id,
    called_at: r.called_at ? r.called_at.toISOString() : null,
    vendor_result: r.vendor_result,
    vendor_charged: r.vendor_charged,
    vendor_amount: r.vendor_amount,
    verification_id: r.verification_id,
    match_method: r.match_method,
    internal_charge_status: r.internal_charge_status,
    internal_result: r.internal_result,
    internal_amount: r.internal_amount,
    settlement: r.settlement,
    problem: r.problem,
  };
}
