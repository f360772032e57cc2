import { acceptCallerRequestId, requestIdsOf, visibleRequestId } from './request-id';

describe('caller request ids', () => {
  it('keeps short safe tokens', () => {
    for (const id of [
      'trace-123_abc',
      'a',
      'ab.'.repeat(42) + 'ab', // 128 characters
      '0af7651916cd43dd8448eb211c80319c',
      '0af76519-16cd-43dd-8448-eb211c80319c',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'req:1.2-3',
      '01HZX3K9V7Q',
      'order-1234:attempt-2',
      'batch.2024-06-01.0042',
    ]) {
      expect(acceptCallerRequestId(id)).toBe(id);
    }
  });

  it('drops anything else: unsafe characters, too long, empty, not a string', () => {
    for (const id of ['bad id', 'a\nb', 'x'.repeat(129), '', 'a,b', '<script>', 'ä', 'a;b', undefined, ['a', 'b']]) {
      expect(acceptCallerRequestId(id)).toBeNull();
    }
  });

  it.each([
    ['110101199003071234'],
    ['11010119900307123X'],
    ['req-110101199003071234'],
    ['abc110101199003071234def'],
    ['110101900307123'],
    ['360426-19910101-0071'],
    ['360426.19910101.0071'],
    ['360426_19910101_0071'],
    ['360426:19910101:0071'],
    ['36042619910101007-x'],
  ])('drops an id holding an ID number: %j', (id) => {
    expect(acceptCallerRequestId(id)).toBeNull();
  });

  it.each([
    [`idg_live_${'A'.repeat(40)}`],
    ['x'.repeat(128)], // a run of 32 or more of a key's characters, however unlikely as a key
    ['idg_test_short'],
    ['Zq8xYvAb3dE6gHKl9mNo1pQr2sTu4vWx5yZa7bCd'], // a key's 40 secret characters without the prefix
    ['Zq8xYv-Ab3dE6gH_Kl9mNo1pQr2sTu4vWx5yZa7b'],
    ['trace.Zq8xYvAb3dE6gHKl9mNo1pQr2sTu4vWx'],
  ])('drops an id holding what may be an API key: %j', (id) => {
    expect(acceptCallerRequestId(id)).toBeNull();
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
