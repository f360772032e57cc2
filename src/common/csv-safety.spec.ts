import { parse } from 'csv-parse/sync';
import { csvRows, csvSafeCell } from './csv-safety';

describe('CSV formula injection (csvSafeCell)', () => {
  it.each([
    ['=HYPERLINK("https://evil.example","x")', `'=HYPERLINK("https://evil.example","x")`],
    ['+1+1', `'+1+1`],
    ['-A1', `'-A1`],
    ['-2+3', `'-2+3`],
    ['@SUM(1+1)', `'@SUM(1+1)`],
    ['\t=1', `'\t=1`],
    ['\r=1', `'\r=1`],
    ['=', `'=`],
    ['-', `'-`],
    ['＝1+1', `'＝1+1`],
    ['＠SUM(A1)', `'＠SUM(A1)`],
    ['-Infinity', `'-Infinity`],
    ['-1e3x', `'-1e3x`],
  ])('prefixes %j with a single quote', (value, safe) => {
    expect(csvSafeCell(value)).toBe(safe);
  });

  it.each(['-1', '-7', '+5', '-0.5', '-.5', '-1e3', '+2E-4', '0', '12'])(
    'leaves %j alone: wholly a number',
    (value) => {
      expect(csvSafeCell(value)).toBe(value);
    },
  );

  it.each(['matched', '2026-11-25T10:00:00.000Z', 'a=b', ' =1', "'=1", '', '6f1c2d9e-0b7a', '{"a":"=1"}'])(
    'leaves %j alone: it does not start a formula',
    (value) => {
      expect(csvSafeCell(value)).toBe(value);
    },
  );

  it('leaves non-text cells alone', () => {
    expect(csvSafeCell(-1)).toBe(-1);
    expect(csvSafeCell(50)).toBe(50);
    expect(csvSafeCell(null)).toBeNull();
    expect(csvSafeCell(undefined)).toBeUndefined();
    expect(csvSafeCell(true)).toBe(true);
    expect(csvSafeCell(10n)).toBe(10n);
  });

  it('writes rows whose cells read back neutralised, quoting as RFC 4180 needs', () => {
    const text = csvRows([
      ['trace_id', 'result', 'note'],
      ["=cmd|' /C calc'!A0", '-1', 'a,"b"\nc'],
      ['@x', -1, null],
    ]);
    expect(parse(text)).toEqual([
      ['trace_id', 'result', 'note'],
      ["'=cmd|' /C calc'!A0", '-1', 'a,"b"\nc'],
      ["'@x", '-1', ''],
    ]);
  });
});
