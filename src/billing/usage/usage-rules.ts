/*
 * Usage report parameters (pure): time zones, period bounds, grouping.
 */

export const USAGE_GROUPS = ['day', 'client', 'result'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

let zones: Set<string> | null = null;

/** IANA zone names Node knows (PostgreSQL knows the same tz database), plus UTC spellings. */
export function isTimeZone(tz: string): boolean {
  zones ??= new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/UTC', 'GMT']);
  return zones.has(tz);
}

/** A period bound: a calendar date (midnight in the report's time zone) or an instant. */
export type Bound = { kind: 'date'; date: string } | { kind: 'instant'; at: Date };

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$/;

/** Null when the text is neither `YYYY-MM-DD` nor an ISO 8601 date-time with a zone. */
export function parseBound(text: string): Bound | null {
  if (DATE.test(text)) {
    const d = new Date(`${text}T00:00:00Z`);
    return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== text ? null : { kind: 'date', date: text };
  }
  if (INSTANT.test(text)) {
    const at = new Date(text);
    return Number.isNaN(at.getTime()) ? null : { kind: 'instant', at };
  }
  return null;
}

/** The default period when none is given: the current calendar month so far, in UTC. */
export function defaultPeriod(now: Date): { from: Bound; to: Bound } {
  const monthStart = `${now.toISOString().slice(0, 7)}-01`;
  return { from: { kind: 'date', date: monthStart }, to: { kind: 'instant', at: now } };
}
