import { headerWithNul } from './body-parsers';

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
