import { isDatabaseUnavailable } from './database-errors';

describe('isDatabaseUnavailable', () => {
  it.each([
    [{ code: 'P1001' }],
    [{ code: 'P1002' }],
    [{ code: 'P1008' }],
    [{ code: 'P1017' }],
    [{ code: 'P2024' }],
    // Both forms of P2028: no connection for the transaction in time, and a transaction that expired.
    [{ code: 'P2028', message: 'Transaction API error: Unable to start a transaction in the given time.' }],
    [{ code: 'P2028', message: 'Transaction already closed: the timeout for this transaction was 5000 ms' }],
    [{ code: 'P2037' }],
    [{ code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'DatabaseNotReachable' } } } }],
    [{ code: '57P01' }],
    [{ code: '08006' }],
    [{ code: 'ECONNREFUSED' }],
    [Object.assign(new Error('Connection terminated unexpectedly'), {})],
    [{ cause: { cause: { code: '57P03' } } }],
  ])('recognises %j', (err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it.each([[{ code: 'P2002' }], [{ code: '23505' }], [new TypeError('x is undefined')], [null], ['text']])(
    'does not mistake %j for an outage',
    (err) => {
      expect(isDatabaseUnavailable(err)).toBe(false);
    },
  );
});
