import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { isDatabaseUnavailable } from '../database/database-errors';
import { safePath } from './safe-path';
import { PROBLEM_CONTENT_TYPE, ProblemBody, ProblemException, kindForStatus, problemBody } from './problem';
import { toUpstreamStyleError, UPSTREAM_COMPATIBLE_PREFIX } from './upstream-style-error';

/** Strips an error to what may be logged: its class, code and stack frames, never its message (it may hold PII). */
export function loggableError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const frames = (err.stack ?? '')
    .split('\n')
    .filter((l) => l.trimStart().startsWith('at '))
    .slice(0, 15);
  return { type: err.constructor.name, code: (err as { code?: unknown }).code, stack: frames.join('\n') };
}

export function sendProblem(
  req: Request,
  res: Response,
  body: ProblemBody,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const requestId = (req as Request & { id?: unknown }).id;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (req.originalUrl?.startsWith(UPSTREAM_COMPATIBLE_PREFIX)) {
    const traceId =
      typeof body.verification_id === 'string'
        ? body.verification_id
        : typeof requestId === 'string'
          ? requestId
          : randomUUID();
    res.status(body.status).json(toUpstreamStyleError(body, traceId));
    return;
  }
  // The path as the log shows it: what the caller sent may hold an ID number or a key (safe-path.ts).
  const full: ProblemBody = {
    ...body,
    instance: req.originalUrl === undefined ? undefined : safePath(req.originalUrl),
  };
  if (typeof requestId === 'string') full.request_id = requestId;
  res.status(body.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(full));
}

/**
 * An HttpException, also one made by another copy of @nestjs/common (the platform adapter's
 * under jest's module registry throws a BadRequestException this copy's `instanceof` rejects).
 */
function isHttpException(exception: unknown): exception is HttpException {
  if (exception instanceof HttpException) return true;
  if (!(exception instanceof Error)) return false;
  const e = exception as Error & Partial<Pick<HttpException, 'getStatus' | 'getResponse'>>;
  return typeof e.getStatus === 'function' && typeof e.getResponse === 'function';
}

/** A path that is not percent-encoded UTF-8: refused by the router before any middleware ran, so the request id is given here. */
function sendUndecodablePath(req: Request, res: Response): void {
  const withId = req as Request & { id?: unknown };
  if (typeof withId.id !== 'string') {
    const id = randomUUID();
    withId.id = id;
    res.setHeader('X-Request-Id', id);
  }
  const message = 'must be valid percent-encoded UTF-8';
  sendProblem(req, res, problemBody('validation', `path: ${message}`, { errors: [{ field: 'path', message }] }));
}

/** Every error leaves as RFC 9457 problem+json, and never with a stack trace. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();

    if (exception instanceof ProblemException) {
      return sendProblem(req, res, exception.body, exception.headers);
    }
    // The router's URIError (status 400) for a path it cannot decode, however it arrives.
    if (exception instanceof Error && exception.name === 'URIError') return sendUndecodablePath(req, res);
    if (isHttpException(exception)) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      const message =
        typeof response === 'object' && response && 'message' in response
          ? (response as { message: unknown }).message
          : exception.message;
      const detail = Array.isArray(message) ? message.join('; ') : typeof message === 'string' ? message : undefined;
      if (status >= 500) this.logger.error({ err: loggableError(exception) }, 'request failed');
      // Nest's router 404 quotes the path as sent: say it with the unsafe segments redacted.
      if (status === 404 && typeof detail === 'string' && detail.startsWith('Cannot ')) {
        return sendProblem(
          req,
          res,
          problemBody('not-found', `Cannot ${req.method} ${safePath(req.originalUrl ?? req.url)}`),
        );
      }
      // Express's own 400s (a URL it cannot decode) quote the input and name no field: say what it is instead.
      if (status === 400) return sendUndecodablePath(req, res);
      return sendProblem(req, res, problemBody(kindForStatus(status), status >= 500 ? undefined : detail));
    }
    if (isDatabaseUnavailable(exception)) {
      this.logger.warn({ err: loggableError(exception) }, 'database unavailable');
      return sendProblem(
        req,
        res,
        problemBody('service-unavailable', 'The database is unavailable; nothing was recorded. Try again shortly.'),
        { 'Retry-After': '5' },
      );
    }
    if (exception instanceof RangeError && /call stack/i.test(exception.message)) {
      // Defence in depth: input too deeply nested for the validator (the body parser refuses most).
      return sendProblem(req, res, problemBody('bad-request', 'The request is nested too deeply.'));
    }
    this.logger.error({ err: loggableError(exception) }, 'unhandled error');
    sendProblem(req, res, problemBody('internal', 'An unexpected error occurred; it has been logged.'));
  }
}
