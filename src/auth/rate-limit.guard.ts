import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { ProblemException } from '../common/problem';
import { AppConfig } from '../config/app-config';
import type { RequestWithPrincipal } from './authenticated.decorator';
import { Limiter, RateLimitStore } from './rate-limit-store';
import type { Principal } from './roles';

const WINDOW_SECONDS = 60;

/**
 * Per-API-key request budget. Headers follow the IETF RateLimit draft:
 * `RateLimit-Policy: 6000;w=60` and `RateLimit: limit=6000, remaining=5999, reset=60`;
 * over the limit, 429 problem+json with `Retry-After`. Every request of a known key
 * counts, the ones its role is refused included (the AuthGuard charges those before it
 * answers 403), so a key at its limit gets 429 everywhere.
 */
@Injectable()
export class KeyRateLimiter {
  private readonly limiter: Limiter;
  private readonly limit: number;

  constructor(config: AppConfig, store: RateLimitStore) {
    this.limit = config.rateLimit.perMinute;
    this.limiter = store.limiter('idgate:ratelimit', this.limit, WINDOW_SECONDS);
  }

  /** Counts one request of `principal`; throws 429 past the budget. */
  async consume(principal: Principal, res: Response): Promise<void> {
    res.setHeader('RateLimit-Policy', `${this.limit};w=${WINDOW_SECONDS}`);
    try {
      this.setState(res, await this.limiter.consume(principal.keyId));
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      this.setState(res, rejection);
      const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      throw new ProblemException(
        'rate-limited',
        `This API key may make ${this.limit} requests per ${WINDOW_SECONDS} s.`,
        { retry_after_seconds: retryAfter },
        { 'Retry-After': String(retryAfter) },
      );
    }
  }

  private setState(res: Response, state: RateLimiterRes): void {
    const reset = Math.max(0, Math.ceil(state.msBeforeNext / 1000));
    res.setHeader('RateLimit', `limit=${this.limit}, remaining=${Math.max(0, state.remainingPoints)}, reset=${reset}`);
  }
}

/** Runs after the AuthGuard has identified the key: counts the request against it. */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(private readonly limiter: KeyRateLimiter) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const principal = http.getRequest<Request & RequestWithPrincipal>().principal;
    if (!principal) return true; // public endpoints
    await this.limiter.consume(principal, http.getResponse<Response>());
    return true;
  }
}
