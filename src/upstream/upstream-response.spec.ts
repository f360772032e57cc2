import fc from 'fast-check';
import { isUpstreamFailure } from './upstream-circuit';
import { interpretResponse, interpretTransportError } from './upstream-response';
import { retryCause, upstreamBody } from './upstream.client';

const answer = (fields: Record<string, unknown>) =>
  JSON.stringify({
    result: '0',
    description: 'd',
    name: '',
    id_card: '',
    sex: '',
    nation: '',
    birth: '',
    address: '',
    ...fields,
  });

describe('interpretResponse', () => {
  it.each(['0', '-1'])('result %s is answered and charged', (result) => {
    expect(interpretResponse(200, {}, answer({ result }))).toMatchObject({ kind: 'answered', result, charged: true });
  });

  it.each(['-2', '-3', '-4', '-5', '-6', '-7'])('result %s is answered and not charged', (result) => {
    expect(interpretResponse(200, {}, answer({ result }))).toMatchObject({ kind: 'answered', result, charged: false });
  });

  it('takes the trace id from the body, then the x-trace-id header, and drops unsafe ones', () => {
    expect(interpretResponse(200, { 'x-trace-id': 'h-1' }, answer({ trace_id: 'b-1' }))).toMatchObject({
      traceId: 'b-1',
    });
    expect(interpretResponse(200, { 'x-trace-id': 'h-1' }, answer({}))).toMatchObject({ traceId: 'h-1' });
    expect(interpretResponse(200, {}, answer({ trace_id: 'x\ny' }))).toMatchObject({ traceId: null });
    expect(interpretResponse(200, {}, answer({ trace_id: 'a'.repeat(129) }))).toMatchObject({ traceId: null });
    expect(interpretResponse(200, {}, answer({ trace_id: 42 }))).toMatchObject({ kind: 'answered', traceId: null });
  });

  it('reads missing OCR fields as empty strings, but refuses ill-typed ones', () => {
    expect(interpretResponse(200, {}, JSON.stringify({ result: '-2', description: 'd' }))).toMatchObject({
      kind: 'answered',
      fields: { name: '', id_card: '', sex: '', nation: '', birth: '', address: '' },
    });
    expect(interpretResponse(200, {}, answer({ address: null }))).toMatchObject({
      kind: 'indeterminate',
      reason: 'malformed_response',
    });
  });

  it.each([
    ['missing result', JSON.stringify({ description: 'd' }), 'malformed_response'],
    ['missing description', JSON.stringify({ result: '0' }), 'malformed_response'],
    ['numeric result', answer({ result: 0 }), 'malformed_response'],
    ['undocumented result', answer({ result: '-8' }), 'unknown_result'],
    ['" 0" with a space', answer({ result: ' 0' }), 'unknown_result'],
    ['null', 'null', 'malformed_response'],
    ['truncated', answer({}).slice(0, 20), 'malformed_response'],
    ['HTML', '<html></html>', 'malformed_response'],
  ])('a 200 with %s is indeterminate (%s)', (_label, body, reason) => {
    expect(interpretResponse(200, {}, body)).toMatchObject({ kind: 'indeterminate', reason, httpStatus: 200 });
  });

  it.each([400, 401, 402, 403, 404, 429])('%i is a rejection (cannot have been charged)', (status) => {
    const body = JSON.stringify({ success: false, error: { code: 'some_code', message: 'm' }, trace_id: 't-1' });
    expect(interpretResponse(status, { 'retry-after': '3' }, body)).toEqual({
      kind: 'rejected',
      httpStatus: status,
      errorCode: 'some_code',
      message: 'm',
      traceId: 't-1',
      retryAfterSeconds: 3,
    });
  });

  it.each([
    [500, 'server_error'],
    [502, 'server_error'],
    [503, 'server_error'],
    [301, 'unexpected_status'],
    [408, 'unexpected_status'],
    [409, 'unexpected_status'],
  ])('%i is indeterminate (%s)', (status, reason) => {
    expect(interpretResponse(status, {}, '')).toMatchObject({ kind: 'indeterminate', reason });
  });

  it('never throws, whatever the upstream sends', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.oneof(fc.string(), fc.json()), (status, body) => {
        const outcome = interpretResponse(status, {}, body);
        expect(['answered', 'rejected', 'indeterminate']).toContain(outcome.kind);
      }),
    );
  });
});

describe('interpretTransportError', () => {
  const err = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra });

  it.each([
    [err('ECONNREFUSED'), { kind: 'unsent', reason: 'connection_refused' }],
    [Object.assign(new AggregateError([err('ECONNREFUSED'), err('ECONNREFUSED')]), {}), { kind: 'unsent' }],
    [err('ENOTFOUND'), { kind: 'unsent', reason: 'unreachable' }],
    [err('ECONNABORTED'), { kind: 'indeterminate', reason: 'timeout' }],
    [err('ERR_CANCELED'), { kind: 'indeterminate', reason: 'timeout' }],
    [err('ECONNRESET'), { kind: 'indeterminate', reason: 'connection_reset' }],
    [err('ERR_BAD_RESPONSE'), { kind: 'indeterminate', reason: 'malformed_response' }],
    [err('ERR_SOMETHING', { cause: err('ECONNRESET') }), { kind: 'indeterminate', reason: 'connection_reset' }],
    [new Error('no code'), { kind: 'indeterminate', reason: 'transport_error' }],
    ['a string', { kind: 'indeterminate', reason: 'transport_error' }],
    // Refused by one address, reset by another: something may have been sent.
    [new AggregateError([err('ECONNREFUSED'), err('ECONNRESET')]), { kind: 'indeterminate' }],
  ])('%s', (error, expected) => {
    expect(interpretTransportError(error)).toMatchObject(expected);
  });
});

describe('retry and breaker rules', () => {
  const base = { httpStatus: 200, description: 'd', traceId: null, fields: {} as never };
  it.each([
    [{ kind: 'unsent', reason: 'connection_refused', retryAfterSeconds: null }, 'connection_refused', true],
    [{ kind: 'unsent', reason: 'circuit_open', retryAfterSeconds: 1 }, null, false],
    [
      { kind: 'rejected', httpStatus: 429, errorCode: null, message: null, traceId: null, retryAfterSeconds: null },
      'http_429',
      false,
    ],
    [
      { kind: 'rejected', httpStatus: 401, errorCode: null, message: null, traceId: null, retryAfterSeconds: null },
      null,
      false,
    ],
    [{ kind: 'answered', result: '-4', charged: false, ...base }, 'result_-4', true],
    [{ kind: 'answered', result: '-6', charged: false, ...base }, 'result_-6', true],
    [{ kind: 'answered', result: '-7', charged: false, ...base }, null, false],
    [{ kind: 'answered', result: '0', charged: true, ...base }, null, false],
    [{ kind: 'indeterminate', reason: 'timeout', httpStatus: null, errorCode: null, traceId: null }, null, true],
    [{ kind: 'indeterminate', reason: 'server_error', httpStatus: 500, errorCode: null, traceId: null }, null, true],
  ] as const)('%j: retry cause %s, breaker failure %s', (outcome, cause, failure) => {
    expect(retryCause(outcome as never)).toBe(cause);
    expect(isUpstreamFailure(outcome as never)).toBe(failure);
  });
});

describe('upstreamBody', () => {
  it('sends only the fields given, in the documented order', () => {
    expect(Object.keys(upstreamBody({ encryption: [], image_url: 'u', id_card: 'i', name: 'n' }))).toEqual([
      'name',
      'id_card',
      'image_url',
      'encryption',
    ]);
    expect(upstreamBody({ image_url: 'u' })).toEqual({ image_url: 'u' });
  });
});
