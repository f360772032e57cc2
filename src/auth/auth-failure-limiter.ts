import { Injectable, Logger } from '@nestjs/common';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { AppConfig } from '../config/app-config';
import { hashApiKey } from './api-key-secret';
import { Limiter, RateLimitStore } from './rate-limit-store';

export const FAILURE_WINDOW_SECONDS = 60;

/** What one more refused request does to the counters. */
export interface FailureVerdict {
  /** Past the limit for its address or its key: answer 429 instead of 401/403. */
  limited: boolean;
  retryAfterSeconds: number;
  /** Counters this request took over the limit: each crossing happens once per window (alert then). */
  crossed: Array<'address' | 'key'>;
}

/** The counter key of a presented key that is not (or no longer) valid: a hash, never the key. */
export function presentedKeyIdentity(presented: string): string {
  return `presented:${hashApiKey(presented).slice(0, 32)}`;
}

/** The counter key of a known key. */
export function knownKeyIdentity(keyId: string): string {
  return `key:${keyId}`;
}

/**
 * Counts refused requests (401 and 403) per client address and per key over a minute:
 * AUTH_FAILURES_PER_MINUTE are answered as usual, the ones after that get 429 until the
 * window ends. Successful requests are never counted, so heavy but valid traffic from one
 * address (a proxy, a benchmark) is not limited by this. Shared through Redis like the
 * per-key rate limit.
 */
@Injectable()
export class AuthFailureLimiter {
  private readonly logger = new Logger(AuthFailureLimiter.name);
  private readonly byAddress: Limiter;
  private readonly byKey: Limiter;
  readonly limit: number;

  constructor(config: AppConfig, store: RateLimitStore) {
    this.limit = config.abuse.authFailuresPerMinute;
    this.byAddress = store.limiter('idgate:authfail:address', this.limit, FAILURE_WINDOW_SECONDS);
    this.byKey = store.limiter('idgate:authfail:key', this.limit, FAILURE_WINDOW_SECONDS);
  }

  /**
   * Seconds until `identity` may fail again when it has already used up its failures, else null.
   * Asked before looking a presented key up: a key that keeps failing is refused without a query.
   */
  async keyExhausted(identity: string): Promise<number | null> {
    try {
      const state = await this.byKey.get(identity);
      return state && state.consumedPoints >= this.limit ? retryAfter(state) : null;
    } catch {
      return null;
    }
  }

  /** Counts one refused request of `source` (and `keyIdentity` when the request named a key). */
  async registerFailure(source: string, keyIdentity: string | null): Promise<FailureVerdict> {
    const verdict: FailureVerdict = { limited: false, retryAfterSeconds: 0, crossed: [] };
    const judge = (state: RateLimiterRes | null, dimension: 'address' | 'key') => {
      if (!state || state.consumedPoints <= this.limit) return;
      verdict.limited = true;
      verdict.retryAfterSeconds = Math.max(verdict.retryAfterSeconds, retryAfter(state));
      if (state.consumedPoints === this.limit + 1) verdict.crossed.push(dimension);
    };
    judge(await this.count(this.byAddress, source), 'address');
    // An address already past its limit opens no counter for each key it makes up (memory stays bounded).
    if (keyIdentity !== null && !verdict.limited) judge(await this.count(this.byKey, keyIdentity), 'key');
    return verdict;
  }

  private async count(limiter: Limiter, key: string): Promise<RateLimiterRes | null> {
    try {
      return await limiter.consume(key);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return rejection;
      // Counting must not turn a refusal into an error: without a count the request is answered as usual.
      this.logger.warn('could not count a refused request');
      return null;
    }
  }
}

function retryAfter(state: RateLimiterRes): number {
  return Math.max(1, Math.ceil(state.msBeforeNext / 1000));
}
