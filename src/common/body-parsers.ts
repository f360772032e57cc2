import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';
import { problemBody } from './problem';
import { sendProblem } from './problem.filter';
import { NUL_MESSAGE } from './validation';

/**
 * body-parser reports its errors to Express's own handler, which Nest's
 * exception filters never see; render them as problem+json here instead.
 */
function withProblemErrors(parser: RequestHandler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) =>
    parser(req, res, (err?: unknown) => {
      if (!err) return next();
      const type = (err as { type?: string }).type;
      if (type === 'entity.too.large') {
        const limit = (err as { limit?: number }).limit;
        return sendProblem(req, res, problemBody('payload-too-large', `The body exceeds the limit of ${limit} bytes.`));
      }
      if (type === 'entity.parse.failed') {
        return sendProblem(req, res, problemBody('malformed-json', 'The request body is not valid JSON.'));
      }
      if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
        return sendProblem(req, res, problemBody('unsupported-media-type', 'Unsupported body encoding or charset.'));
      }
      return sendProblem(req, res, problemBody('bad-request', 'The request body could not be read.'));
    });
}

/** No request idgate takes nests deeper than a few levels; deep nesting only serves to exhaust the stack. */
export const MAX_JSON_DEPTH = 32;

/** Nesting depth of a parsed JSON value, measured without recursion. */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    max = Math.max(max, depth);
    if (max > MAX_JSON_DEPTH) return max;
    for (const child of Object.values(node as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return max;
}

/** Request headers idgate reads, as their documentation spells them. */
export const HEADERS_READ = [
  'Idempotency-Key',
  'X-Request-Id',
  'X-Sandbox-Fault',
  'Authorization',
  'X-API-Key',
  'Accept',
];

/**
 * Headers are outside the validation pipe's reach. Node's parser already refuses
 * NUL in a header (a bare 400 before any handler), but `--insecure-http-parser`
 * lets it through, and PostgreSQL cannot store it (Idempotency-Key is stored).
 */
export function headerWithNul(req: Pick<Request, 'headers'>): string | undefined {
  return HEADERS_READ.find((name) => {
    const value = req.headers[name.toLowerCase()];
    return (Array.isArray(value) ? value : [value]).some((v) => typeof v === 'string' && v.includes('\u0000'));
  });
}

export function jsonBodyParser(limitBytes: number): RequestHandler {
  const parse = withProblemErrors(
    express.json({ limit: limitBytes, type: ['application/json', 'application/*+json'] }),
  );
  return (req: Request, res: Response, next: NextFunction) => {
    const header = headerWithNul(req);
    if (header) {
      return sendProblem(
        req,
        res,
        problemBody('validation', `${header}: ${NUL_MESSAGE}`, { errors: [{ field: header, message: NUL_MESSAGE }] }),
      );
    }
    return parse(req, res, () => {
      if (jsonDepth(req.body) > MAX_JSON_DEPTH) {
        return sendProblem(
          req,
          res,
          problemBody('bad-request', `JSON nested deeper than ${MAX_JSON_DEPTH} levels is refused.`),
        );
      }
      next();
    });
  };
}
