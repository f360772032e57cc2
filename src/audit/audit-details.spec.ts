import { assertNoPii, AuditDetailsError, toJsonDetails } from './audit-details';
import { buildEventRow } from './audit-event-row';
import { SYSTEM_CLI } from './audit-vocabulary';

describe('audit details guard (no PII in the audit trail)', () => {
  it('accepts masked values, HMACs, ids and ordinary facts', () => {
    expect(() =>
      assertNoPii({
        name: '张*三',
        id_card: '110101********1234',
        id_card_hmac: 'ab12'.repeat(16),
        hash: '0123456789012345678901234567890123456789012345678901234567890123',
        key_prefix: 'idg_test_AbCd1234',
        result: '0',
        verification_id: '0190f5a2-7b1c-7d3e-8f40-123456789abc',
        amounts: [50, 100],
      }),
    ).not.toThrow();
  });

  it.each([
    [{ name: '张三' }, 'details.name'],
    [{ idCard: '360426199101010071' }, 'details.idCard'],
    [{ nested: { id_card: 'not masked' } }, 'details.nested.id_card'],
    [{ address: '北京市***' }, 'details.address'],
    [{ image_base64: '...' }, 'details.image_base64'],
    [{ api_key: 'idg_test_x' }, 'details.api_key'],
    [{ note: 'customer 360426199101010071 called' }, 'details.note'],
    [{ list: ['34052419800101001x'] }, 'details.list[0]'],
    [{ legacy: '360426910101007' }, 'details.legacy'],
    [{ presented: `idg_live_${'A'.repeat(40)}` }, 'details.presented'],
  ])('refuses %j, naming %s but never the value', (details, path) => {
    let error: unknown;
    try {
      assertNoPii(details as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AuditDetailsError);
    expect((error as Error).message).toContain(path);
    for (const value of Object.values(details)) {
      if (typeof value === 'string') expect((error as Error).message).not.toContain(value);
    }
  });

  it('copies details into JSON, dropping undefined and stringifying bigints and dates', () => {
    expect(toJsonDetails({ a: undefined, b: 5n, c: new Date('2026-01-01T00:00:00Z'), d: [1, { e: null }] })).toEqual({
      b: '5',
      c: '2026-01-01T00:00:00.000Z',
      d: [1, { e: null }],
    });
    expect(() => toJsonDetails({ f: () => 1 })).toThrow(AuditDetailsError);
    expect(() => toJsonDetails({ n: Number.NaN })).toThrow(AuditDetailsError);
  });

  it('builds a row from context and event, refusing unknown actions and bad HMACs', () => {
    const row = buildEventRow(
      { actor: { type: 'api_key', id: 'k1', role: 'admin' }, requestId: 'r1', ip: '::ffff:10.0.0.7' },
      { action: 'api_key.revoked', target: { type: 'api_key', id: 'k2' } },
    );
    expect(row).toMatchObject({ actorType: 'api_key', outcome: 'success', ip: '10.0.0.7', details: {} });
    expect(() => buildEventRow(SYSTEM_CLI, { action: 'api_key.deleted' as never })).toThrow(/vocabulary/);
    expect(() => buildEventRow(SYSTEM_CLI, { action: 'pii.purged', idCardHmac: 'nope' })).toThrow(/id_card_hmac/);
  });
});
