import { acceptCallerRequestId, requestIdsOf, visibleRequestId } from './request-id';

describe('caller request ids', () => {
  it('keeps short safe tokens', () => {
    for (const id of [
      'trace-123_abc',
      'a',
      'x'.repeat(128),
      '0af7651916cd43dd8448eb211c80319c',
      'req:1.2-3',
      '01HZX3K9V7Q',
    ]) {
      expect(acceptCallerRequestId(id)).toBe(id);
    }
  });

  it('drops anything else: unsafe characters, too long, empty, not a string', () => {
    for (const id of ['bad id', 'a\nb', 'x'.repeat(129), '', 'a,b', '<script>', 'ä', 'a;b', undefined, ['a', 'b']]) {
      expect(acceptCallerRequestId(id)).toBeNull();
    }
  });

  it('drops ids that carry an ID number or an API key (they would reach logs and the audit trail)', () => {
    for (const id of [
      '110101199003071234',
      '11010119900307123X',
      'req-110101199003071234',
      '110101900307123',
      `idg_live_${'A'.repeat(40)}`,
      'idg_test_short',
    ]) {
      expect(acceptCallerRequestId(id)).toBeNull();
    }
    // Digits inside a longer token are not a standalone number.
    expect(acceptCallerRequestId('abc110101199003071234def')).toBe('abc110101199003071234def');
  });

  it('gives every request its own id, and the same ids to every reader of the request', () => {
    const a = { headers: { 'x-request-id': 'same' } };
    const b = { headers: { 'x-request-id': 'same' } };
    const idsA = requestIdsOf(a);
    expect(requestIdsOf(a)).toBe(idsA);
    const idsB = requestIdsOf(b);
    expect(idsA.caller).toBe('same');
    expect(idsB.caller).toBe('same');
    expect(idsA.own).not.toBe(idsB.own);
    expect(idsA.own).toMatch(/^[0-9a-f-]{36}$/);
    expect(visibleRequestId(idsA)).toBe('same');
    const anonymous = requestIdsOf({ headers: { 'x-request-id': 'bad id' } });
    expect(anonymous.caller).toBeNull();
    expect(visibleRequestId(anonymous)).toBe(anonymous.own);
  });
});
