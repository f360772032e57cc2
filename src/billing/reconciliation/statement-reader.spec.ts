import fc from 'fast-check';
import { StatementReader, StatementRecord, UNREADABLE } from './statement-reader';
import { parseStatementLine } from './statement-rules';

const HEADER = 'trace_id,called_at,result,charged,amount';
const line = (n: number) => `tr-${n},2026-11-25T10:00:${String(n % 60).padStart(2, '0')}Z,0,true,50`;

/** Reads `text` pushed in pieces of `size` characters (all of it at once by default). */
function read(text: string, size = text.length || 1, maxRecordChars = 1000): StatementRecord[] {
  const out: StatementRecord[] = [];
  const reader = new StatementReader({
    maxRecordChars,
    acceptSpanning: (fields) => parseStatementLine(fields, 0).ok,
  });
  for (let i = 0; i < text.length; i += size) reader.push(text.slice(i, i + size), (r) => out.push(r));
  reader.end((r) => out.push(r));
  return out;
}

/** Line numbers of good records, and of unreadable ones with their problem. */
function summary(records: StatementRecord[]) {
  return records.map((r) => (r.kind === 'record' ? [r.lineNo, r.fields[0]] : [r.lineNo, `!${r.problem}`]));
}

describe('StatementReader', () => {
  it('reads records with physical line numbers, LF, CRLF and CR mixed, last line without an ending', () => {
    const text = `${HEADER}\r\n${line(2)}\n${line(3)}\r${line(4)}\r\n\r\n${line(6)}`;
    expect(summary(read(text))).toEqual([
      [1, 'trace_id'],
      [2, 'tr-2'],
      [3, 'tr-3'],
      [4, 'tr-4'],
      [6, 'tr-6'],
    ]);
    expect(read(text)[4]).toEqual({ kind: 'record', lineNo: 6, fields: line(6).split(',') });
  });

  it('drops a leading BOM', () => {
    expect(read(`\uFEFF${HEADER}\n`)).toEqual([{ kind: 'record', lineNo: 1, fields: HEADER.split(',') }]);
  });

  it('reads quoted fields, "" as a quote, and a quoted field spanning lines when the record is a statement line', () => {
    const text = `${HEADER}\n"tr-2","2026-11-25T10:00:00Z",0,"true\n",50\n"a""b",x\n${line(5)}\n`;
    expect(read(text)).toEqual([
      { kind: 'record', lineNo: 1, fields: HEADER.split(',') },
      { kind: 'record', lineNo: 2, fields: ['tr-2', '2026-11-25T10:00:00Z', '0', 'true\n', '50'] },
      { kind: 'record', lineNo: 4, fields: ['a"b', 'x'] },
      { kind: 'record', lineNo: 5, fields: line(5).split(',') },
    ]);
  });

  it('reports an unbalanced quote in the middle as one unreadable line and reads every line after it', () => {
    const text = [
      HEADER,
      line(2),
      'tr-3,"2026-11-25T10:00:00Z,0,true,50',
      line(4),
      line(5),
      'tr-6,x,"0",true,50',
      line(7),
    ].join('\n');
    expect(summary(read(text))).toEqual([
      [1, 'trace_id'],
      [2, 'tr-2'],
      [3, `!${UNREADABLE.unclosedQuote}`],
      [4, 'tr-4'],
      [5, 'tr-5'],
      [6, 'tr-6'],
      [7, 'tr-7'],
    ]);
  });

  it('reports a quote that never closes, at the end of the statement', () => {
    expect(summary(read(`${HEADER}\n${line(2)}\n"unclosed,quote`))).toEqual([
      [1, 'trace_id'],
      [2, 'tr-2'],
      [3, `!${UNREADABLE.unclosedQuote}`],
    ]);
  });

  it('reports quotes inside unquoted fields and text after a closing quote', () => {
    expect(summary(read(`tr"1,a\n"tr-2"x,b\n${line(3)}`))).toEqual([
      [1, `!${UNREADABLE.quoteInField}`],
      [2, `!${UNREADABLE.textAfterQuote}`],
      [3, 'tr-3'],
    ]);
  });

  it('reports a NUL character, with the line’s first field readable for finance', () => {
    const records = read(`${HEADER}\ntr-\u00002,2026-11-25T10:00:00Z,0,true,50\n"tr-3\u0000",x\n${line(4)}`);
    expect(records.slice(1)).toEqual([
      { kind: 'unreadable', lineNo: 2, problem: UNREADABLE.nul, firstField: 'tr-2' },
      { kind: 'unreadable', lineNo: 3, problem: UNREADABLE.nul, firstField: 'tr-3' },
      { kind: 'record', lineNo: 4, fields: line(4).split(',') },
    ]);
  });

  it('skips an over-long line without holding it, and goes on', () => {
    const long = `tr-2,${'x'.repeat(5000)}`;
    expect(summary(read(`${HEADER}\n${long}\n${line(3)}\n"${'y'.repeat(3000)}"\n${line(5)}`, 64, 1000))).toEqual([
      [1, 'trace_id'],
      [2, `!${UNREADABLE.tooLong(1000)}`],
      [3, 'tr-3'],
      [4, `!${UNREADABLE.tooLong(1000)}`],
      [5, 'tr-5'],
    ]);
  });

  it('gives up on a quote still open after maxRecordChars, reporting its line and reading the lines it held', () => {
    const text = [HEADER, 'tr-2,"open', ...Array.from({ length: 100 }, (_, i) => line(3 + i))].join('\n');
    const records = read(text, 64, 1000);
    expect(summary(records).slice(0, 3)).toEqual([
      [1, 'trace_id'],
      [2, `!${UNREADABLE.unclosedQuote}`],
      [3, 'tr-3'],
    ]);
    expect(records).toHaveLength(102);
    expect(records[101]).toEqual({ kind: 'record', lineNo: 102, fields: line(102).split(',') });
  });

  it('gives the same records however the text is cut into chunks (CRLF split included)', () => {
    const text =
      `\uFEFF${HEADER}\r\n${line(2)}\r\n"tr-3",2026-11-25T10:00:00Z,"0",true,"5""0"\r\n` +
      `tr-4,"2026-11-25T10:00:00Z,0,true,50\r\n${line(5)}\n"tr-6","2026-11-25T10:00:00Z",0,"true\r\n",50\r\n\u0000\r${line(9)}`;
    const whole = read(text);
    expect(summary(whole)).toEqual([
      [1, 'trace_id'],
      [2, 'tr-2'],
      [3, 'tr-3'],
      [4, `!${UNREADABLE.unclosedQuote}`],
      [5, 'tr-5'],
      [6, 'tr-6'],
      [8, `!${UNREADABLE.nul}`],
      [9, 'tr-9'],
    ]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), (size) => {
        expect(read(text, size)).toEqual(whole);
      }),
    );
  });

  it('never throws and never loses a line number order, whatever the bytes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', ',', '"', '\n', '\r', '\u0000', ' ', '1'), { maxLength: 200 }),
        fc.integer({ min: 1, max: 17 }),
        (chars, size) => {
          const text = chars.join('');
          const records = read(text, size, 50);
          const lines = records.map((r) => r.lineNo);
          expect([...lines].sort((a, b) => a - b)).toEqual(lines);
          expect(new Set(lines).size).toBe(lines.length);
          expect(read(text, 1000, 50)).toEqual(records);
        },
      ),
    );
  });
});
