import { summaryEvent } from './auth-failures.service';

const base = {
  action: 'auth.failed',
  reason: 'unknown_key',
  overflow: false,
  count: 41,
  windowStart: Date.UTC(2026, 0, 1, 10, 0, 0),
  windowEnd: Date.UTC(2026, 0, 1, 10, 1, 0),
  endpoints: ['GET /v1/me'],
  keyPrefixes: ['idg_test_AAAAAAAA', 'idg_test_BBBBBBBB'],
};
const first = {
  context: { actor: { type: 'anonymous' as const, id: null, role: null }, requestId: 'r-1', ip: '203.0.113.5' },
  outcome: 'failure' as const,
  source: '203.0.113.5',
  subject: null,
  keyPrefix: 'idg_test_AAAAAAAA',
};

describe('summaryEvent', () => {
  it('stands for a window of one source: who and where, the count, no request id', () => {
    const { context, event } = summaryEvent({ ...base, first });
    expect(context).toEqual({ actor: first.context.actor, requestId: null, ip: '203.0.113.5' });
    expect(event).toEqual({
      action: 'auth.failed',
      outcome: 'failure',
      target: { type: 'endpoint', id: 'GET /v1/me' },
      details: {
        reason: 'unknown_key',
        aggregated: true,
        count: 41,
        window_start: '2026-01-01T10:00:00.000Z',
        window_end: '2026-01-01T10:01:00.000Z',
        endpoints: ['GET /v1/me'],
        key_prefixes: ['idg_test_AAAAAAAA', 'idg_test_BBBBBBBB'],
      },
    });
  });

  it('names the /64 an IPv6 source was counted by, and the key of a per-key window', () => {
    const v6 = {
      ...first,
      context: { ...first.context, ip: '2001:db8::9' },
      source: '2001:db8:0:0::/64',
      subject: 'key-1',
      keyPrefix: 'idg_test_KKKKKKKK',
    };
    const { event } = summaryEvent({ ...base, endpoints: ['GET /a', 'GET /b'], keyPrefixes: [], first: v6 });
    expect(event.target).toBeNull();
    expect(event.details).toMatchObject({ source: '2001:db8:0:0::/64', key_prefix: 'idg_test_KKKKKKKK' });
    expect(event.details).not.toHaveProperty('key_prefixes');
  });

  it('an overflow window names no source at all', () => {
    const { context, event } = summaryEvent({ ...base, overflow: true, first });
    expect(context).toEqual({ actor: { type: 'anonymous', id: null, role: null }, requestId: null, ip: null });
    expect(event.details).toMatchObject({ sources: 'many', count: 41 });
  });
});
