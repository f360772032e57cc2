import { drawFault, parseFaultRates, parseFaultSpec, seededRandom } from './faults';

describe('parseFaultSpec', () => {
  it.each([
    ['timeout', { fault: 'timeout' }],
    ['latency=50,db_error', { latencyMs: 50, fault: 'db_error' }],
    [' LATENCY=0 , http429 ', { latencyMs: 0, fault: 'http429' }],
    ['http500,uncharged', { fault: 'http500', charged: false }],
    ['charged,garbage', { fault: 'garbage', charged: true }],
    ['', {}],
  ])('%j', (text, plan) => {
    expect(parseFaultSpec(text)).toEqual({ ok: true, value: plan });
  });

  it.each(['latency=abc', 'latency=60001', 'latency', 'timeout,reset', 'explode', 'timeout=1'])(
    'refuses %j',
    (text) => {
      expect(parseFaultSpec(text).ok).toBe(false);
    },
  );
});

describe('parseFaultRates', () => {
  it('reads rates and a fixed latency', () => {
    expect(parseFaultRates('latency=20,http500=0.05,timeout=0.01')).toEqual({
      ok: true,
      value: { latency: 20, http500: 0.05, timeout: 0.01 },
    });
  });

  it.each(['http500=2', 'http500', 'http500=0.6,reset=0.6', 'nope=0.1'])('refuses %j', (text) => {
    expect(parseFaultRates(text).ok).toBe(false);
  });
});

describe('drawFault', () => {
  it('walks the cumulative rates', () => {
    const rates = { timeout: 0.1, http500: 0.2 };
    expect(drawFault(rates, 0.05)).toBe('timeout');
    expect(drawFault(rates, 0.25)).toBe('http500');
    expect(drawFault(rates, 0.35)).toBeUndefined();
    expect(drawFault({}, 0)).toBeUndefined();
  });

  it('is repeatable with a seed', () => {
    const a = seededRandom(1);
    const b = seededRandom(1);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});
