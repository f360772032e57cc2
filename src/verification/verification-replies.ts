import { problemBody } from '../common/problem';
import type { StoredReply } from './idempotency';
import type { SubmitOutcome } from './verification.service';
import { toUpstreamStyleBody, toVerificationDto } from './verification-view';

/*
 * How a submission's outcome is answered on each channel. Replies are stored for
 * idempotent replay, so they are plain data: status, body, headers.
 */

/** A 202's hint: an answer still being recorded usually lands within a second. */
const ACCEPTED_RETRY_AFTER_SECONDS = 1;

/** POST /v1/verifications: 201 with the verification (masked for the client), or problem+json. */
export function apiReply(outcome: SubmitOutcome): StoredReply & { problem: boolean } {
  const v = outcome.verification;
  switch (outcome.kind) {
    case 'recorded':
      return { status: 201, body: toVerificationDto(v, false), problem: false };
    case 'accepted':
      // Recorded, its answer still being written: the verification as it stands (never stored for replay).
      return {
        status: 202,
        problem: false,
        headers: { Location: `/v1/verifications/${v.id}`, 'Retry-After': String(ACCEPTED_RETRY_AFTER_SECONDS) },
        body: toVerificationDto(v, false),
      };
    case 'unavailable':
      return {
        status: 503,
        problem: true,
        headers: { 'Retry-After': String(outcome.retryAfterSeconds) },
        body: problemBody(
          'service-unavailable',
          'The upstream could not take the call. The verification was recorded as failed and not charged. This answer is final for its Idempotency-Key: to try again later, send a new key.',
          {
            verification_id: v.id,
            retry_after_seconds: outcome.retryAfterSeconds,
          },
        ),
      };
    case 'upstream_rejected':
      return {
        status: 502,
        problem: true,
        body: problemBody(
          'upstream-rejected',
          `The upstream refused the request (${outcome.errorCode}). The verification was recorded as failed and not charged.`,
          {
            verification_id: v.id,
            upstream_error: outcome.errorCode,
          },
        ),
      };
  }
}

export interface UpstreamStyleError {
  success: false;
  error: { code: string; message: string };
  trace_id: string;
}

export function upstreamStyleError(code: string, message: string, traceId: string): UpstreamStyleError {
  return { success: false, error: { code, message }, trace_id: traceId };
}

/** Headers that name the verification behind a drop-in answer that is not final yet. */
export const DROP_IN_VERIFICATION_ID_HEADER = 'X-Idgate-Verification-Id';
export const DROP_IN_VERIFICATION_STATUS_HEADER = 'X-Idgate-Verification-Status';

/** POST /identity/idcard/ocr: the upstream's own success body and error format. */
export function dropInReply(outcome: SubmitOutcome): StoredReply {
  const v = outcome.verification;
  if (outcome.kind === 'accepted') {
    // No such answer upstream: 202, success false (so no client mistakes it for a result), the id in headers.
    return {
      status: 202,
      headers: {
        [DROP_IN_VERIFICATION_ID_HEADER]: v.id,
        [DROP_IN_VERIFICATION_STATUS_HEADER]: v.status,
        'Retry-After': String(ACCEPTED_RETRY_AFTER_SECONDS),
      },
      body: upstreamStyleError(
        'api_error',
        v.status === 'unknown'
          ? 'The upstream did not answer readably; the outcome is recorded as unknown and will be reconciled.'
          : 'Accepted: the outcome is still being recorded. Retry with the same Idempotency-Key to read it.',
        v.id,
      ),
    };
  }
  if (outcome.kind === 'unavailable') {
    return {
      status: 503,
      headers: { 'Retry-After': String(outcome.retryAfterSeconds) },
      body: upstreamStyleError('api_error', 'The upstream is unavailable; nothing was charged. Try again later.', v.id),
    };
  }
  if (outcome.kind === 'upstream_rejected') {
    // The caller's own request was refused (bad parameters): say so in the upstream's words.
    const callerFault =
      outcome.errorCode === 'token_mismatched' ||
      outcome.errorCode === 'bad_request' ||
      outcome.errorCode === 'api_not_implemented';
    return callerFault
      ? {
          status: 400,
          body: upstreamStyleError(outcome.errorCode, 'The upstream refused the request parameters.', v.id),
        }
      : {
          status: 500,
          body: upstreamStyleError('api_error', 'The upstream refused the call; nothing was charged.', v.id),
        };
  }
  if (v.status === 'unknown') {
    return {
      status: 500,
      body: upstreamStyleError(
        'api_error',
        'The upstream did not answer readably; the outcome is recorded as unknown and will be reconciled. Do not retry blindly.',
        v.id,
      ),
    };
  }
  if (v.status === 'failed') {
    return {
      status: 500,
      body: upstreamStyleError('api_error', 'The upstream call failed; nothing was charged.', v.id),
    };
  }
  return { status: 200, body: toUpstreamStyleBody(v) };
}
