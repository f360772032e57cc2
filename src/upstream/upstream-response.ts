import {
  isChargedResultCode,
  isUpstreamResultCode,
  UpstreamOcrFields,
  UpstreamOutcome,
  UpstreamResultCode,
} from './upstream.types';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What one HTTP attempt yielded, before retries are accounted for. */
export type AttemptOutcome = DistributiveOmit<UpstreamOutcome, 'attempts' | 'durationMs'>;

const OCR_FIELDS = ['name', 'id_card', 'sex', 'nation', 'birth', 'address'] as const;
/** Statuses at which the upstream refuses before doing billable work. */
const REJECTION_STATUSES = new Set([400, 401, 402, 403, 404, 429]);
const MAX_TRACE_ID_LENGTH = 128;
const MAX_MESSAGE_LENGTH = 200;
const SAFE_TOKEN = /^[A-Za-z0-9._:-]+$/;

export type ResponseHeaders = Record<string, string | string[] | undefined>;

function header(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A trace id is kept only if it is a short, printable token: it ends up in our database and logs. */
function safeTraceId(value: unknown): string | null {
  return typeof value === 'string' && value.length <= MAX_TRACE_ID_LENGTH && SAFE_TOKEN.test(value) ? value : null;
}

function traceIdOf(body: Record<string, unknown> | null, headers: ResponseHeaders): string | null {
  return safeTraceId(body?.trace_id) ?? safeTraceId(header(headers, 'x-trace-id'));
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function retryAfterSeconds(headers: ResponseHeaders): number | null {
  const value = header(headers, 'retry-after');
  if (value === undefined || !/^\d{1,6}$/.test(value.trim())) return null;
  return Number(value.trim());
}

/** `{ success: false, error: { code, message }, trace_id }`, read defensively. */
function errorOf(body: Record<string, unknown> | null): { code: string | null; message: string | null } {
  const error = body?.error;
  if (error === null || typeof error !== 'object') return { code: null, message: null };
  const { code, message } = error as Record<string, unknown>;
  return {
    code: typeof code === 'string' && code.length <= 64 && SAFE_TOKEN.test(code) ? code : null,
    message: typeof message === 'string' ? message.slice(0, MAX_MESSAGE_LENGTH) : null,
  };
}

/**
 * Classifies a complete HTTP response. The upstream is untrusted: every field is
 * checked, and anything we cannot read with certainty is `indeterminate` (the call
 * reached the upstream, so it may have been charged), never an exception.
 */
export function interpretResponse(status: number, headers: ResponseHeaders, text: string): AttemptOutcome {
  const body = parseObject(text);
  const traceId = traceIdOf(body, headers);

  if (status >= 200 && status < 300) {
    if (body === null) {
      return { kind: 'indeterminate', reason: 'malformed_response', httpStatus: status, errorCode: null, traceId };
    }
    return interpretAnswer(status, body, traceId);
  }

  const { code, message } = errorOf(body);
  if (REJECTION_STATUSES.has(status)) {
    return {
      kind: 'rejected',
      httpStatus: status,
      errorCode: code,
      message,
      traceId,
      retryAfterSeconds: retryAfterSeconds(headers),
    };
  }
  return {
    kind: 'indeterminate',
    reason: status >= 500 ? 'server_error' : 'unexpected_status',
    httpStatus: status,
    errorCode: code,
    traceId,
  };
}

/**
 * A 2xx body. `result` and `description` are required strings and `result` must be a
 * documented code. The OCR fields must be strings when present; an absent OCR field reads
 * as "" (the upstream documents them as empty when there is nothing to show), because the
 * code alone settles the charge.
 */
function interpretAnswer(status: number, body: Record<string, unknown>, traceId: string | null): AttemptOutcome {
  const malformed: AttemptOutcome = {
    kind: 'indeterminate',
    reason: 'malformed_response',
    httpStatus: status,
    errorCode: null,
    traceId,
  };
  const { result, description } = body;
  if (typeof result !== 'string' || typeof description !== 'string') return malformed;

  const fields = {} as Record<(typeof OCR_FIELDS)[number], string>;
  for (const field of OCR_FIELDS) {
    const value = body[field];
    if (value === undefined) fields[field] = '';
    else if (typeof value === 'string') fields[field] = value;
    else return malformed;
  }

  if (!isUpstreamResultCode(result)) {
    return { kind: 'indeterminate', reason: 'unknown_result', httpStatus: status, errorCode: null, traceId };
  }
  const code: UpstreamResultCode = result;
  return {
    kind: 'answered',
    result: code,
    charged: isChargedResultCode(code),
    description,
    fields: fields as UpstreamOcrFields,
    traceId,
    httpStatus: status,
  };
}

/** Error codes that mean the request never left this machine, so cannot have been charged. */
const REFUSED_CODES = new Set(['ECONNREFUSED']);
const UNREACHABLE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT', 'ERR_CANCELED']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Every error code in an error, its cause chain and (Happy Eyeballs) aggregated errors. */
function errorCodes(err: unknown, depth = 0): string[] {
  if (err === null || typeof err !== 'object' || depth > 4) return [];
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof e.code === 'string' ? [e.code] : [];
  const nested = Array.isArray(e.errors) ? e.errors.flatMap((x) => errorCodes(x, depth + 1)) : [];
  return [...own, ...nested, ...errorCodes(e.cause, depth + 1)];
}

/**
 * Classifies a transport failure (no complete HTTP response). Only failures that prove
 * nothing was sent are `unsent`; everything else may have reached the upstream.
 * A timeout is counted as possibly sent even if it struck while connecting: we cannot
 * tell reliably, and guessing "not sent" could mean charging twice.
 */
export function interpretTransportError(err: unknown): AttemptOutcome {
  const codes = errorCodes(err);
  const base = { httpStatus: null, errorCode: null, traceId: null };
  if (codes.length > 0 && codes.every((c) => REFUSED_CODES.has(c) || UNREACHABLE_CODES.has(c))) {
    const reason = codes.some((c) => REFUSED_CODES.has(c)) ? 'connection_refused' : 'unreachable';
    return { kind: 'unsent', reason, retryAfterSeconds: null };
  }
  if (codes.some((c) => TIMEOUT_CODES.has(c))) return { kind: 'indeterminate', reason: 'timeout', ...base };
  if (codes.some((c) => RESET_CODES.has(c))) return { kind: 'indeterminate', reason: 'connection_reset', ...base };
  if (codes.includes('ERR_BAD_RESPONSE')) return { kind: 'indeterminate', reason: 'malformed_response', ...base };
  return { kind: 'indeterminate', reason: 'transport_error', ...base };
}
