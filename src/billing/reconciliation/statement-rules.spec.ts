import fc from 'fast-check';
import { checkDateTime } from '../../common/date-time';
import {
  classifyLine,
  commonUtcInstant,
  InternalCharge,
  isStatementHeader,
  parseStatementLine,
  settlesAsNotBilled,
  statementPeriod,
} from './statement-rules';

describe('statement header', () => {
  it('is exactly trace_id,called_at,result,charged,amount (BOM and spaces aside)', () => {
    expect(isStatementHeader(['trace_id', 'called_at', 'result', 'charged', 'amount'])).toBe(true);
    expect(isStatementHeader(['\uFEFFtrace_id', ' called_at', 'result', 'charged', 'amount '])).toBe(true);
    expect(isStatementHeader(['trace_id', 'called_at', 'result', 'charged'])).toBe(false);
    expect(isStatementHeader(['called_at', 'trace_id', 'result', 'charged', 'amount'])).toBe(false);
    expect(isStatementHeader(['id', 'name', 'id_card', 'x', 'y'])).toBe(false);
  });
});

describe('statement lines', () => {
  const good = ['6f1c2d9e-0b7a-4c55-9d0e-1a2b3c4d5e6f', '2026-11-25T10:00:00.123Z', '0', 'true', '50'];

  it('reads a good line, with its line number', () => {
    expect(parseStatementLine(good, 7)).toEqual({
      ok: true,
      line: {
        lineNo: 7,
        traceId: good[0],
        calledAt: new Date('2026-11-25T10:00:00.123Z'),
        result: '0',
        charged: true,
        amount: 50,
      },
    });
    expect(parseStatementLine([good[0], '2026-11-25T18:00:00+08:00', '-1', 'FALSE', '0'], 2)).toMatchObject({
      ok: true,
      line: { calledAt: new Date('2026-11-25T10:00:00Z'), charged: false, amount: 0 },
    });
  });

  it.each([
    [[...good, 'extra'], 'expected 5 fields, found 6'],
    [good.slice(0, 4), 'expected 5 fields, found 4'],
    [['', ...good.slice(1)], 'trace_id'],
    [['has space', ...good.slice(1)], 'trace_id'],
    [[good[0], 'yesterday', ...good.slice(2)], 'called_at'],
    [[good[0], '2026-11-25T10:00:00', ...good.slice(2)], 'called_at'],
    [[good[0], '2026-13-45T10:00:00Z', ...good.slice(2)], 'called_at'],
    [[good[0], good[1], 'zero', 'true', '50'], 'result'],
    [[good[0], good[1], '0', 'yes', '50'], 'charged'],
    [[good[0], good[1], '0', 'true', '0.5'], 'amount'],
    [[good[0], good[1], '0', 'true', '-1'], 'amount'],
    [[good[0], good[1], '0', 'false', '50'], 'amount: must be 0 when charged is false'],
  ])('refuses %j (%s), naming the field', (fields, problem) => {
    const parsed = parseStatementLine(fields, 3);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.lineNo).toBe(3);
      expect(parsed.problem).toContain(problem);
    }
  });
});

describe('statement period', () => {
  const min = new Date('2026-11-01T00:00:01Z');
  const max = new Date('2026-11-30T23:59:59Z');

  it('explicit from/to win; otherwise the statement’s [min, max] called_at; otherwise none', () => {
    const from = new Date('2026-11-01T00:00:00Z');
    const to = new Date('2026-12-01T00:00:00Z');
    expect(statementPeriod({ from, to }, { min, max })).toEqual({ period: { from, to }, source: 'explicit' });
    expect(statementPeriod({}, { min, max })).toEqual({
      period: { from: min, to: new Date(max.getTime() + 1) },
      source: 'statement',
    });
    expect(statementPeriod({}, { min: null, max: null })).toEqual({ period: null, source: 'none' });
  });

  it('settles an absent unknown call as not charged only when the whole call lies inside the period', () => {
    const period = { from: min, to: new Date(max.getTime() + 1) };
    const inside = { createdAt: new Date('2026-11-10T00:00:00Z'), completedAt: new Date('2026-11-10T00:00:02Z') };
    expect(settlesAsNotBilled(inside, period)).toBe(true);
    expect(
      settlesAsNotBilled({ createdAt: new Date('2026-11-01T00:00:00Z'), completedAt: inside.completedAt }, period),
    ).toBe(false);
    expect(settlesAsNotBilled({ createdAt: max, completedAt: new Date(max.getTime() + 1) }, period)).toBe(false);
    expect(settlesAsNotBilled({ createdAt: max, completedAt: null }, period)).toBe(true);
  });
});

describe('matching rule (classifyLine)', () => {
  const charged: InternalCharge = {
    status: 'completed',
    chargeStatus: 'charged',
    result: '0',
    unitPrice: 50,
    amount: 50,
  };
  const notCharged: InternalCharge = {
    status: 'completed',
    chargeStatus: 'not_charged',
    result: '-5',
    unitPrice: 50,
    amount: 0,
  };
  const unknown: InternalCharge = {
    status: 'unknown',
    chargeStatus: 'unknown',
    result: null,
    unitPrice: 50,
    amount: null,
  };
  const billed = { charged: true, result: '0', amount: 50 };

  it('matches agreeing lines, exactly', () => {
    expect(classifyLine(billed, charged)).toEqual({ status: 'matched', settlement: null, internalAmount: 50 });
    expect(classifyLine({ charged: false, result: '-5', amount: 0 }, notCharged).status).toBe('matched');
  });

  it('names each kind of difference', () => {
    expect(classifyLine(billed, notCharged).status).toBe('charge_mismatch');
    expect(classifyLine({ charged: false, result: '0', amount: 0 }, charged).status).toBe('charge_mismatch');
    expect(classifyLine({ ...billed, amount: 51 }, charged).status).toBe('amount_mismatch');
    expect(classifyLine({ ...billed, result: '-1' }, charged).status).toBe('result_mismatch');
    // A charge difference outranks an amount difference, which outranks a result difference.
    expect(classifyLine({ charged: true, result: '-1', amount: 99 }, charged).status).toBe('amount_mismatch');
  });

  it('lets the bill settle an unknown call of ours, at our price in force', () => {
    expect(classifyLine(billed, unknown)).toEqual({ status: 'matched', settlement: 'charged', internalAmount: 50 });
    expect(classifyLine({ charged: false, result: '-1', amount: 0 }, unknown)).toEqual({
      status: 'matched',
      settlement: 'not_charged',
      internalAmount: 0,
    });
    expect(classifyLine({ ...billed, amount: 60 }, unknown)).toEqual({
      status: 'amount_mismatch',
      settlement: 'charged',
      internalAmount: 50,
    });
  });

  it('leaves a call still in flight alone', () => {
    expect(classifyLine(billed, { ...unknown, status: 'pending' })).toEqual({
      status: 'matched',
      settlement: null,
      internalAmount: null,
    });
  });
});

describe('called_at out of range or not a real date', () => {
  it.each([
    '0000-01-01T00:00:00Z',
    '0001-01-01T00:30:00+01:00',
    '9999-12-31T23:00:00-14:00',
    '2026-02-30T10:00:00Z',
    '2026-11-31T10:00:00Z',
    '2026-11-30T24:00:00Z',
  ])('%s is a malformed line, not a failed upload', (calledAt) => {
    const parsed = parseStatementLine(['t-1', calledAt, '0', 'true', '50'], 2);
    expect(parsed.ok).toBe(false);
  });
});

describe('called_at in the common form (read without a regular expression)', () => {
  const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$/;
  /** What the general rule makes of it: the instant, or null when the line would be refused. */
  const general = (text: string): number | null => {
    if (!ISO_INSTANT.test(text)) return null;
    const checked = checkDateTime(text);
    return checked.ok ? checked.at.getTime() : null;
  };
  const pad = (v: number, width: number) => String(v).padStart(width, '0');

  it('gives exactly the general rule’s instant, or leaves the text to it', () => {
    const digitsText = (max: number, width: number) => fc.integer({ min: 0, max }).map((v) => pad(v, width));
    const stamp = fc
      .tuple(
        digitsText(9999, 4),
        digitsText(13, 2),
        digitsText(32, 2),
        digitsText(25, 2),
        digitsText(61, 2),
        digitsText(61, 2),
        fc.option(fc.stringMatching(/^[0-9]{0,7}$/)),
        fc.constantFrom('Z', 'Z', 'Z', '+08:00', 'z', ''),
      )
      .map(
        ([y, mo, d, h, mi, s, frac, zone]) =>
          `${y}-${mo}-${d}T${h}:${mi}:${s}${frac === null ? '' : `.${frac}`}${zone}`,
      );
    fc.assert(
      fc.property(stamp, (text) => {
        const fast = commonUtcInstant(text);
        if (fast !== null) expect(fast).toBe(general(text));
      }),
      { numRuns: 20_000 },
    );
  });

  it('takes the usual forms and leaves the rest to the general rule', () => {
    expect(commonUtcInstant('2026-11-25T10:00:00.123Z')).toBe(Date.parse('2026-11-25T10:00:00.123Z'));
    expect(commonUtcInstant('2026-11-25T10:00:00Z')).toBe(Date.parse('2026-11-25T10:00:00Z'));
    expect(commonUtcInstant('2024-02-29T23:59:59.999999Z')).toBe(Date.parse('2024-02-29T23:59:59.999Z'));
    for (const other of [
      '2026-11-25T18:00:00+08:00',
      '2023-02-29T00:00:00Z',
      '2026-11-25T24:00:00Z',
      '0099-01-01T00:00:00Z',
      '2026-11-25T10:00:00.Z',
      '2026-11-25T10:00:00.1234567Z',
      '2026-11-25 10:00:00Z',
    ]) {
      expect(commonUtcInstant(other)).toBeNull();
    }
  });
});
