import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { FieldError, kindForStatus, PROBLEM_CONTENT_TYPE, ProblemBody, problemBody, ProblemKind } from './problem';
import { ProblemDto, UpstreamErrorDto } from './problem.dto';
import { toUpstreamStyleError } from './upstream-style-error';

/*
 * The error responses of an operation, documented from the same problem bodies the code sends,
 * with an example each, so that /docs-json shows what a client will actually receive. The e2e
 * suite fails when an operation answers a status not documented here (test/support/status-recorder).
 */

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503;

export interface ProblemDoc {
  /** When this status is answered, for the reader of the docs. */
  description: string;
  /** The example's `detail` (default: the description). */
  detail?: string;
  /** The example's kind when the status alone does not say it (400: `validation` unless said). */
  kind?: ProblemKind;
  /** The example's field errors (400 validation). */
  errors?: FieldError[];
  /** Further members of the example (`retry_after_seconds`, `first_bad_seq`…). */
  extensions?: Record<string, unknown>;
}

export type ProblemDocs = Partial<Record<ErrorStatus, string | ProblemDoc | ProblemDoc[]>>;

/** The error body an operation speaks: RFC 9457 problem+json, or the upstream's own (the drop-in). */
export type ErrorStyle = 'problem' | 'upstream';

const EXAMPLE_REQUEST_ID = '0f4c3a9e-5b1d-4c7e-9a55-2c1f0d7b8e61';

function asDocs(entry: string | ProblemDoc | ProblemDoc[]): ProblemDoc[] {
  if (typeof entry === 'string') return [{ description: entry }];
  return Array.isArray(entry) ? entry : [entry];
}

function exampleBody(status: ErrorStatus, doc: ProblemDoc): ProblemBody {
  const kind: ProblemKind = doc.kind ?? (status === 400 ? 'validation' : kindForStatus(status));
  const errors =
    kind === 'validation' ? (doc.errors ?? [{ field: 'id_card', message: 'must be a string' }]) : undefined;
  const detail = doc.detail ?? (errors ? errors.map((e) => `${e.field}: ${e.message}`).join('; ') : doc.description);
  return {
    ...problemBody(kind, detail, { ...(errors ? { errors } : {}), ...doc.extensions }),
    request_id: EXAMPLE_REQUEST_ID,
  };
}

/** Later entries for a status add to earlier ones (an endpoint's own 400 beside the 400 every request can get). */
export function mergeProblemDocs(...all: ProblemDocs[]): Partial<Record<ErrorStatus, ProblemDoc[]>> {
  const merged: Partial<Record<ErrorStatus, ProblemDoc[]>> = {};
  for (const docs of all) {
    for (const [statusText, entry] of Object.entries(docs)) {
      const status = Number(statusText) as ErrorStatus;
      merged[status] = [...(merged[status] ?? []), ...asDocs(entry as string | ProblemDoc | ProblemDoc[])];
    }
  }
  return merged;
}

/** Documents the given error statuses of one operation, each with its schema and an example per cause. */
export function ApiProblems(...all: ProblemDocs[]): MethodDecorator & ClassDecorator {
  return documentProblems('problem', ...all);
}

/** The same, in the upstream's error shape (the drop-in endpoint). */
export function ApiUpstreamStyleErrors(...all: ProblemDocs[]): MethodDecorator & ClassDecorator {
  return documentProblems('upstream', ...all);
}

function documentProblems(style: ErrorStyle, ...all: ProblemDocs[]): MethodDecorator & ClassDecorator {
  const decorators = Object.entries(mergeProblemDocs(...all)).map(([statusText, docs]) => {
    const status = Number(statusText) as ErrorStatus;
    const examples = docs.map((doc, i) => {
      const body = exampleBody(status, doc);
      const name = `${body.type.split(':').pop() as string}${i === 0 ? '' : `-${i + 1}`}`;
      const value = style === 'upstream' ? toUpstreamStyleError(body, EXAMPLE_REQUEST_ID) : body;
      return [name, { summary: doc.description, value }] as const;
    });
    const mediaType = style === 'upstream' ? 'application/json' : PROBLEM_CONTENT_TYPE;
    const schema = { $ref: getSchemaPath(style === 'upstream' ? UpstreamErrorDto : ProblemDto) };
    const description = docs.map((d) => d.description).join(' ');
    return ApiResponse({
      status,
      description,
      content: { [mediaType]: { schema, examples: Object.fromEntries(examples) } },
    });
  });
  return applyDecorators(ApiExtraModels(ProblemDto, UpstreamErrorDto), ...decorators);
}

/* Statuses many operations share, in one wording. */

/** What any request can get, whoever answers it: an unreadable request, or an instance that cannot serve it now. */
export const REQUEST_PROBLEMS = {
  400: {
    kind: 'malformed-json',
    description: 'The request could not be read: malformed JSON, a URL that does not decode, nesting too deep.',
    detail: 'The request body is not valid JSON.',
  },
  503: [
    {
      description: 'The database is unavailable (nothing was recorded; retry shortly),',
      detail: 'The database is unavailable; nothing was recorded. Try again shortly.',
    },
    {
      description: 'or this instance is shutting down (nothing was done; retry, another instance answers).',
      detail: 'This instance is shutting down; nothing was done. Retry (another instance).',
    },
  ],
} satisfies ProblemDocs;

/** What a request with a body can get besides. */
export const BODY_PROBLEMS = {
  413: { description: 'The body is larger than the limit.', detail: 'The body exceeds the limit of 5242880 bytes.' },
  415: {
    description: 'A body encoding or charset idgate does not read.',
    detail: 'Unsupported body encoding or charset.',
  },
} satisfies ProblemDocs;

/** 404 for an id that names nothing the caller may see (the detail as the service words it). */
export const NOT_FOUND_BY_ID = (what: string, detail = `No ${what} with that id.`): ProblemDoc => ({
  description: `No ${what} with this id (or not one you may see).`,
  detail,
});

/** 400 for a malformed `id` path parameter. */
export const ID_PARAM_PROBLEM: ProblemDoc = {
  description: '`id` is not a UUID.',
  errors: [{ field: 'id', message: 'must be a UUID' }],
};

/** 400 for a malformed page query (`cursor`, `limit`) or an unknown query parameter. */
export const PAGE_QUERY_PROBLEM: ProblemDoc = {
  description: 'A query parameter is malformed or unknown (`cursor` must be one this endpoint issued; `limit` 1–200).',
  errors: [{ field: 'cursor', message: 'is not a cursor this endpoint issued' }],
};
