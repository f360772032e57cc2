import { defaultPeriod, isTimeZone, parseBound } from './usage-rules';

describe('usage rules', () => {
  it('knows IANA time zones and UTC, not made-up ones', () => {
    expect(isTimeZone('Asia/Shanghai')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone("UTC'; DROP TABLE x; --")).toBe(false);
  });

  it('reads calendar dates (midnight in the report zone) and instants with a zone', () => {
    expect(parseBound('2026-11-01')).toEqual({ kind: 'date', date: '2026-11-01' });
    expect(parseBound('2026-11-01T08:00:00+08:00')).toEqual({ kind: 'instant', at: new Date('2026-11-01T00:00:00Z') });
    expect(parseBound('2026-11-01T00:00:00.123Z')).toEqual({
      kind: 'instant',
      at: new Date('2026-11-01T00:00:00.123Z'),
    });
  });

  it('refuses impossible dates, zone-less date-times and other text', () => {
    expect(parseBound('2026-02-30')).toBeNull();
    expect(parseBound('2026-11-01T08:00:00')).toBeNull();
    expect(parseBound('yesterday')).toBeNull();
  });

  it('defaults to the current month so far', () => {
    const now = new Date('2026-11-25T10:00:00Z');
    expect(defaultPeriod(now)).toEqual({
      from: { kind: 'date', date: '2026-11-01' },
      to: { kind: 'instant', at: now },
    });
  });
});
