import { CanActivate, ExecutionContext, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { Request, Response } from 'express';
import Redis from 'ioredis';
import { IRateLimiterStoreOptions, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { ProblemException } from '../common/problem';
import { AppConfig } from '../config/app-config';
import type { RequestWithPrincipal } from './authenticated.decorator';

const WINDOW_SECONDS = 60;

/**
 * Per-API-key rate limit (runs after the AuthGuard has identified the key).
 * Headers follow the IETF RateLimit draft: `RateLimit-Policy: 6000;w=60` and
 * `RateLimit: limit=6000, remaining=5999, reset=60`; over the limit, 429
 * problem+json with `Retry-After`. With REDIS_URL the counters are shared by
 * every instance; if Redis fails, each process falls back to its own counters
 * rather than refusing traffic.
 */
@Injectable()
export class RateLimitGuard implements CanActivate, OnModuleDestroy {
  private readonly logger = new Logger(RateLimitGuard.name);
  private readonly limiter: RateLimiterMemory | RateLimiterRedis;
  private readonly redis?: Redis;
  private readonly limit: number;

  constructor(config: AppConfig) {
    this.limit = config.rateLimit.perMinute;
    const options = { points: this.limit, duration: WINDOW_SECONDS, keyPrefix: 'idgate:ratelimit' };
    if (config.rateLimit.redisUrl) {
      this.redis = new Redis(config.rateLimit.redisUrl, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt) => Math.min(attempt * 500, 10_000),
      });
      // Log transitions only: ioredis reports every failed reconnect.
      let healthy = true;
      this.redis.on('error', () => {
        if (healthy) this.logger.warn('Redis unavailable for rate limiting; using per-process limits');
        healthy = false;
      });
      this.redis.on('ready', () => {
        if (!healthy) this.logger.log('Redis rate limiting restored');
        healthy = true;
      });
      const redisOptions: IRateLimiterStoreOptions = {
        ...options,
        storeClient: this.redis,
        insuranceLimiter: new RateLimiterMemory(options),
      };
      this.limiter = new RateLimiterRedis(redisOptions);
    } else {
      this.limiter = new RateLimiterMemory(options);
    }
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const principal = http.getRequest<Request & RequestWithPrincipal>().principal;
    if (!principal) return true; // public endpoints
    const res = http.getResponse<Response>();
    res.setHeader('RateLimit-Policy', `${this.limit};w=${WINDOW_SECONDS}`);
    try {
      const state = await this.limiter.consume(principal.keyId);
      this.setState(res, state);
      return true;
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

  onModuleDestroy(): void {
    this.redis?.disconnect();
  }
}
