/**
 * The upstream contract (`POST {base}/identity/idcard/ocr`) and the outcomes idgate
 * derives from it. Every outcome says, without ambiguity, whether the call can have
 * been charged: that is what billing and the verification state machine depend on.
 */

/** Result codes the upstream documents. Charged: 0, -1. Not charged: -2 … -7. */
export const UPSTREAM_RESULT_CODES = ['0', '-1', '-2', '-3', '-4', '-5', '-6', '-7'] as const;
export type UpstreamResultCode = (typeof UPSTREAM_RESULT_CODES)[number];

export const CHARGED_RESULT_CODES: readonly UpstreamResultCode[] = ['0', '-1'];

/** The upstream's own descriptions, in its words. */
export const RESULT_DESCRIPTIONS: Record<UpstreamResultCode, string> = {
  '0': 'The name and ID card number are consistent',
  '-1': 'The name and ID card number are inconsistent',
  '-2': 'Illegal ID card number (length, check digit, etc. are incorrect)',
  '-3': 'Illegal name (length, format, etc. are incorrect)',
  '-4': 'Document database service exception',
  '-5': 'No record of this ID card in the document database',
  '-6': 'The authoritative comparison system is being upgraded, please try again later',
  '-7': 'The number of authentications has exceeded the daily limit',
};

export function isUpstreamResultCode(value: unknown): value is UpstreamResultCode {
  return typeof value === 'string' && (UPSTREAM_RESULT_CODES as readonly string[]).includes(value);
}

export function isChargedResultCode(code: UpstreamResultCode): boolean {
  return CHARGED_RESULT_CODES.includes(code);
}

/**
 * The vendor's Encryption object (Tencent FaceID's), passed through untouched:
 * `{ algorithm, ciphertext_blob, encrypt_list, iv, tag_list }`.
 */
export type UpstreamEncryption = unknown;

/** The request body, field for field as the upstream documents it. Absent fields are not sent. */
export interface UpstreamVerifyRequest {
  name?: string;
  id_card?: string;
  image_url?: string;
  encryption?: UpstreamEncryption;
}

export interface VerifyOptions {
  /**
   * Sent as `X-Sandbox-Fault` when (and only when) the upstream is the built-in sandbox,
   * so demos and tests can inject faults end to end. Ignored against the real vendor.
   */
  sandboxFault?: string;
}

/** OCR fields: empty strings in name + ID mode, read from the card in image mode. */
export interface UpstreamOcrFields {
  name: string;
  id_card: string;
  sex: string;
  nation: string;
  birth: string;
  address: string;
}

interface OutcomeBase {
  /** HTTP requests made for this verification (1 unless a safe retry happened; 0 if never sent). */
  attempts: number;
  /** Wall time of the whole call, retries and backoff included. */
  durationMs: number;
}

/** The upstream answered with a documented result code. `charged` follows the code. */
export interface UpstreamAnswered extends OutcomeBase {
  kind: 'answered';
  result: UpstreamResultCode;
  charged: boolean;
  description: string;
  fields: UpstreamOcrFields;
  /** The upstream's trace id (body `trace_id`, else the `x-trace-id` header); null if it sent none. */
  traceId: string | null;
  httpStatus: number;
}

/** The upstream refused the request before doing any billable work (400/401/402/403/404/429). */
export interface UpstreamRejected extends OutcomeBase {
  kind: 'rejected';
  httpStatus: number;
  /** The upstream's error code (`invalid_token`, `too_many_requests`, …) when it sent a well-formed one. */
  errorCode: string | null;
  /** The upstream's message, truncated; may echo input, so never log it. */
  message: string | null;
  traceId: string | null;
  /** From a `Retry-After` header in seconds, if any. */
  retryAfterSeconds: number | null;
}

export type IndeterminateReason =
  /** No complete answer within the timeout after the request was (or may have been) sent. */
  | 'timeout'
  /** The connection broke after it was established. */
  | 'connection_reset'
  /** 5xx. */
  | 'server_error'
  /** A status we cannot classify safely (3xx, 408, 409…). */
  | 'unexpected_status'
  /** 2xx but not JSON, not an object, or a documented field of the wrong type. */
  | 'malformed_response'
  /** 2xx with a well-formed body whose `result` is not a documented code. */
  | 'unknown_result'
  /** Any other transport failure after connecting. */
  | 'transport_error';

/** The call may have reached the upstream and been charged; nobody can tell. Never retried. */
export interface UpstreamIndeterminate extends OutcomeBase {
  kind: 'indeterminate';
  reason: IndeterminateReason;
  httpStatus: number | null;
  errorCode: string | null;
  traceId: string | null;
}

export type UnsentReason =
  /** The circuit breaker is open: idgate did not try (answer 503 + Retry-After). */
  | 'circuit_open'
  /** Every attempt was refused at connect time (ECONNREFUSED). */
  | 'connection_refused'
  /** DNS failure or no route to the host: nothing was sent. */
  | 'unreachable'
  /**
   * A reused keep-alive socket failed (reset, EPIPE) and provably never carried the request:
   * no byte of it was written, or the upstream had closed the connection (FIN) before it was
   * fully sent. Retried on a new connection.
   */
  | 'reused_socket_closed';

/** Definitely never reached the upstream: definitely not charged. */
export interface UpstreamUnsent extends OutcomeBase {
  kind: 'unsent';
  reason: UnsentReason;
  /** For `circuit_open`: seconds until the breaker lets a trial call through. */
  retryAfterSeconds: number | null;
}

export type UpstreamOutcome = UpstreamAnswered | UpstreamRejected | UpstreamIndeterminate | UpstreamUnsent;

/** true: charged; false: certainly not charged; null: unknown, to be settled by reconciliation. */
export function chargeOf(outcome: UpstreamOutcome): boolean | null {
  switch (outcome.kind) {
    case 'answered':
      return outcome.charged;
    case 'rejected':
    case 'unsent':
      return false;
    case 'indeterminate':
      return null;
  }
}

/** `closed`: calls flow; `open`: calls refused at once; `half_open`: one trial call allowed. */
export type CircuitStateName = 'closed' | 'open' | 'half_open' | 'isolated';
