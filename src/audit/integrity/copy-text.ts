/*
 * PostgreSQL's COPY … TO STDOUT text format, read back: one row per line, fields separated
 * by tabs, \N for null, and backslash escapes (\\ \b \f \n \r \t \v, octal \ooo, hex \xhh)
 * for those characters inside a value. Chunks arrive cut anywhere; a newline or tab byte
 * never occurs inside a multi-byte UTF-8 character, so rows are cut on bytes and decoded whole.
 */

const NEWLINE = 0x0a;
const ESCAPE = /\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|([\s\S]))/g;
const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** One field as COPY wrote it: its value, or null. */
export function copyField(raw: string): string | null {
  if (raw === '\\N') return null;
  if (!raw.includes('\\')) return raw;
  return raw.replace(ESCAPE, (_all, octal: string | undefined, hex: string | undefined, char: string | undefined) => {
    if (octal !== undefined) return String.fromCharCode(parseInt(octal, 8) & 0xff);
    if (hex !== undefined) return String.fromCharCode(parseInt(hex, 16));
    return SIMPLE[char as string] ?? (char as string);
  });
}

/** Splits a COPY text stream into rows of fields. */
export class CopyTextRows {
  private rest: Buffer | null = null;

  /** The rows completed by `chunk`. */
  push(chunk: Buffer): (string | null)[][] {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const last = buf.lastIndexOf(NEWLINE);
    if (last < 0) {
      this.rest = buf;
      return [];
    }
    this.rest = last + 1 < buf.length ? buf.subarray(last + 1) : null;
    const lines = buf.toString('utf8', 0, last).split('\n');
    const rows: (string | null)[][] = new Array(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const fields: (string | null)[] = lines[i].split('\t');
      for (let f = 0; f < fields.length; f++) fields[f] = copyField(fields[f] as string);
      rows[i] = fields;
    }
    return rows;
  }

  /** At the end of the stream: a row cut short is an error, not a row. */
  end(): void {
    if (this.rest && this.rest.length > 0) throw new Error('COPY output ended inside a row');
  }
}
