/*
 * Splits a vendor statement into records, streamed, in bounded memory, so that
 * one bad line cannot lose the statement. A general CSV parser gives up (or
 * reads the rest of the file as one field) at an unbalanced quote; this one
 * reports the line and goes on with the next:
 *
 * - RFC 4180 records: `,` between fields, `"` quoting with `""` inside; a quoted
 *   field may span lines. Lines end in LF, CRLF or CR, mixed freely; the last
 *   may have no ending. A leading BOM is dropped; blank lines are skipped (but
 *   counted: line numbers are physical lines, header = 1, a record is numbered
 *   by the line it starts on).
 * - A quote that does not close (before the end of the file or within
 *   `maxRecordChars`), a quote inside an unquoted field, or text after a
 *   closing quote: that line is unreadable, and reading resumes on the next
 *   physical line.
 * - A quoted field that spans lines is kept only if the record it makes is one
 *   the caller accepts (`acceptSpanning`); otherwise the quote is taken to be
 *   unbalanced: its first line is unreadable and reading resumes on the next,
 *   so the lines it swallowed are still read.
 * - A record holding a NUL character is unreadable (PostgreSQL text cannot hold
 *   it, and no statement field has one).
 * - A line longer than `maxRecordChars` is unreadable and skipped without being
 *   held in memory.
 *
 * Pure: text in, records out, no I/O. At most `maxRecordChars` plus one pushed
 * chunk is held.
 */

export type StatementRecord =
  | { kind: 'record'; lineNo: number; fields: string[] }
  /** `firstField`: the line's first field as far as it can be read (for finance to find the line), or ''. */
  | { kind: 'unreadable'; lineNo: number; problem: string; firstField: string };

export interface StatementReaderOptions {
  /** The longest record, in characters. */
  maxRecordChars: number;
  /** Whether a record with a quoted field spanning lines is meant as such (see above). */
  acceptSpanning(fields: readonly string[]): boolean;
}

type Scan =
  | { kind: 'record'; fields: string[]; end: number; breaks: number }
  /** `at`: where reading failed (past the first line: the quote was unbalanced). */
  | { kind: 'error'; problem: string; at: number }
  | { kind: 'more' };

const UNQUOTED_END = /[,\r\n"]/g;
const BLANK = /^[ \t]*$/;
const PADDING = /[ \t]/;

export const UNREADABLE = {
  unclosedQuote: 'a quote is not closed (or closes only on a later line that is not part of it)',
  quoteInField: 'a quote inside an unquoted field',
  textAfterQuote: 'text after a closing quote',
  nul: 'contains a NUL character',
  tooLong: (max: number) => `the line is longer than ${max} characters`,
} as const;

export class StatementReader {
  private buf = '';
  private pos = 0;
  private line = 1;
  private skipping = false;
  private ended = false;
  private started = false;
  /** Where the next CR is in `buf` (at or after the position last asked about), or buf.length for none. */
  private nextCr = -1;

  constructor(private readonly options: StatementReaderOptions) {}

  /** Adds decoded text; complete records go to `emit`, in order. */
  push(text: string, emit: (record: StatementRecord) => void): void {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buf = this.pos < this.buf.length ? this.buf.slice(this.pos) + text : text;
    this.pos = 0;
    this.nextCr = -1;
    this.drain(emit);
  }

  /** The end of the statement: whatever is left is the last record. */
  end(emit: (record: StatementRecord) => void): void {
    this.ended = true;
    this.drain(emit);
    this.buf = '';
    this.pos = 0;
  }

  private drain(emit: (record: StatementRecord) => void): void {
    const max = this.options.maxRecordChars;
    while (this.pos < this.buf.length) {
      const buf = this.buf;
      const br = this.findBreak(buf, this.pos);
      if (br === -1 && !this.ended) {
        if (buf.length - this.pos > max) {
          if (!this.skipping) this.unreadable(emit, UNREADABLE.tooLong(max), buf.slice(this.pos, this.pos + 256));
          this.skipping = true;
          this.pos = buf.length;
        }
        return;
      }
      // Where the next line starts (a CR at the end of the text may be the first half of a CRLF).
      const next = br === -1 ? buf.length : afterBreak(buf, br, this.ended);
      if (next === -1) return;
      const lineEnd = br === -1 ? buf.length : br;
      if (this.skipping) {
        this.skipping = false;
        this.advance(next, br === -1 ? 0 : 1);
        continue;
      }
      const text = buf.slice(this.pos, lineEnd);
      if (text.indexOf('"') === -1) {
        // The common case: no quotes, the record is the line.
        if (text.length > max) this.unreadable(emit, UNREADABLE.tooLong(max), text);
        else if (text.indexOf('\u0000') !== -1) this.unreadable(emit, UNREADABLE.nul, text);
        else if (!isBlank(text)) emit({ kind: 'record', lineNo: this.line, fields: text.split(',') });
        this.advance(next, br === -1 ? 0 : 1);
        continue;
      }
      const scan = scanRecord(buf, this.pos, this.ended);
      if (scan.kind === 'more' && buf.length - this.pos <= max) return;
      if (scan.kind !== 'record' || scan.end - this.pos > max) {
        const problem =
          scan.kind === 'record'
            ? UNREADABLE.tooLong(max)
            : scan.kind === 'more' || scan.at > lineEnd
              ? UNREADABLE.unclosedQuote
              : scan.problem;
        this.unreadable(emit, problem, text);
        this.advance(next, br === -1 ? 0 : 1);
        continue;
      }
      if (scan.breaks > 0 && !this.options.acceptSpanning(scan.fields)) {
        // Most likely an unbalanced quote that ran into later lines: report this line, read those again.
        this.unreadable(emit, UNREADABLE.unclosedQuote, text);
        this.advance(next, br === -1 ? 0 : 1);
        continue;
      }
      const ending = scan.end > 0 && (buf[scan.end - 1] === '\n' || buf[scan.end - 1] === '\r') ? 1 : 0;
      if (scan.fields.some((f) => f.indexOf('\u0000') !== -1)) this.unreadable(emit, UNREADABLE.nul, text);
      else emit({ kind: 'record', lineNo: this.line, fields: scan.fields });
      this.advance(scan.end, scan.breaks + ending);
    }
  }

  /** The next line break at or after `from` (LF or CR), or -1; CRs are looked up once per stretch, not per line. */
  private findBreak(buf: string, from: number): number {
    if (this.nextCr < from) {
      const cr = buf.indexOf('\r', from);
      this.nextCr = cr === -1 ? buf.length : cr;
    }
    const lf = buf.indexOf('\n', from);
    if (lf === -1) return this.nextCr < buf.length ? this.nextCr : -1;
    return lf < this.nextCr ? lf : this.nextCr;
  }

  private advance(to: number, lines: number): void {
    this.pos = to;
    this.line += lines;
  }

  private unreadable(emit: (record: StatementRecord) => void, problem: string, text: string): void {
    emit({ kind: 'unreadable', lineNo: this.line, problem, firstField: firstField(text) });
  }
}

/** Only spaces and tabs (a first character that is neither settles it, which is nearly every line). */
function isBlank(text: string): boolean {
  if (text.length === 0) return true;
  const c = text.charCodeAt(0);
  return (c === 32 || c === 9) && BLANK.test(text);
}

/** Index after the line break at `at`; -1 when a CR ends the text and more may follow. */
function afterBreak(buf: string, at: number, ended: boolean): number {
  if (buf[at] === '\n') return at + 1;
  if (at + 1 < buf.length) return buf[at + 1] === '\n' ? at + 2 : at + 1;
  return ended ? at + 1 : -1;
}

/** Line breaks (LF, CRLF or CR) in buf[from, to). */
function countBreaks(buf: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = buf.charCodeAt(i);
    if (c === 10 || (c === 13 && buf.charCodeAt(i + 1) !== 10)) n++;
  }
  return n;
}

/** Reads one record starting at `start`, quotes and all. */
function scanRecord(buf: string, start: number, ended: boolean): Scan {
  const fields: string[] = [];
  let breaks = 0;
  let i = start;
  for (;;) {
    let j = i;
    while (j < buf.length && PADDING.test(buf[j])) j++;
    if (buf[j] === '"') {
      let value = '';
      let segment = j + 1;
      let k = segment;
      let closed: number;
      for (;;) {
        const q = buf.indexOf('"', k);
        if (q === -1)
          return ended ? { kind: 'error', problem: UNREADABLE.unclosedQuote, at: buf.length } : { kind: 'more' };
        if (q + 1 >= buf.length && !ended) return { kind: 'more' };
        if (buf[q + 1] === '"') {
          value += buf.slice(segment, q + 1);
          k = q + 2;
          segment = k;
          continue;
        }
        value += buf.slice(segment, q);
        closed = q;
        break;
      }
      breaks += countBreaks(buf, j + 1, closed);
      let m = closed + 1;
      while (m < buf.length && PADDING.test(buf[m])) m++;
      if (m >= buf.length) {
        if (!ended) return { kind: 'more' };
        fields.push(value);
        return { kind: 'record', fields, end: m, breaks };
      }
      const c = buf[m];
      fields.push(value);
      if (c === ',') {
        i = m + 1;
        continue;
      }
      if (c === '\r' || c === '\n') {
        const end = afterBreak(buf, m, ended);
        return end === -1 ? { kind: 'more' } : { kind: 'record', fields, end, breaks };
      }
      return { kind: 'error', problem: UNREADABLE.textAfterQuote, at: m };
    }
    UNQUOTED_END.lastIndex = i;
    const hit = UNQUOTED_END.exec(buf);
    if (!hit) {
      if (!ended) return { kind: 'more' };
      fields.push(buf.slice(i));
      return { kind: 'record', fields, end: buf.length, breaks };
    }
    const c = hit[0];
    if (c === '"') return { kind: 'error', problem: UNREADABLE.quoteInField, at: hit.index };
    fields.push(buf.slice(i, hit.index));
    if (c === ',') {
      i = hit.index + 1;
      continue;
    }
    const end = afterBreak(buf, hit.index, ended);
    return end === -1 ? { kind: 'more' } : { kind: 'record', fields, end, breaks };
  }
}

/** `text` without C0 control characters and DEL (NUL cannot be stored; the others only confuse a reader). */
export function withoutControlCharacters(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (code >= 0x20 && code !== 0x7f) out += ch;
  }
  return out;
}

/** The first field of a line as far as it reads, without quotes or control characters, for display. */
function firstField(text: string): string {
  const comma = text.indexOf(',');
  const field = (comma === -1 ? text : text.slice(0, comma)).slice(0, 256);
  return withoutControlCharacters(field).replace(/"/g, '').trim().slice(0, 128);
}
