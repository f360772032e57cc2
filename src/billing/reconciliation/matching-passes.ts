import type { Transaction } from '../../database/transaction';
import { Prisma } from '../../generated/prisma/client';
import type { ReconciliationSummary } from './reconciliation-report';
import { DIFFERENCE_STATUSES, ITEM_STATUSES, ItemStatus, Period } from './statement-rules';

/*
 * The matching passes: each one named step of matching a staged statement
 * against `verification_charges`, one set-based SQL statement each, run in the
 * caller's transaction (ReconciliationService.match) in the order below. These
 * are the only writers of `reconciliation_items`. The rules they apply are
 * statement-rules.ts's (`classifyLine`, `settlesAsNotBilled`), written in SQL so
 * a million lines are judged at once; the e2e tests hold every stored item to them.
 */

/**
 * How far a statement line's called_at may lie outside [created_at, completed_at]
 * of an unknown call of ours that never learnt its trace id, for the two to be
 * paired by time (clock skew between vendor and idgate). A line inside exactly
 * one call's own window wins over tolerance-only candidates; ambiguity pairs nothing.
 */
export const TIME_WINDOW_TOLERANCE_MS = 2000;

const TOLERANCE = Prisma.sql`(${TIME_WINDOW_TOLERANCE_MS}::int * interval '1 millisecond')`;

const ITEM_INSERT_COLUMNS = Prisma.sql`reconciliation_id, seq, line_no, status, trace_id, called_at, vendor_result,
  vendor_charged, vendor_amount, verification_id, match_method, internal_charge_status, internal_result,
  internal_amount, settlement, problem`;

/**
 * Memory for this transaction's hash joins and aggregates: a million-line statement
 * joined to a million calls stays in memory instead of spilling to temp files.
 */
export async function allowLargeJoins(tx: Transaction): Promise<void> {
  await tx.$executeRaw`SET LOCAL work_mem = '64MB'`;
}

/**
 * Pass 1, every line judged: joined to ours by trace id (one hash join), then
 * `classifyLine` in SQL. A repeated trace id makes later lines `duplicate`: the
 * loader flagged lines whose trace id it had (probably) seen before
 * (`seen_before`), and only those are checked against the earlier lines. A line
 * for one of our `unknown` calls settles it. Items are numbered by line (seq = line_no).
 */
export async function judgeLinesByTraceId(
  tx: Transaction,
  reconciliationId: string,
  repeatCandidates: number,
): Promise<void> {
  const id = Prisma.sql`${reconciliationId}::uuid`;
  // No candidate (the usual bill): no line repeats an earlier trace id, and the check is left out.
  const repeated =
    repeatCandidates > 0
      ? Prisma.sql`
      SELECT l.trace_id, min(l.line_no) AS first_line
      FROM reconciliation_lines l
      WHERE l.reconciliation_id = ${id} AND l.problem IS NULL
        AND l.trace_id IN (SELECT r.trace_id FROM reconciliation_lines r
                           WHERE r.reconciliation_id = ${id} AND r.seen_before)
      GROUP BY l.trace_id`
      : Prisma.sql`SELECT NULL::varchar AS trace_id, NULL::int AS first_line WHERE false`;
  await tx.$executeRaw`
    WITH repeated AS (${repeated}),
    joined AS (
      SELECT l.*, v.id AS v_id, v.status AS v_status, v.charge_status AS v_charge_status, v.result AS v_result,
             v.unit_price AS v_unit_price, v.amount AS v_amount,
             COALESCE(l.line_no > d.first_line, false) AS is_dup
      FROM reconciliation_lines l
      LEFT JOIN repeated d ON l.seen_before AND d.trace_id = l.trace_id
      LEFT JOIN verification_charges v ON l.problem IS NULL AND v.upstream_trace_id = l.trace_id
      WHERE l.reconciliation_id = ${id}
    ),
    judged AS (
      SELECT j.*,
        (j.problem IS NULL AND NOT j.is_dup AND j.v_status = 'unknown' AND j.v_charge_status = 'unknown') AS settles,
        CASE
          WHEN j.problem IS NOT NULL THEN 'malformed'
          WHEN j.is_dup THEN 'duplicate'
          WHEN j.v_id IS NULL THEN 'missing_internal'
          WHEN j.v_charge_status = 'unknown' AND j.v_status <> 'unknown' THEN 'matched'
          WHEN j.v_charge_status = 'unknown' THEN
            CASE WHEN j.amount <> (CASE WHEN j.charged THEN j.v_unit_price ELSE 0 END) THEN 'amount_mismatch' ELSE 'matched' END
          WHEN j.charged <> (j.v_charge_status = 'charged') THEN 'charge_mismatch'
          WHEN j.amount <> COALESCE(j.v_amount, 0) THEN 'amount_mismatch'
          WHEN j.v_result IS NOT NULL AND j.result <> j.v_result THEN 'result_mismatch'
          ELSE 'matched'
        END AS status
      FROM joined j
    )
    INSERT INTO reconciliation_items (${ITEM_INSERT_COLUMNS})
    SELECT ${id}, line_no, line_no, status, trace_id, called_at, result, charged, amount,
           v_id, CASE WHEN v_id IS NOT NULL THEN 'trace_id' END, v_charge_status, v_result,
           CASE WHEN is_dup THEN NULL
                WHEN settles THEN (CASE WHEN charged THEN v_unit_price ELSE 0 END)
                ELSE v_amount END,
           CASE WHEN settles THEN (CASE WHEN charged THEN 'charged' ELSE 'not_charged' END) END,
           problem
    FROM judged`;
}

/**
 * Pass 2, time pairing: a call that timed out or was reset never learnt its
 * trace id. A line nobody claimed is paired with such an unknown call when its
 * called_at lies in the call's [created_at, completed_at] (± the tolerance), and
 * the pairing is unambiguous. Returns the calls paired (few: skipped when there is none to pair).
 */
export async function pairByTimeWindow(tx: Transaction, reconciliationId: string): Promise<string[]> {
  const id = Prisma.sql`${reconciliationId}::uuid`;
  const [{ pending }] = await tx.$queryRaw<Array<{ pending: boolean }>>`
    SELECT EXISTS (
      SELECT 1 FROM verification_charges
      WHERE status = 'unknown' AND charge_status = 'unknown' AND upstream_trace_id IS NULL
    ) AS pending`;
  if (!pending) return [];
  const paired = await tx.$queryRaw<Array<{ verification_id: string }>>`
    WITH cand AS (
      SELECT i.seq, v.id AS verification_id, v.unit_price,
             (i.called_at >= v.created_at AND i.called_at <= COALESCE(v.completed_at, v.created_at)) AS exact
      FROM reconciliation_items i
      JOIN verification_charges v
        ON v.status = 'unknown' AND v.charge_status = 'unknown' AND v.upstream_trace_id IS NULL
       AND i.called_at >= v.created_at - ${TOLERANCE}
       AND i.called_at <= COALESCE(v.completed_at, v.created_at) + ${TOLERANCE}
      WHERE i.reconciliation_id = ${id} AND i.status = 'missing_internal'
    ),
    ranked AS (
      SELECT cand.*,
             count(*) FILTER (WHERE exact) OVER (PARTITION BY seq) AS n_exact,
             count(*) OVER (PARTITION BY seq) AS n_all
      FROM cand
    ),
    chosen AS (
      SELECT * FROM ranked WHERE (n_exact = 1 AND exact) OR (n_exact = 0 AND n_all = 1)
    ),
    -- A call claimed by one line inside its own window keeps that line; otherwise only a sole claimant pairs.
    claims AS (
      SELECT chosen.*,
             count(*) FILTER (WHERE exact) OVER (PARTITION BY verification_id) AS v_exact,
             count(*) OVER (PARTITION BY verification_id) AS v_all
      FROM chosen
    ),
    paired AS (
      SELECT * FROM claims WHERE (v_exact = 1 AND exact) OR (v_exact = 0 AND v_all = 1)
    )
    UPDATE reconciliation_items i
    SET verification_id = p.verification_id,
        match_method = 'time_window',
        internal_charge_status = 'unknown',
        internal_result = NULL,
        status = CASE WHEN i.vendor_amount <> (CASE WHEN i.vendor_charged THEN p.unit_price ELSE 0 END)
                      THEN 'amount_mismatch' ELSE 'matched' END,
        internal_amount = CASE WHEN i.vendor_charged THEN p.unit_price ELSE 0 END,
        settlement = CASE WHEN i.vendor_charged THEN 'charged' ELSE 'not_charged' END
    FROM paired p
    WHERE i.reconciliation_id = ${id} AND i.seq = p.seq
    RETURNING p.verification_id::text AS verification_id`;
  return paired.map((p) => p.verification_id);
}

/**
 * Pass 3, ours in the period that the statement lacks (after every line):
 * charged → `missing_vendor`; `unknown` whose whole call lies in the period
 * (`settlesAsNotBilled`) and that no unclaimed line could belong to →
 * `not_billed`, to be settled as not charged (not a difference). A call is on
 * the statement when a good line carries its trace id (an anti-join on the
 * staged lines: one hash join) or pass 2 paired it. Numbered after the last line,
 * by created_at.
 */
export async function addOursMissingFromStatement(
  tx: Transaction,
  reconciliationId: string,
  period: Period,
  maxLineNo: number,
  pairedByTime: readonly string[],
): Promise<void> {
  const id = Prisma.sql`${reconciliationId}::uuid`;
  await tx.$executeRaw`
    INSERT INTO reconciliation_items (${ITEM_INSERT_COLUMNS})
    SELECT ${id}, ${maxLineNo}::int + (row_number() OVER (ORDER BY v.created_at, v.id))::int, NULL,
           CASE WHEN v.charge_status = 'charged' THEN 'missing_vendor' ELSE 'not_billed' END,
           v.upstream_trace_id, NULL, NULL, NULL, NULL, v.id, NULL, v.charge_status, v.result,
           CASE WHEN v.charge_status = 'charged' THEN v.amount ELSE 0 END,
           CASE WHEN v.charge_status = 'unknown' THEN 'not_charged' END,
           NULL
    FROM verification_charges v
    WHERE v.created_at >= ${period.from} AND v.created_at < ${period.to}
      AND (
        v.charge_status = 'charged'
        -- Unknown calls, and those an earlier statement already settled as not charged (same answer on a re-run).
        OR (
          v.status = 'unknown' AND v.charge_status IN ('unknown', 'not_charged')
          AND COALESCE(v.completed_at, v.created_at) < ${period.to}
          -- An unclaimed line that could be this call (ambiguous pairing) forbids "not charged".
          AND (v.upstream_trace_id IS NOT NULL OR v.charge_status = 'not_charged' OR NOT EXISTS (
            SELECT 1 FROM reconciliation_items a
            WHERE a.reconciliation_id = ${id} AND a.status = 'missing_internal'
              AND a.called_at >= v.created_at - ${TOLERANCE}
              AND a.called_at <= COALESCE(v.completed_at, v.created_at) + ${TOLERANCE}))
        )
      )
      AND NOT EXISTS (
        SELECT 1 FROM reconciliation_lines l
        WHERE l.reconciliation_id = ${id} AND l.problem IS NULL AND l.trace_id = v.upstream_trace_id
      )
      AND NOT (v.id = ANY(${pairedByTime as string[]}::uuid[]))`;
}

export interface WantedSettlement {
  verificationId: string;
  charged: boolean;
  /** The trace id a time-paired line taught us (null when the call was found by trace id). */
  traceId: string | null;
}

export interface ItemTally {
  counts: ReconciliationSummary['counts'];
  amounts: ReconciliationSummary['amounts'];
  /** The settlements the passes decided: lines for our unknown calls, and unknown calls the statement lacks. */
  wanted: WantedSettlement[];
}

/**
 * The items once every pass has run, in one scan: counts and amounts per status
 * (the summary; settling changes neither) and the settlements to make.
 */
export async function tallyItems(tx: Transaction, reconciliationId: string): Promise<ItemTally> {
  const rows = await tx.$queryRaw<
    Array<{ status: ItemStatus; n: bigint; vendor: bigint; internal: bigint; settles: string | null }>
  >`
    SELECT status, count(*)::bigint AS n,
           COALESCE(sum(vendor_amount) FILTER (WHERE vendor_charged), 0)::bigint AS vendor,
           COALESCE(sum(internal_amount), 0)::bigint AS internal,
           (json_agg(json_build_array(verification_id, settlement = 'charged',
                                      CASE WHEN match_method = 'time_window' THEN trace_id END))
              FILTER (WHERE settlement IS NOT NULL))::text AS settles
    FROM reconciliation_items WHERE reconciliation_id = ${reconciliationId}::uuid
    GROUP BY status`;
  const counts = Object.fromEntries([...ITEM_STATUSES, 'differences'].map((s) => [s, 0])) as ItemTally['counts'];
  const byStatus: Record<string, { vendor: number; internal: number }> = {};
  const wanted: WantedSettlement[] = [];
  let vendorTotal = 0;
  let internalTotal = 0;
  for (const row of rows) {
    counts[row.status] = Number(row.n);
    if (DIFFERENCE_STATUSES.includes(row.status)) counts.differences += Number(row.n);
    byStatus[row.status] = { vendor: Number(row.vendor), internal: Number(row.internal) };
    vendorTotal += Number(row.vendor);
    internalTotal += Number(row.internal);
    for (const [verificationId, charged, traceId] of JSON.parse(row.settles ?? '[]') as Array<
      [string, boolean, string | null]
    >) {
      wanted.push({ verificationId, charged, traceId });
    }
  }
  return {
    counts,
    amounts: {
      vendor_total: vendorTotal,
      internal_total: internalTotal,
      difference: vendorTotal - internalTotal,
      by_status: byStatus,
    },
    wanted,
  };
}

/** Settled meanwhile by a late answer: the report must not claim this reconciliation settled them. */
export async function unmarkSettlements(
  tx: Transaction,
  reconciliationId: string,
  verificationIds: readonly string[],
): Promise<void> {
  if (verificationIds.length === 0) return;
  await tx.$executeRaw`
    UPDATE reconciliation_items SET settlement = NULL
    WHERE reconciliation_id = ${reconciliationId}::uuid AND verification_id = ANY(${verificationIds as string[]}::uuid[])`;
}
