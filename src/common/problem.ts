import { HttpException } from '@nestjs/common';

/**
 * RFC 9457 problem details. `type` is a stable URN per kind of problem, so a
 * client can branch on it without parsing `detail`.
 */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  request_id?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export interface FieldError {
  field: string;
  message: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const KINDS = {
  validation: [400, 'Request validation failed'],
  'malformed-json': [400, 'Malformed JSON body'],
  'bad-request': [400, 'Bad request'],
  unauthorized: [401, 'Authentication required'],
  forbidden: [403, 'Forbidden'],
  'not-found': [404, 'Not found'],
  'method-not-allowed': [405, 'Method not allowed'],
  conflict: [409, 'Conflict'],
  'payload-too-large': [413, 'Payload too large'],
  'unsupported-media-type': [415, 'Unsupported media type'],
  unprocessable: [422, 'Unprocessable request'],
  'rate-limited': [429, 'Too many requests'],
  'upstream-rejected': [502, 'The upstream rejected the request'],
  internal: [500, 'Internal server error'],
  'service-unavailable': [503, 'Service unavailable'],
} as const;

export type ProblemKind = keyof typeof KINDS;

export const problemType = (kind: ProblemKind | string) => `urn:idgate:problem:${kind}`;

export function problemBody(kind: ProblemKind, detail?: string, extensions: Record<string, unknown> = {}): ProblemBody {
  const [status, title] = KINDS[kind];
  return { type: problemType(kind), title, status, ...(detail ? { detail } : {}), ...extensions };
}

/** Thrown by services for an expected failure; the filter renders it as problem+json. */
export class ProblemException extends HttpException {
  constructor(
    readonly kind: ProblemKind,
    detail?: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    const body = problemBody(kind, detail, extensions);
    super(body, body.status);
  }

  get body(): ProblemBody {
    return this.getResponse() as ProblemBody;
  }

  /** Re-raises a problem rendered earlier (an idempotent replay of a stored error response). */
  static replay(body: ProblemBody, headers: Record<string, string> = {}): ProblemException {
    const { type, title, status, detail, instance: _instance, request_id: _requestId, ...extensions } = body;
    const problem = new ProblemException(kindForStatus(status), detail, extensions, headers);
    Object.assign(problem.body, { type, title });
    return problem;
  }
}

export function kindForStatus(status: number): ProblemKind {
  const found = (Object.entries(KINDS) as [ProblemKind, readonly [number, string]][]).find(([, [s]]) => s === status);
  if (found) return found[0];
  return status >= 500 ? 'internal' : 'bad-request';
}

/** A 400 naming each bad field; used by the validation pipe and by services. */
export function validationProblem(errors: FieldError[]): ProblemException {
  const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return new ProblemException('validation', detail, { errors });
}
