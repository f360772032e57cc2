/** One line of the sandbox vendor's statement: a call it charged for. */
export interface StatementEntry {
  trace_id: string;
  /** ISO 8601, UTC, milliseconds. */
  called_at: string;
  result: string;
  charged: true;
  /** Minor currency units. */
  amount: number;
}

export interface StatementRange {
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
}

export const STATEMENT_HEADER = 'trace_id,called_at,result,charged,amount';

export function inRange(entry: StatementEntry, range: StatementRange): boolean {
  const at = Date.parse(entry.called_at);
  return (
    (range.from === undefined || at >= range.from.getTime()) && (range.to === undefined || at < range.to.getTime())
  );
}

/** CSV as the vendor would send it: header line, one line per charged call, CRLF-free. */
export function renderStatementCsv(entries: readonly StatementEntry[]): string {
  const lines = entries.map((e) => `${e.trace_id},${e.called_at},${e.result},${e.charged},${e.amount}`);
  return [STATEMENT_HEADER, ...lines].join('\n') + '\n';
}

/** A `from` / `to` query value: an ISO date (`2024-06-01`) or date-time. */
export function parseStatementBound(value: string | null): Date | undefined | null {
  if (value === null || value === '') return undefined;
  if (!/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) return null;
  const date = new Date(value.length === 10 ? `${value}T00:00:00Z` : value);
  return Number.isNaN(date.getTime()) ? null : date;
}
