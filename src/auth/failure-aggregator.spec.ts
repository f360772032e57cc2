import { FailureAggregator, Occurrence } from './failure-aggregator';

const WINDOW = 60_000;

function occurrence(overrides: Partial<Occurrence> = {}): Occurrence {
  return {
    action: 'auth.failed',
    reason: 'missing_key',
    source: '203.0.113.7',
    subject: null,
    endpoint: 'GET /v1/clients',
    keyPrefix: null,
    ...overrides,
  };
}

function setup(options: { maxIndividualPerWindow?: number; maxBuckets?: number } = {}) {
  let now = 1_000_000;
  const aggregator = new FailureAggregator<string>(
    {
      windowMs: WINDOW,
      maxIndividualPerWindow: options.maxIndividualPerWindow ?? 100,
      maxBuckets: options.maxBuckets ?? 100,
    },
    () => now,
  );
  return { aggregator, advance: (ms: number) => (now += ms), now: () => now };
}

describe('FailureAggregator', () => {
  it('records the first refusal of a window and counts the rest into one summary', () => {
    const { aggregator, advance } = setup();
    expect(aggregator.note(occurrence(), 'first').recordNow).toBe(true);
    for (let i = 0; i < 3999; i++) expect(aggregator.note(occurrence(), `n${i}`).recordNow).toBe(false);
    expect(aggregator.closeExpired()).toEqual([]); // window still open
    advance(WINDOW);
    const [summary, ...rest] = aggregator.closeExpired();
    expect(rest).toEqual([]);
    expect(summary).toMatchObject({ first: 'first', action: 'auth.failed', reason: 'missing_key', count: 3999 });
    expect(summary.windowEnd - summary.windowStart).toBe(WINDOW);
    expect(summary.endpoints).toEqual(['GET /v1/clients']);
    expect(aggregator.size).toBe(0);
  });

  it('closes a window at the next refusal after it, and starts a new one recorded on its own', () => {
    const { aggregator, advance } = setup();
    aggregator.note(occurrence(), 'a');
    aggregator.note(occurrence(), 'b');
    advance(WINDOW + 1);
    const next = aggregator.note(occurrence(), 'c');
    expect(next.recordNow).toBe(true);
    expect(next.closed).toEqual([expect.objectContaining({ first: 'a', count: 1 })]);
  });

  it('writes no summary for a window with a single refusal', () => {
    const { aggregator, advance } = setup();
    aggregator.note(occurrence(), 'only');
    advance(WINDOW);
    expect(aggregator.closeExpired()).toEqual([]);
    expect(aggregator.size).toBe(0);
  });

  it('keeps sources, reasons, actions and subjects apart', () => {
    const { aggregator } = setup();
    const variants = [
      occurrence(),
      occurrence({ source: '203.0.113.8' }),
      occurrence({ reason: 'unknown_key' }),
      occurrence({ action: 'auth.denied', reason: 'role_not_allowed', subject: 'key-1' }),
      occurrence({ action: 'auth.denied', reason: 'role_not_allowed', subject: 'key-2' }),
    ];
    for (const v of variants) expect(aggregator.note(v, 'x').recordNow).toBe(true);
    for (const v of variants) expect(aggregator.note(v, 'x').recordNow).toBe(false);
    // Endpoints and unknown key prefixes do not split a bucket (a caller could vary them freely).
    expect(
      aggregator.note(occurrence({ endpoint: 'POST /v1/verifications', keyPrefix: 'idg_test_AAAA' }), 'x').recordNow,
    ).toBe(false);
    const summaries = aggregator.closeAll();
    expect(summaries).toHaveLength(5);
    expect(summaries[0]).toMatchObject({
      count: 2,
      endpoints: ['GET /v1/clients', 'POST /v1/verifications'],
      keyPrefixes: ['idg_test_AAAA'],
    });
  });

  it('records at most maxIndividualPerWindow refusals on their own, whatever their source', () => {
    const { aggregator, advance } = setup({ maxIndividualPerWindow: 3 });
    const recorded = Array.from({ length: 10 }, (_, i) =>
      aggregator.note(occurrence({ source: `198.51.100.${i}` }), `s${i}`),
    ).filter((r) => r.recordNow).length;
    expect(recorded).toBe(3);
    const summaries = aggregator.closeAll();
    // The seven unrecorded sources each get a summary counting their one refusal.
    expect(summaries).toHaveLength(7);
    expect(summaries.every((s) => s.count === 1)).toBe(true);
    advance(WINDOW);
    expect(aggregator.note(occurrence({ source: 'new' }), 'n').recordNow).toBe(true);
  });

  it('holds at most maxBuckets sources; the rest share one overflow summary without a source', () => {
    const { aggregator } = setup({ maxBuckets: 2 });
    aggregator.note(occurrence({ source: 'a' }), 'a');
    aggregator.note(occurrence({ source: 'b' }), 'b');
    const overflowed = Array.from({ length: 50 }, (_, i) => aggregator.note(occurrence({ source: `c${i}` }), `c${i}`));
    expect(overflowed.some((r) => r.recordNow)).toBe(false);
    expect(aggregator.size).toBe(3);
    const overflow = aggregator.closeAll().find((s) => s.overflow);
    expect(overflow).toMatchObject({ overflow: true, count: 50 });
  });

  it('bounds the samples it keeps', () => {
    const { aggregator } = setup();
    aggregator.note(occurrence(), 'x');
    for (let i = 0; i < 100; i++)
      aggregator.note(occurrence({ endpoint: `GET /e${i}`, keyPrefix: `idg_test_${i}` }), 'x');
    const [summary] = aggregator.closeAll();
    expect(summary.count).toBe(100);
    expect(summary.endpoints).toHaveLength(10);
    expect(summary.keyPrefixes).toHaveLength(10);
  });
});
