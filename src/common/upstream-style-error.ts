import type { ProblemBody } from './problem';

/**
 * The drop-in endpoint (`/identity/…`) speaks the upstream's error format,
 * `{ success: false, error: { code, message }, trace_id }`, with the upstream's
 * codes, so a client written against the upstream keeps working.
 */
export const UPSTREAM_COMPATIBLE_PREFIX = '/identity/';

export function upstreamErrorCode(status: number): string {
  if (status === 401 || status === 403) return 'invalid_token';
  if (status === 404 || status === 405) return 'api_not_implemented';
  if (status === 429) return 'too_many_requests';
  if (status >= 500) return 'api_error';
  return 'token_mismatched';
}

export function toUpstreamStyleError(problem: ProblemBody, traceId: string) {
  const message =
    problem.errors && problem.errors.length > 0
      ? problem.errors.map((e) => `${e.field}: ${e.message}`).join('; ')
      : (problem.detail ?? problem.title);
  return {
    success: false as const,
    error: { code: upstreamErrorCode(problem.status), message },
    trace_id: traceId,
  };
}
