import fc from 'fast-check';
import { checkDateTime, MAX_INSTANT, MIN_INSTANT } from './date-time';

describe('checkDateTime', () => {
  const at = (text: string) => {
    const check = checkDateTime(text);
    return check.ok ? check.at.toISOString() : check.problem;
  };

  it('reads date-times with a zone, and dates as UTC midnight', () => {
    expect(at('2026-01-01T08:00:00+08:00')).toBe('2026-01-01T00:00:00.000Z');
    expect(at('2026-01-01T08:00+0800')).toBe('2026-01-01T00:00:00.000Z');
    expect(at('2026-01-01T00:00:00.123456789Z')).toBe('2026-01-01T00:00:00.123Z');
    expect(at('2026-01-01T00:00:00.5Z')).toBe('2026-01-01T00:00:00.500Z');
    expect(at('2026-01-01')).toBe('2026-01-01T00:00:00.000Z');
    expect(at('2024-02-29')).toBe('2024-02-29T00:00:00.000Z');
    expect(at('0001-01-02')).toBe('0001-01-02T00:00:00.000Z');
    expect(at('9999-12-31T23:59:59.999Z')).toBe('9999-12-31T23:59:59.999Z');
  });

  it('refuses what PostgreSQL cannot store, naming the range', () => {
    for (const text of [
      '0000-01-01',
      '0000-01-01T00:00:00Z',
      '0001-01-01',
      '0001-01-02T00:00:00+00:01',
      '10000-01-01',
      '+010000-01-01T00:00:00.000Z',
      '275760-09-13T00:00:00Z',
      '+275760-09-13T00:00:00.000Z',
      '-000001-01-01T00:00:00Z',
      '9999-12-31T23:59:59-00:01',
    ]) {
      expect({ text, problem: at(text) }).toEqual({ text, problem: 'must be between 0001-01-02 and 9999-12-31 (UTC)' });
    }
  });

  it('refuses dates and times that do not exist', () => {
    expect(at('2024-02-30')).toBe('is not a real calendar date');
    expect(at('2023-02-29')).toBe('is not a real calendar date');
    expect(at('2024-13-01')).toBe('is not a real calendar date');
    expect(at('2024-00-10')).toBe('is not a real calendar date');
    expect(at('2024-01-01T24:00:00Z')).toBe('is not a real date and time');
    expect(at('2024-01-01T23:59:60Z')).toBe('is not a real date and time');
    expect(at('2024-01-01T00:00:00+24:00')).toBe('is not a real date and time');
  });

  it('refuses other formats, zone-less date-times and other types, saying which', () => {
    for (const text of ['', 'Invalid Date', '1700000000', '1700000000000', 'yesterday', '2024', '2024-1-1', 'NaN']) {
      expect(at(text)).toMatch(/^must be an ISO 8601 date-time/);
    }
    expect(at('2024-01-01T00:00:00')).toBe('must state its time zone (Z or ±HH:MM)');
    for (const value of [null, 1700000000000, true, ['2024-01-01'], { at: '2024-01-01' }, new Date()]) {
      expect(checkDateTime(value)).toEqual({ ok: false, problem: expect.stringMatching(/^must be a string/) });
    }
  });

  it('accepts exactly the instants JS reads the same way, within the range', () => {
    // Services turn accepted strings into Dates with `new Date(text)`: they must agree.
    const part = (max: number, width = 2) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(width, '0'));
    const text = fc
      .tuple(
        part(10_000, 4),
        part(14),
        part(32),
        fc.option(fc.tuple(part(25), part(60), part(60), fc.constantFrom('Z', '+08:00', '-05:30', '+1400', '-00:00'))),
      )
      .map(([y, m, d, t]) => `${y}-${m}-${d}${t ? `T${t[0]}:${t[1]}:${t[2]}${t[3]}` : ''}`);
    fc.assert(
      fc.property(text, (s) => {
        const check = checkDateTime(s);
        if (!check.ok) return;
        expect(check.at.getTime()).toBe(new Date(s).getTime());
        expect(check.at.getTime()).toBeGreaterThanOrEqual(MIN_INSTANT);
        expect(check.at.getTime()).toBeLessThanOrEqual(MAX_INSTANT);
      }),
      { seed: 12, numRuns: 2000 },
    );
  });
});
