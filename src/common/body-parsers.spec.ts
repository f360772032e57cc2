import { JSON_LIMITS, headerWithNul, jsonLimitProblem, jsonValueBreach, scanJsonText } from './body-parsers';

describe('headerWithNul', () => {
  // Node's own parser refuses these first; this guards a server run with --insecure-http-parser.
  it('names the first header idgate reads that holds a NUL, as documented', () => {
    expect(headerWithNul({ headers: { 'idempotency-key': 'a\u0000b' } })).toBe('Idempotency-Key');
    expect(headerWithNul({ headers: { 'x-request-id': '\u0000', accept: 'x\u0000' } })).toBe('X-Request-Id');
    expect(headerWithNul({ headers: { 'x-sandbox-fault': ['ok', 'x\u0000'] as unknown as string } })).toBe(
      'X-Sandbox-Fault',
    );
  });

  it('leaves other headers and clean values alone', () => {
    expect(headerWithNul({ headers: { 'idempotency-key': 'abc', 'user-agent': 'a\u0000' } })).toBeUndefined();
    expect(headerWithNul({ headers: {} })).toBeUndefined();
  });
});

describe('JSON body limits', () => {
  const scan = (text: string) => scanJsonText(Buffer.from(text, 'utf8'));
  const both = (text: string) => {
    const found = scan(text);
    // The scan of the text and the walk of the parsed value agree on JSON the parser accepts.
    expect(jsonValueBreach(JSON.parse(text))).toEqual(found);
    return found;
  };
  const object = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])));

  it('lets ordinary bodies through', () => {
    expect(
      both('{"name":"张三","id_card":"360426199101010071","encryption":[{"encrypt_list":["name","id_card"]}]}'),
    ).toBeNull();
    expect(both('[]')).toBeNull();
    expect(both('{}')).toBeNull();
    expect(both('{"a":"[[[[{{{{:::,,,\\"\\\\"}')).toBeNull(); // structure characters inside strings do not count
    expect(both(object(JSON_LIMITS.keys))).toBeNull();
    expect(both(JSON.stringify(Array(JSON_LIMITS.arrayEntries).fill('x')))).toBeNull();
  });

  it('refuses more keys in all than the limit, however they are spread', () => {
    expect(both(object(JSON_LIMITS.keys + 1))).toEqual({ limit: 'keys', max: JSON_LIMITS.keys });
    const spread = JSON.stringify(Array.from({ length: 3 }, () => JSON.parse(object(700))));
    expect(both(spread)).toEqual({ limit: 'keys', max: JSON_LIMITS.keys });
  });

  it('refuses an array of more entries than the limit, at any depth', () => {
    const many = JSON.stringify(Array.from({ length: JSON_LIMITS.arrayEntries + 1 }, (_, i) => i));
    expect(both(many)).toEqual({ limit: 'arrayEntries', max: JSON_LIMITS.arrayEntries });
    expect(both(`{"encryption":[{"encrypt_list":${many}}]}`)).toEqual({
      limit: 'arrayEntries',
      max: JSON_LIMITS.arrayEntries,
    });
    const ofObjects = JSON.stringify(Array.from({ length: JSON_LIMITS.arrayEntries + 1 }, () => ({})));
    expect(both(ofObjects)).toEqual({ limit: 'arrayEntries', max: JSON_LIMITS.arrayEntries });
  });

  it('refuses more entries in all than the limit (many arrays, each within its own limit)', () => {
    const row = JSON.stringify(Array(1000).fill(0));
    expect(both(`[${Array(11).fill(row).join(',')}]`)).toEqual({ limit: 'entries', max: JSON_LIMITS.entries });
  });

  it('refuses nesting deeper than the limit', () => {
    expect(both('['.repeat(JSON_LIMITS.depth) + ']'.repeat(JSON_LIMITS.depth))).toBeNull();
    expect(both('['.repeat(JSON_LIMITS.depth + 1) + ']'.repeat(JSON_LIMITS.depth + 1))).toEqual({
      limit: 'depth',
      max: JSON_LIMITS.depth,
    });
    // The scan stops at the breach: the rest of the text is never looked at.
    expect(scan('{"a":'.repeat(100_000))).toEqual({ limit: 'depth', max: JSON_LIMITS.depth });
  });

  it('answers 413 naming the limit for size, 400 for nesting', () => {
    expect(jsonLimitProblem({ limit: 'keys', max: 2000 })).toMatchObject({
      status: 413,
      limit: 'json_keys',
      max: 2000,
      detail: expect.stringContaining('2000 object keys'),
    });
    expect(jsonLimitProblem({ limit: 'arrayEntries', max: 1000 })).toMatchObject({
      status: 413,
      limit: 'json_array_entries',
    });
    expect(jsonLimitProblem({ limit: 'depth', max: 32 })).toMatchObject({ status: 400, limit: 'json_depth' });
  });
});
