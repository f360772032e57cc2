/*
 * Statement lines as rows of PostgreSQL's binary COPY format, for the staging
 * table `reconciliation_lines`: pure (bytes out, no I/O), so the loader only
 * moves buffers. Binary, not text or CSV: nothing in a line can break the COPY
 * (every value is length-prefixed; the reader has already dropped lines holding
 * a NUL, and JS strings always encode to valid UTF-8), and PostgreSQL does not
 * parse timestamps, which is most of what a text COPY of these rows costs.
 */
import type { ParsedLine } from './statement-rules';
import { withoutControlCharacters } from './statement-reader';

/** The staging table's columns, in the order every row carries them. */
export const STAGING_COLUMNS = [
  'reconciliation_id',
  'line_no',
  'trace_id',
  'called_at',
  'result',
  'charged',
  'amount',
  'problem',
  'seen_before',
] as const;

/** "PGCOPY\n\377\r\n\0", flags, header extension length. */
const COPY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
/** A field count of -1 ends the data. */
const COPY_TRAILER = Buffer.from([0xff, 0xff]);
/** PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
/** The largest row but for its strings: field count and nine length words, uuid, int, timestamp, bools, int. */
const FIXED_ROW_BYTES = 2 + 9 * 4 + 16 + 4 + 8 + 1 + 4 + 1;

export function copyHeader(): Buffer {
  return COPY_HEADER;
}

export function copyTrailer(): Buffer {
  return COPY_TRAILER;
}

/**
 * Rows of one reconciliation, appended to a growing buffer; `take()` hands over
 * what is there and starts again. Strings are written as UTF-8 (at most 3 bytes
 * per UTF-16 unit, so capacity is checked against that bound).
 */
export class StagingRowWriter {
  private buf: Buffer;
  private length = 0;
  private readonly reconciliationId: Buffer;

  constructor(reconciliationId: string, initialBytes = 1 << 20) {
    this.reconciliationId = Buffer.from(reconciliationId.replace(/-/g, ''), 'hex');
    if (this.reconciliationId.length !== 16) throw new Error('not a UUID');
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes waiting to be taken. */
  get size(): number {
    return this.length;
  }

  /**
   * One line. A good line as read; a malformed one keeps its trace id as sent
   * (truncated, control characters dropped) so finance can find it, and why.
   */
  add(parsed: ParsedLine, firstField: string | undefined, seenBefore: boolean): void {
    if (parsed.ok) {
      const l = parsed.line;
      this.row(l.lineNo, l.traceId, l.calledAt.getTime(), l.result, l.charged, l.amount, null, seenBefore);
    } else {
      const trace = withoutControlCharacters(firstField ?? '')
        .trim()
        .slice(0, 128);
      this.row(parsed.lineNo, trace || null, null, null, null, null, parsed.problem.slice(0, 300), false);
    }
  }

  /** The rows so far (a copy: the writer goes on with its own buffer). */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.length));
    this.length = 0;
    return out;
  }

  private row(
    lineNo: number,
    traceId: string | null,
    calledAtMs: number | null,
    result: string | null,
    charged: boolean | null,
    amount: number | null,
    problem: string | null,
    seenBefore: boolean,
  ): void {
    const strings = (traceId?.length ?? 0) + (result?.length ?? 0) + (problem?.length ?? 0);
    this.reserve(FIXED_ROW_BYTES + 3 * strings);
    const b = this.buf;
    let o = this.length;
    o = b.writeInt16BE(STAGING_COLUMNS.length, o);
    o = b.writeInt32BE(16, o);
    o += this.reconciliationId.copy(b, o);
    o = b.writeInt32BE(4, o);
    o = b.writeInt32BE(lineNo, o);
    o = this.text(traceId, o);
    if (calledAtMs === null) o = b.writeInt32BE(-1, o);
    else {
      o = b.writeInt32BE(8, o);
      o = writeMicros(b, calledAtMs - PG_EPOCH_MS, o);
    }
    o = this.text(result, o);
    if (charged === null) o = b.writeInt32BE(-1, o);
    else {
      o = b.writeInt32BE(1, o);
      o = b.writeUInt8(charged ? 1 : 0, o);
    }
    if (amount === null) o = b.writeInt32BE(-1, o);
    else {
      o = b.writeInt32BE(4, o);
      o = b.writeInt32BE(amount, o);
    }
    o = this.text(problem, o);
    o = b.writeInt32BE(1, o);
    o = b.writeUInt8(seenBefore ? 1 : 0, o);
    this.length = o;
  }

  private text(value: string | null, at: number): number {
    if (value === null) return this.buf.writeInt32BE(-1, at);
    const n = this.buf.write(value, at + 4, 'utf8');
    this.buf.writeInt32BE(n, at);
    return at + 4 + n;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + bytes));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }
}

/**
 * `ms` × 1000 as a signed 64-bit big-endian integer, without a BigInt per row: ms = a·2²² + b, so
 * µs = a·1000·2²² + b·1000, split into 32-bit words with the carry (|ms| < 2⁴⁸ for years 1–9999).
 */
export function writeMicros(b: Buffer, ms: number, at: number): number {
  const a = Math.floor(ms / 4194304);
  const big = a * 1000;
  const hi = Math.floor(big / 1024);
  let lo = (big - hi * 1024) * 4194304 + (ms - a * 4194304) * 1000;
  let carry = 0;
  if (lo >= 4294967296) {
    lo -= 4294967296;
    carry = 1;
  }
  b.writeInt32BE(hi + carry, at);
  return b.writeUInt32BE(lo, at + 4);
}

/**
 * Which trace ids the statement has (probably) shown before: a Bloom filter of
 * fixed size, so memory stays flat for any statement. "No" is certain, "yes"
 * may be wrong (about 6 in 10,000 lines of a million-line statement; more for
 * larger ones); SQL checks each "yes" against the earlier lines exactly, so a
 * wrong "yes" costs a little work and never a false duplicate.
 */
export class SeenTraceIds {
  private readonly bits: Int32Array;
  private readonly mask: number;

  /** `log2Bits`: 25 is 32 Mbit (4 MB). */
  constructor(log2Bits = 25) {
    this.bits = new Int32Array(1 << (log2Bits - 5));
    this.mask = (1 << log2Bits) - 1;
  }

  /** Whether `id` was (probably) added before; adds it. */
  seenThenAdd(id: string): boolean {
    // FNV-1a, and a second hash mixed from it; three probes by double hashing.
    let h1 = 0x811c9dc5;
    for (let i = 0; i < id.length; i++) h1 = Math.imul(h1 ^ id.charCodeAt(i), 0x01000193);
    const h2 = (Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b) ^ (h1 >>> 13)) | 1;
    let seen = true;
    for (let k = 0; k < 3; k++) {
      const bit = (h1 + Math.imul(k, h2)) & this.mask;
      const word = bit >>> 5;
      const flag = 1 << (bit & 31);
      if ((this.bits[word] & flag) === 0) {
        seen = false;
        this.bits[word] |= flag;
      }
    }
    return seen;
  }
}
