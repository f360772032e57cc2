import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import Redis from 'ioredis';
import { IRateLimiterStoreOptions, RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { AppConfig } from '../config/app-config';

export type Limiter = RateLimiterMemory | RateLimiterRedis;

/**
 * Where rate-limit counters live. With REDIS_URL every instance shares them (one
 * connection for all of idgate's limiters); if Redis fails, each limiter falls back to
 * counters of its own process rather than refusing traffic, and returns to Redis when it
 * is back. Without REDIS_URL counters are per process.
 */
@Injectable()
export class RateLimitStore implements OnModuleDestroy {
  private readonly logger = new Logger(RateLimitStore.name);
  private readonly redis?: Redis;

  constructor(config: AppConfig) {
    if (!config.rateLimit.redisUrl) return;
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
  }

  /**
   * Resolves once Redis is connected (true), or after `timeoutMs` without it (false). Until then
   * limiters count in the process, so a caller that needs shared counts from the first request
   * (a test of two instances) waits here first.
   */
  async whenShared(timeoutMs = 2000): Promise<boolean> {
    const redis = this.redis;
    if (!redis) return false;
    if (redis.status === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), timeoutMs);
      const onReady = () => finish(true);
      const finish = (shared: boolean) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        resolve(shared);
      };
      redis.once('ready', onReady);
    });
  }

  /** A limiter of `points` per `durationSeconds` under `keyPrefix` (distinct per use). */
  limiter(keyPrefix: string, points: number, durationSeconds: number): Limiter {
    const options = { points, duration: durationSeconds, keyPrefix };
    if (!this.redis) return new RateLimiterMemory(options);
    const redisOptions: IRateLimiterStoreOptions = {
      ...options,
      storeClient: this.redis,
      insuranceLimiter: new RateLimiterMemory(options),
    };
    return new RateLimiterRedis(redisOptions);
  }

  onModuleDestroy(): void {
    this.redis?.disconnect();
  }
}
