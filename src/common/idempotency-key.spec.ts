import { headerReadings, idempotencyKeyProblem } from './idempotency-key';

describe('idempotencyKeyProblem', () => {
  it.each([
    ['0190f3c2-8d1e-7a4b-9c2d-3e4f5a6b7c8d'],
    ['order-1234'],
    ['Zq8xYvAb3dE6gHKl9mNo1pQr2sTu4vWx5yZa7bCd'], // random keys are what clients should send
    ['2024-06-01/batch-7/item-42'],
  ])('accepts %j', (key) => {
    expect(idempotencyKeyProblem(key)).toBeNull();
  });

  it.each([
    ['360426199101010071'],
    ['verify-360426-19910101-0071'],
    ['３６０４２６１９９１０１０１００７１'],
    ['3604261991\u200b01010071'],
    ['360426910101007'],
    ['360426\u00ad19910101\u00ad0071'], // soft hyphens, sent as Latin-1
    [Buffer.from('360426\u00ad19910101\u00ad0071', 'utf8').toString('latin1')], // …and as UTF-8, read by Node as Latin-1
    [Buffer.from('３６０４２６１９９１０１０１００７１', 'utf8').toString('latin1')], // full-width digits sent as UTF-8
  ])('refuses an ID number in %j', (key) => {
    expect(idempotencyKeyProblem(key)).toMatch(/must not contain an ID number/);
  });

  it('refuses an idgate API key', () => {
    expect(idempotencyKeyProblem(`idg_live_${'A'.repeat(40)}`)).toMatch(/API key/);
  });

  it('reads a header both as received and as the UTF-8 the client may have sent', () => {
    expect(headerReadings('plain')).toEqual(['plain']);
    expect(headerReadings('caf\u00e9')).toEqual(['caf\u00e9']); // not valid UTF-8: one reading
    expect(headerReadings(Buffer.from('café', 'utf8').toString('latin1'))).toEqual(['cafÃ©', 'café']);
  });
});
