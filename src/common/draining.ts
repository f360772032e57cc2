import type { NextFunction, Request, Response } from 'express';
import { problemBody } from './problem';
import { sendProblem } from './problem.filter';

/*
 * Shutdown under load. Closing the HTTP server stops new connections, but a load balancer
 * keeps its keep-alive connections open and goes on sending requests on them, so a server
 * that only waits for "in-flight requests to finish" may never finish. Once draining
 * starts, every response says `Connection: close`, and a request that arrives after that
 * is refused at once (503, nothing done, retry elsewhere) instead of starting new work.
 */
export class Draining {
  private started = false;

  get active(): boolean {
    return this.started;
  }

  begin(): void {
    this.started = true;
  }

  middleware() {
    return (req: Request, res: Response, next: NextFunction) => {
      if (!this.started) return next();
      res.setHeader('Connection', 'close');
      sendProblem(
        req,
        res,
        problemBody(
          'service-unavailable',
          'This instance is shutting down; nothing was done. Retry (another instance).',
        ),
        { 'Retry-After': '1' },
      );
    };
  }

  /** Marks responses to requests already running, so their connections close after them. */
  closeAfterResponse() {
    return (_req: Request, res: Response, next: NextFunction) => {
      const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
      res.writeHead = ((...args: unknown[]) => {
        if (this.started && !res.headersSent) res.setHeader('Connection', 'close');
        return writeHead(...args);
      }) as Response['writeHead'];
      next();
    };
  }
}
