import fc from 'fast-check';
import { copyHeader, copyTrailer, SeenTraceIds, STAGING_COLUMNS, StagingRowWriter, writeMicros } from './staging-rows';
import { parseStatementLine, unreadableLine } from './statement-rules';

const ID = '01a22f2a-4a6f-778d-bf95-549269b771fc';

/** Reads rows back the way PostgreSQL's binary COPY does (fields as raw buffers, null for -1). */
function readRows(buf: Buffer): Array<Array<Buffer | null>> {
  const rows: Array<Array<Buffer | null>> = [];
  let o = 0;
  while (o < buf.length) {
    const n = buf.readInt16BE(o);
    o += 2;
    const row: Array<Buffer | null> = [];
    for (let i = 0; i < n; i++) {
      const len = buf.readInt32BE(o);
      o += 4;
      if (len === -1) row.push(null);
      else {
        row.push(buf.subarray(o, o + len));
        o += len;
      }
    }
    rows.push(row);
  }
  return rows;
}

describe('StagingRowWriter', () => {
  it('frames the COPY with PostgreSQL’s binary signature and end marker', () => {
    expect(copyHeader().subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
    expect(copyHeader()).toHaveLength(19);
    expect(copyTrailer().readInt16BE(0)).toBe(-1);
  });

  it('writes a good line field by field: uuid, line, trace id, microseconds since 2000, result, charged, amount', () => {
    const w = new StagingRowWriter(ID, 16);
    const parsed = parseStatementLine(['t-1', '2026-10-01T00:00:00.017Z', '-1', 'TRUE', '50'], 2);
    w.add(parsed, undefined, true);
    const [row] = readRows(w.take());
    expect(row).toHaveLength(STAGING_COLUMNS.length);
    expect(row[0]!.toString('hex')).toBe(ID.replace(/-/g, ''));
    expect(row[1]!.readInt32BE(0)).toBe(2);
    expect(row[2]!.toString('utf8')).toBe('t-1');
    const micros = row[3]!.readBigInt64BE(0);
    expect(Number(micros / 1000n) + Date.UTC(2000, 0, 1)).toBe(Date.parse('2026-10-01T00:00:00.017Z'));
    expect(row[4]!.toString()).toBe('-1');
    expect(row[5]![0]).toBe(1);
    expect(row[6]!.readInt32BE(0)).toBe(50);
    expect(row[7]).toBeNull();
    expect(row[8]![0]).toBe(1);
    expect(w.size).toBe(0);
  });

  it('keeps dates before 2000 and at the edges of the range exact', () => {
    for (const at of ['0001-01-02T00:00:00Z', '1999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z']) {
      const w = new StagingRowWriter(ID);
      w.add(parseStatementLine(['a', at, '0', 'false', '0'], 3), undefined, false);
      const micros = readRows(w.take())[0][3]!.readBigInt64BE(0);
      expect(Number(micros / 1000n) + Date.UTC(2000, 0, 1)).toBe(Date.parse(at));
    }
  });

  it('a malformed line keeps its trace id as sent (control characters dropped, 128 at most) and why', () => {
    const w = new StagingRowWriter(ID);
    w.add(parseStatementLine(['  bad\u0007 id ', 'x', '0', 'true', '50'], 4), '  bad\u0007 id ', true);
    w.add(unreadableLine(5, 'a quote is not closed'), 'x'.repeat(300), false);
    w.add(unreadableLine(6, 'contains a NUL character'), '', false);
    const rows = readRows(w.take());
    expect(rows[0][2]!.toString()).toBe('bad id');
    expect(rows[0][3]).toBeNull();
    expect(rows[0][7]!.toString()).toMatch(/^trace_id:/);
    expect(rows[0][8]![0]).toBe(0);
    expect(rows[1][2]!.toString()).toBe('x'.repeat(128));
    expect(rows[1][7]!.toString()).toBe('unreadable CSV: a quote is not closed');
    expect(rows[2][2]).toBeNull();
  });

  it('grows for many rows and for long multibyte text', () => {
    const w = new StagingRowWriter(ID, 8);
    for (let i = 0; i < 1000; i++) w.add(unreadableLine(i + 2, '张'.repeat(400)), '张'.repeat(200), false);
    const rows = readRows(w.take());
    expect(rows).toHaveLength(1000);
    expect(rows[999][1]!.readInt32BE(0)).toBe(1001);
    expect(rows[999][2]!.toString()).toBe('张'.repeat(128));
  });
});

describe('SeenTraceIds', () => {
  it('never misses a repeat (a false "seen" only costs a check)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 300 }), (ids) => {
        const seen = new SeenTraceIds(12);
        const before = new Set<string>();
        for (const id of ids) {
          const answer = seen.seenThenAdd(id);
          if (before.has(id)) expect(answer).toBe(true);
          before.add(id);
        }
      }),
    );
  });

  it('says "seen" for few new ids of a million-line statement', () => {
    const seen = new SeenTraceIds();
    let wrong = 0;
    for (let i = 0; i < 1_000_000; i++) if (seen.seenThenAdd(`t-${i}`)) wrong++;
    expect(wrong).toBeLessThan(5000);
  });
});

describe('writeMicros', () => {
  it('writes ms × 1000 as PostgreSQL’s int64, exactly, across the whole range', () => {
    const min = Date.parse('0001-01-02T00:00:00Z') - Date.UTC(2000, 0, 1);
    const max = Date.parse('9999-12-31T23:59:59.999Z') - Date.UTC(2000, 0, 1);
    const b = Buffer.alloc(8);
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min, max }), fc.integer({ min: -5_000_000, max: 5_000_000 })), (ms) => {
        writeMicros(b, ms, 0);
        expect(b.readBigInt64BE(0)).toBe(BigInt(ms) * 1000n);
      }),
      { numRuns: 20_000 },
    );
    for (const ms of [0, -1, 1, min, max, 4194303, 4194304, -4194304, -4194305]) {
      writeMicros(b, ms, 0);
      expect(b.readBigInt64BE(0)).toBe(BigInt(ms) * 1000n);
    }
  });
});
