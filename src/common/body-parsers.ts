import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';
import { problemBody } from './problem';
import { sendProblem } from './problem.filter';

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

export function jsonBodyParser(limitBytes: number): RequestHandler {
  return withProblemErrors(express.json({ limit: limitBytes, type: ['application/json', 'application/*+json'] }));
}
