import { stringify } from 'csv-stringify/sync';

/*
 * CSV formula injection (OWASP "CSV Injection"): a spreadsheet opening a CSV
 * runs a cell that starts with `=`, `+`, `-` or `@` as a formula (and some
 * trim a leading tab or CR first), so text an attacker put in a field (a
 * trace id on a vendor statement, an X-Request-Id, a label) could run when
 * finance or compliance open an export. Every CSV idgate writes passes each
 * cell through `csvSafeCell`: such a cell gets OWASP's prefix, a single quote,
 * which makes the spreadsheet show it as text. Cells that are wholly a number
 * (result codes such as `-1`, amounts) are left alone: they cannot run and
 * must stay numbers. Only the CSV changes; JSON, NDJSON and hashes never do.
 */

/** Characters that make a spreadsheet read a cell as a formula; full-width forms too (CJK input methods produce them). */
const FORMULA_START = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;
/** A plain decimal number, optionally signed, with optional fraction and exponent. */
const WHOLLY_A_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export type CsvCell = string | number | bigint | boolean | null | undefined;

/** The cell as it may safely go into a CSV: text a spreadsheet would run is prefixed with `'`. */
export function csvSafeCell(value: CsvCell): string | number | bigint | boolean | null | undefined {
  if (typeof value !== 'string') return value;
  if (!FORMULA_START.test(value) || WHOLLY_A_NUMBER.test(value)) return value;
  return `'${value}`;
}

/** Rows as CSV text (RFC 4180 quoting by csv-stringify), every cell made safe first. */
export function csvRows(rows: readonly (readonly CsvCell[])[]): string {
  return stringify(rows.map((row) => row.map(csvSafeCell)));
}
