import { Injectable, Logger } from '@nestjs/common';
import {
  BrokenCircuitError,
  circuitBreaker,
  CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  handleWhenResult,
  IsolatedCircuitError,
} from 'cockatiel';
import { AppConfig } from '../config/app-config';
import type { AttemptOutcome } from './upstream-response';
import { UpstreamMetrics } from './upstream.metrics';
import type { CircuitStateName } from './upstream.types';

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'isolated',
};

/**
 * Outcomes that say the upstream itself is unwell. A 4xx (ours to fix, or a rate limit
 * the retry already handles) and an ordinary answer do not count.
 */
export function isUpstreamFailure(outcome: AttemptOutcome): boolean {
  switch (outcome.kind) {
    case 'indeterminate':
      return true;
    case 'unsent':
      // A pooled socket the upstream had closed says nothing about its health (it is retried at once).
      return outcome.reason !== 'circuit_open' && outcome.reason !== 'reused_socket_closed';
    case 'answered':
      return outcome.result === '-4' || outcome.result === '-6';
    case 'rejected':
      return false;
  }
}

export interface CircuitView {
  state: CircuitStateName;
  /** While open: seconds until a trial call is let through (at least 1). */
  retryAfterSeconds: number | null;
}

/**
 * Whether a new verification may go on to call the upstream. Asked before anything
 * is written, so that a refused request leaves no trace. `trial` marks the one call
 * let through after the cool-down; `release()` must follow the call (or its abandonment).
 */
export type CallPermission =
  | { admitted: true; trial: boolean; release(): void }
  | { admitted: false; state: CircuitStateName; retryAfterSeconds: number };

const NOTHING_TO_RELEASE = () => undefined;

/**
 * The upstream circuit breaker (cockatiel): opens after `breakerThreshold` consecutive
 * upstream failures, refuses calls at once while open, and lets one trial call through
 * after `breakerCooldownMs` (half-open): success closes it, failure re-opens it for
 * another cool-down. Shared by every verification in this process.
 *
 * cockatiel moves to half-open only inside `execute()`. Verifications ask
 * `permitCall()` before recording anything, so the breaker itself must hand out the
 * trial: after the cool-down, the first request to ask becomes the trial and every
 * other one is refused until the trial's call has ended.
 */
@Injectable()
export class UpstreamCircuit {
  private readonly logger = new Logger(UpstreamCircuit.name);
  private readonly policy: CircuitBreakerPolicy;
  private readonly cooldownMs: number;
  private openedAt: number | null = null;
  /** Set while a trial call has been handed out and has not ended. */
  private trial: { token: number; since: number } | null = null;
  private trialTokens = 0;
  /** A trial never released (a bug) must not keep the breaker shut for good. */
  private readonly trialExpiryMs: number;

  constructor(config: AppConfig, metrics: UpstreamMetrics) {
    this.cooldownMs = config.upstream.breakerCooldownMs;
    const { timeoutMs, maxAttempts, retryMaxDelayMs } = config.upstream;
    this.trialExpiryMs = (timeoutMs + retryMaxDelayMs) * maxAttempts + 60_000;
    this.policy = circuitBreaker(
      handleWhenResult((r) => isUpstreamFailure(r as AttemptOutcome)),
      {
        halfOpenAfter: this.cooldownMs,
        breaker: new ConsecutiveBreaker(config.upstream.breakerThreshold),
      },
    );
    this.policy.onStateChange((state) => {
      const name = STATE_NAMES[state];
      if (state === CircuitState.Open) this.openedAt = Date.now();
      metrics.recordCircuitState(name);
      if (state === CircuitState.Open)
        this.logger.warn('Upstream circuit opened: verifications get 503 until it recovers');
      else if (state === CircuitState.Closed) this.logger.log('Upstream circuit closed: calls flow again');
    });
  }

  /** Runs one attempt through the breaker; throws CircuitOpenError while it is open. */
  async execute(attempt: () => Promise<AttemptOutcome>): Promise<AttemptOutcome> {
    try {
      return await this.policy.execute(attempt);
    } catch (err) {
      if (err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError) throw new CircuitOpenError();
      throw err;
    }
  }

  permitCall(now = Date.now()): CallPermission {
    const state = this.policy.state;
    if (state === CircuitState.Closed) return { admitted: true, trial: false, release: NOTHING_TO_RELEASE };
    if (this.trial && now - this.trial.since > this.trialExpiryMs) this.trial = null;
    const cooledDown = this.openedAt !== null && now - this.openedAt >= this.cooldownMs;
    if (state === CircuitState.Open && cooledDown && this.trial === null) {
      const token = ++this.trialTokens;
      this.trial = { token, since: now };
      return {
        admitted: true,
        trial: true,
        release: () => {
          if (this.trial?.token === token) this.trial = null;
        },
      };
    }
    const view = this.view();
    return { admitted: false, state: view.state, retryAfterSeconds: view.retryAfterSeconds ?? 1 };
  }

  view(): CircuitView {
    const state = STATE_NAMES[this.policy.state];
    if (state !== 'open' && state !== 'half_open' && state !== 'isolated') return { state, retryAfterSeconds: null };
    // Open past its cool-down, or half-open: a trial call decides within about a second or a call's time.
    const remainingMs =
      state !== 'open' || this.openedAt === null ? 1000 : this.openedAt + this.cooldownMs - Date.now();
    return { state, retryAfterSeconds: Math.max(1, Math.ceil(remainingMs / 1000)) };
  }

  /** Holds the circuit open by hand (operations, tests) until the handle is disposed. */
  isolate(): { dispose(): void } {
    return this.policy.isolate();
  }
}

export class CircuitOpenError extends Error {
  constructor() {
    super('upstream circuit open');
    this.name = 'CircuitOpenError';
  }
}
