import { createHash, createHmac } from 'node:crypto';
import { UpstreamOutcome } from '../upstream/upstream.types';
import {
  amountFor,
  chargedFlag,
  checkLocally,
  pendingDeadlineMs,
  quotaPeriods,
  legacyRequestFingerprint,
  requestFingerprint,
  settle,
} from './verification-rules';

const NOW = new Date('2026-11-25T12:00:00Z');
const base = { attempts: 1, durationMs: 5 };
const ocr = { name: '', id_card: '', sex: '', nation: '', birth: '', address: '' };

describe('local checks', () => {
  it.each([
    ['360426199101010071', '张三', 'passed'],
    ['34052419800101001x', '阿卜杜·热合曼', 'passed'],
    ['110101199003071234', '张三', '-2'],
    ['19990229', '张三', '-2'],
    ['360426199101010071', '张3', '-3'],
    ['360426199101010071', '', '-3'],
    ['bad', 'bad1', '-2'],
  ])('%s / %s → %s', (idCard, name, expected) => {
    const check = checkLocally({ idCard, name }, NOW);
    expect(check.kind === 'passed' ? 'passed' : check.result).toBe(expected);
  });

  it('normalises what passes (upper-case X, look-alike dots, legacy numbers)', () => {
    const check = checkLocally({ idCard: '34052419800101001x', name: '阿卜杜•热合曼' }, NOW);
    expect(check).toEqual({ kind: 'passed', normalized: { idCard: '34052419800101001X', name: '阿卜杜·热合曼' } });
  });
});

describe('settling an upstream outcome', () => {
  it('answered 0/-1 is completed and charged; other codes completed and not charged', () => {
    const consistent = settle({
      ...base,
      kind: 'answered',
      result: '0',
      charged: true,
      description: 'ok',
      fields: ocr,
      traceId: 't1',
      httpStatus: 200,
    });
    expect(consistent).toMatchObject({ status: 'completed', result: '0', chargeStatus: 'charged', traceId: 't1' });
    const noRecord = settle({
      ...base,
      kind: 'answered',
      result: '-5',
      charged: false,
      description: 'x',
      fields: ocr,
      traceId: 't2',
      httpStatus: 200,
    });
    expect(noRecord).toMatchObject({ status: 'completed', result: '-5', chargeStatus: 'not_charged' });
  });

  it('a rejection or an unsent call failed and was not charged; an indeterminate call is unknown', () => {
    const rejected: UpstreamOutcome = {
      ...base,
      kind: 'rejected',
      httpStatus: 429,
      errorCode: 'too_many_requests',
      message: null,
      traceId: 'tr',
      retryAfterSeconds: 1,
    };
    expect(settle(rejected)).toMatchObject({
      status: 'failed',
      chargeStatus: 'not_charged',
      error: 'too_many_requests',
    });
    expect(settle({ ...base, kind: 'unsent', reason: 'circuit_open', retryAfterSeconds: 3 })).toMatchObject({
      status: 'failed',
      chargeStatus: 'not_charged',
      error: 'circuit_open',
    });
    expect(
      settle({ ...base, kind: 'indeterminate', reason: 'timeout', httpStatus: null, errorCode: null, traceId: null }),
    ).toMatchObject({
      status: 'unknown',
      chargeStatus: 'unknown',
      result: null,
      error: 'timeout',
    });
  });
});

describe('how a settled submission is answered (the same reading as what is recorded)', () => {
  const base = { attempts: 1, durationMs: 5 };
  const rejectedWith = (httpStatus: number, errorCode: string | null, retryAfterSeconds: number | null) =>
    settle({ ...base, kind: 'rejected', httpStatus, errorCode, message: null, traceId: null, retryAfterSeconds });

  it('a vendor at capacity (429) or a call never sent: unavailable, with a Retry-After of at least 1 s', () => {
    expect(rejectedWith(429, 'too_many_requests', 7).answer).toEqual({ kind: 'unavailable', retryAfterSeconds: 7 });
    expect(rejectedWith(429, null, null).answer).toEqual({ kind: 'unavailable', retryAfterSeconds: 5 });
    expect(rejectedWith(429, null, 0.2).answer).toEqual({ kind: 'unavailable', retryAfterSeconds: 1 });
    expect(settle({ ...base, kind: 'unsent', reason: 'circuit_open', retryAfterSeconds: 2.5 }).answer).toEqual({
      kind: 'unavailable',
      retryAfterSeconds: 3,
    });
  });

  it('a request the vendor refused: its error code, or the HTTP status when it gave none', () => {
    expect(rejectedWith(400, 'invalid_parameter', null).answer).toEqual({
      kind: 'upstream_rejected',
      errorCode: 'invalid_parameter',
    });
    expect(rejectedWith(403, null, null).answer).toEqual({ kind: 'upstream_rejected', errorCode: 'http_403' });
  });

  it('an indeterminate call is answered as recorded (unknown), like an answered one', () => {
    const unknown = settle({
      ...base,
      kind: 'indeterminate',
      reason: 'timeout',
      httpStatus: null,
      errorCode: null,
      traceId: null,
    });
    expect(unknown.answer).toEqual({ kind: 'recorded' });
  });
});

describe('charges', () => {
  it('amount and charged flag follow the charge status', () => {
    expect(amountFor('charged', 50)).toBe(50);
    expect(amountFor('not_charged', 50)).toBe(0);
    expect(amountFor('unknown', 50)).toBeNull();
    expect(chargedFlag('charged')).toBe(true);
    expect(chargedFlag('not_charged')).toBe(false);
    expect(chargedFlag('unknown')).toBeNull();
  });
});

describe('request fingerprints', () => {
  const key = Buffer.alloc(32, 7);
  const fp = (endpoint: string, body: unknown, k = key) => requestFingerprint(k, endpoint, body);

  it('ignore key order and undefined fields but not values or endpoints', () => {
    const a = fp('POST /v1/verifications', { name: '张三', id_card: '1', reference: undefined });
    expect(fp('POST /v1/verifications', { id_card: '1', name: '张三' })).toBe(a);
    expect(fp('POST /v1/verifications', { id_card: '2', name: '张三' })).not.toBe(a);
    expect(fp('POST /identity/idcard/ocr', { id_card: '1', name: '张三' })).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
  });

  it('are keyed: without the PII HMAC key a stored value confirms no guessed identity', () => {
    const body = { name: '张伟', id_card: '360426199101010071' };
    const stored = fp('POST /v1/verifications', body);
    // Neither the old unkeyed hash nor an HMAC under another key reproduces it.
    expect(legacyRequestFingerprint('POST /v1/verifications', body)).not.toBe(stored);
    expect(fp('POST /v1/verifications', body, Buffer.alloc(32, 8))).not.toBe(stored);
    // Nor an HMAC directly under the PII HMAC key (the fingerprint key is derived, not reused).
    const direct = createHmac('sha256', key)
      .update('POST /v1/verifications\n{"id_card":"360426199101010071","name":"张伟"}')
      .digest('hex');
    expect(direct).not.toBe(stored);
  });

  it('keep the legacy form recognisable (SHA-256 of endpoint and canonical body)', () => {
    const legacy = legacyRequestFingerprint('POST /v1/verifications', { name: '张三', id_card: '1' });
    const expected = createHash('sha256').update('POST /v1/verifications\n{"id_card":"1","name":"张三"}').digest('hex');
    expect(legacy).toBe(expected);
  });
});

describe('periods and deadlines', () => {
  it('quota periods start at the UTC day and month', () => {
    expect(quotaPeriods(new Date('2026-11-25T23:59:59Z'))).toEqual({
      dayStart: new Date('2026-11-25T00:00:00Z'),
      monthStart: new Date('2026-11-01T00:00:00Z'),
    });
  });

  it('a pending row outlives every possible call', () => {
    expect(pendingDeadlineMs({ timeoutMs: 10_000, maxAttempts: 3, retryMaxDelayMs: 2_000 })).toBe(39_000);
  });
});
