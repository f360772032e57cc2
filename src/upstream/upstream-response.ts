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
 * What was observed of a kept-alive socket that an earlier request had used, while it
 * carried this request (recorded by the upstream agents, see `upstream-agent.ts`).
 * Absent when the request went out on a new connection.
 */
export interface ReusedSocketEvidence {
  /** The socket's `bytesWritten` when it was handed to this request; null if unreadable. */
  bytesWrittenAtHandover: number | null;
  /** The socket's `bytesWritten` after the failure; null if unreadable. */
  bytesWrittenAtFailure: number | null;
  /**
   * The peer's FIN was received before this request had been completely handed to the
   * kernel (`'end'` before the request's `'finish'`), or before the socket was handed over.
   */
  peerClosedBeforeRequestSent: boolean;
}

/**
 * True when a reused socket provably did not carry the request to the upstream: not one
 * byte of it was written (`bytesWritten` did not move; Node counts bytes when it hands
 * them to the kernel, even if the write then fails), or the upstream had already closed
 * the connection (FIN) before the request was completely sent. An HTTP/1.1 server that
 * has closed a persistent connection processes no further request on it (RFC 9112 §9.6),
 * and it cannot have acted on a request it had not received in full.
 */
function reusedSocketCarriedNothing(evidence: ReusedSocketEvidence): boolean {
  if (evidence.peerClosedBeforeRequestSent) return true;
  const { bytesWrittenAtHandover: before, bytesWrittenAtFailure: after } = evidence;
  return before !== null && after !== null && after === before;
}

/**
 * Classifies a transport failure (no complete HTTP response). Only failures that prove
 * nothing was sent are `unsent`; everything else may have reached the upstream.
 * A timeout is counted as possibly sent even if it struck while connecting: we cannot
 * tell reliably, and guessing "not sent" could mean charging twice.
 *
 * `reusedSocket` is the evidence recorded when the request went out on a reused
 * keep-alive socket. A reset (ECONNRESET, EPIPE, premature close) on such a socket is
 * `unsent` (`reused_socket_closed`) only with proof that the request never reached the
 * upstream (`reusedSocketCarriedNothing`); any other reset stays `indeterminate`.
 */
export function interpretTransportError(err: unknown, reusedSocket?: ReusedSocketEvidence): AttemptOutcome {
  const codes = errorCodes(err);
  const base = { httpStatus: null, errorCode: null, traceId: null };
  if (codes.length > 0 && codes.every((c) => REFUSED_CODES.has(c) || UNREACHABLE_CODES.has(c))) {
    const reason = codes.some((c) => REFUSED_CODES.has(c)) ? 'connection_refused' : 'unreachable';
    return { kind: 'unsent', reason, retryAfterSeconds: null };
  }
  if (codes.some((c) => TIMEOUT_CODES.has(c))) return { kind: 'indeterminate', reason: 'timeout', ...base };
  if (codes.some((c) => RESET_CODES.has(c))) {
    if (
      reusedSocket !== undefined &&
      codes.every((c) => RESET_CODES.has(c)) &&
      reusedSocketCarriedNothing(reusedSocket)
    ) {
      return { kind: 'unsent', reason: 'reused_socket_closed', retryAfterSeconds: null };
    }
    return { kind: 'indeterminate', reason: 'connection_reset', ...base };
  }
  if (codes.includes('ERR_BAD_RESPONSE')) return { kind: 'indeterminate', reason: 'malformed_response', ...base };
  return { kind: 'indeterminate', reason: 'transport_error', ...base };
}
