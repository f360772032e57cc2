import { checkDateTime } from '../../common/date-time';
/*
 * The vendor statement and how its lines are judged: pure rules, no database.
 * The set-based SQL of matching-passes.ts applies `classifyLine` to every
 * line at once; the e2e tests check each stored item against this function.
 */

export const STATEMENT_COLUMNS = ['trace_id', 'called_at', 'result', 'charged', 'amount'] as const;
export const STATEMENT_HEADER = STATEMENT_COLUMNS.join(',');

/** Statuses of a reconciliation item. */
export const ITEM_STATUSES = [
  /** On the bill and ours, agreeing (an unknown of ours settled by the line counts as matched). */
  'matched',
  /** On the bill, not ours. */
  'missing_internal',
  /** Ours and charged, in the period, not on the bill. */
  'missing_vendor',
  /** The bill says charged and ours says not charged, or the other way round. */
  'charge_mismatch',
  /** Both charged, different amounts. */
  'amount_mismatch',
  /** Both charged, same amount, different result codes. */
  'result_mismatch',
  /** The bill repeats a trace id of an earlier line (billed twice). */
  'duplicate',
  /** The line could not be read; `problem` says why. */
  'malformed',
  /** Ours, unknown before, in the period and absent from the bill: settled as not charged. Not a difference. */
  'not_billed',
] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/** Statuses that are differences to look into (everything but matched and not_billed). */
export const DIFFERENCE_STATUSES: readonly ItemStatus[] = ITEM_STATUSES.filter(
  (s) => s !== 'matched' && s !== 'not_billed',
);

/** True when the first record is exactly the statement header (a BOM and surrounding spaces aside). */
export function isStatementHeader(record: readonly string[]): boolean {
  return (
    record.length === STATEMENT_COLUMNS.length &&
    record.every((value, i) => value.replace(/^\uFEFF/, '').trim() === STATEMENT_COLUMNS[i])
  );
}

export interface StatementLine {
  lineNo: number;
  traceId: string;
  calledAt: Date;
  result: string;
  charged: boolean;
  amount: number;
}

export type ParsedLine = { ok: true; line: StatementLine } | { ok: false; lineNo: number; problem: string };

const TRACE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$/;
const RESULT = /^-?\d{1,3}$/;
const AMOUNT = /^\d{1,9}$/;

/** Reads one data line (already split into fields). `lineNo` counts the header as line 1. */
export function parseStatementLine(fields: readonly string[], lineNo: number): ParsedLine {
  const bad = (problem: string): ParsedLine => ({ ok: false, lineNo, problem });
  if (fields.length !== STATEMENT_COLUMNS.length) {
    return bad(`expected ${STATEMENT_COLUMNS.length} fields, found ${fields.length}`);
  }
  const [traceId, calledAtText, result, chargedText, amountText] = fields.map((f) => f.trim());
  if (!TRACE_ID.test(traceId)) return bad('trace_id: must be 1-128 letters, digits, ".", "_", ":" or "-"');
  let calledAt: Date;
  const utc = commonUtcInstant(calledAtText);
  if (utc !== null) calledAt = new Date(utc);
  else {
    if (!ISO_INSTANT.test(calledAtText)) return bad('called_at: must be an ISO 8601 date-time with a time zone');
    // A real calendar date and time that PostgreSQL can store (2026-02-30 does not roll over to March).
    const checked = checkDateTime(calledAtText);
    if (!checked.ok) return bad(`called_at: ${checked.problem}`);
    calledAt = checked.at;
  }
  if (!RESULT.test(result)) return bad('result: must be an integer result code such as "0" or "-1"');
  const chargedLower = chargedText.toLowerCase();
  if (chargedLower !== 'true' && chargedLower !== 'false') return bad('charged: must be true or false');
  if (!AMOUNT.test(amountText)) return bad('amount: must be a whole number of minor units');
  const amount = Number(amountText);
  const charged = chargedLower === 'true';
  if (!charged && amount !== 0) return bad('amount: must be 0 when charged is false');
  return { ok: true, line: { lineNo, traceId, calledAt, result, charged, amount } };
}

/**
 * called_at in the form vendors write, `YYYY-MM-DDTHH:MM:SS[.f…]Z` (1–6 fraction digits), with a year from
 * 1000 and a real date and time: its instant in ms, read without a regular expression or a Date (a million
 * lines take it). null for anything else, which the general rule above reads and judges. Gives exactly
 * what ISO_INSTANT and checkDateTime give (milliseconds truncated, not rounded).
 */
export function commonUtcInstant(t: string): number | null {
  const n = t.length;
  if ((n !== 20 && (n < 22 || n > 27)) || t.charCodeAt(n - 1) !== 90 /* Z */) return null;
  if (t[4] !== '-' || t[7] !== '-' || t[10] !== 'T' || t[13] !== ':' || t[16] !== ':') return null;
  const year = digits(t, 0, 4);
  const month = digits(t, 5, 2);
  const day = digits(t, 8, 2);
  const hour = digits(t, 11, 2);
  const minute = digits(t, 14, 2);
  const second = digits(t, 17, 2);
  let ms = 0;
  if (n > 20) {
    if (t[19] !== '.' || digits(t, 20, n - 21) < 0) return null;
    for (let i = 20; i < 23; i++) ms = ms * 10 + (i < n - 1 ? t.charCodeAt(i) - 48 : 0);
  }
  if (year < 1000 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return null;
  if (minute < 0 || minute > 59 || second < 0 || second > 59 || day > daysInMonth(year, month)) return null;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms);
}

/** The number written by `count` ASCII digits at `from`, or -1. */
function digits(t: string, from: number, count: number): number {
  let v = 0;
  for (let i = from; i < from + count; i++) {
    const d = t.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** A line the statement reader could not read at all (unbalanced quote, NUL, …), as a malformed line. */
export function unreadableLine(lineNo: number, reason: string): ParsedLine {
  return { ok: false, lineNo, problem: `unreadable CSV: ${reason}`.slice(0, 300) };
}

export interface Period {
  /** Inclusive. */
  from: Date;
  /** Exclusive. */
  to: Date;
}

export type PeriodSource = 'explicit' | 'statement' | 'none';

/**
 * The period a statement covers. Explicit `from`/`to` win (from inclusive, to
 * exclusive, as the vendor's own statement query takes them); otherwise the
 * statement's own [earliest, latest] called_at; with neither, no period (then
 * nothing is missing_vendor and no unknown is settled as not charged).
 * Both bounds or neither: a half-open period is refused by the caller.
 */
export function statementPeriod(
  explicit: { from?: Date; to?: Date },
  calledAt: { min: Date | null; max: Date | null },
): { period: Period | null; source: PeriodSource } {
  if (explicit.from && explicit.to) return { period: { from: explicit.from, to: explicit.to }, source: 'explicit' };
  if (calledAt.min && calledAt.max) {
    return { period: { from: calledAt.min, to: new Date(calledAt.max.getTime() + 1) }, source: 'statement' };
  }
  return { period: null, source: 'none' };
}

/** Our side of a matched line, before this reconciliation. */
export interface InternalCharge {
  status: 'pending' | 'completed' | 'failed' | 'unknown';
  chargeStatus: 'charged' | 'not_charged' | 'unknown';
  result: string | null;
  unitPrice: number;
  amount: number | null;
}

export interface LineJudgement {
  status: ItemStatus;
  /** Set when the line settles our unknown charge. */
  settlement: 'charged' | 'not_charged' | null;
  /** Our amount after the reconciliation. */
  internalAmount: number | null;
}

/**
 * The matching rule for one statement line found among ours (by trace id or,
 * for an unknown call whose trace id we never learnt, by time window). Exact:
 * no tolerance on amounts. An unknown of ours takes the bill's word (settled)
 * and is matched unless the billed amount differs from our price in force.
 */
export function classifyLine(
  vendor: { charged: boolean; result: string; amount: number },
  ours: InternalCharge,
): LineJudgement {
  if (ours.chargeStatus === 'unknown') {
    if (ours.status !== 'unknown') {
      // Still pending: the call is in flight; its own flow settles it. Nothing to say yet.
      return { status: 'matched', settlement: null, internalAmount: null };
    }
    const internalAmount = vendor.charged ? ours.unitPrice : 0;
    return {
      status: vendor.amount !== internalAmount ? 'amount_mismatch' : 'matched',
      settlement: vendor.charged ? 'charged' : 'not_charged',
      internalAmount,
    };
  }
  const oursCharged = ours.chargeStatus === 'charged';
  const judged = (status: ItemStatus): LineJudgement => ({ status, settlement: null, internalAmount: ours.amount });
  if (vendor.charged !== oursCharged) return judged('charge_mismatch');
  if (vendor.amount !== (ours.amount ?? 0)) return judged('amount_mismatch');
  if (ours.result !== null && vendor.result !== ours.result) return judged('result_mismatch');
  return judged('matched');
}

/**
 * Whether an unknown verification of ours can be settled as not charged because
 * it is absent from the bill: the whole call (created … settled as unknown)
 * lies inside the period, so a charge for it would be on this statement.
 */
export function settlesAsNotBilled(window: { createdAt: Date; completedAt: Date | null }, period: Period): boolean {
  const end = window.completedAt ?? window.createdAt;
  return window.createdAt >= period.from && end < period.to;
}
