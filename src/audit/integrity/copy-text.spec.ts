import fc from 'fast-check';
import { copyField, CopyTextRows } from './copy-text';

/** A value as PostgreSQL's COPY TO writes it in text format (CopyAttributeOutText). */
function escaped(value: string | null): string {
  if (value === null) return '\\N';
  const map: Record<string, string> = {
    '\\': '\\\\',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
  };
  return value.replace(/[\\\b\f\n\r\t\v]/g, (c) => map[c]);
}

// Well-formed text only: the database holds no lone surrogate.
const value = fc.option(fc.string({ unit: 'grapheme', maxLength: 10 }), { nil: null, freq: 5 });
const rows = fc.array(fc.array(value, { minLength: 1, maxLength: 5 }), { maxLength: 8 });

describe('COPY text rows', () => {
  it('come back field for field, whatever the values and wherever the chunks are cut', () => {
    fc.assert(
      fc.property(rows, fc.array(fc.nat(), { maxLength: 6 }), (table, cuts) => {
        const bytes = Buffer.from(table.map((r) => `${r.map(escaped).join('\t')}\n`).join(''), 'utf8');
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const reader = new CopyTextRows();
        const read: (string | null)[][] = [];
        let start = 0;
        for (const end of [...at, bytes.length]) {
          read.push(...reader.push(bytes.subarray(start, end)));
          start = end;
        }
        reader.end();
        expect(read).toEqual(table);
      }),
      { numRuns: 1000 },
    );
  });

  it('reads octal and hex escapes, and an escaped backslash before N is not null', () => {
    expect(copyField('a\\101\\x42c')).toBe('aABc');
    expect(copyField('\\\\N')).toBe('\\N');
    expect(copyField('\\N')).toBeNull();
    expect(copyField('\\q')).toBe('q');
  });

  it('refuses a stream that ends inside a row', () => {
    const reader = new CopyTextRows();
    expect(reader.push(Buffer.from('1\tx\n2\ty'))).toEqual([['1', 'x']]);
    expect(() => reader.end()).toThrow(/inside a row/);
  });
});
