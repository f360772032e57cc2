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
      return outcome.reason !== 'circuit_open';
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
 * The upstream circuit breaker (cockatiel): opens after `breakerThreshold` consecutive
 * upstream failures, refuses calls at once while open, and lets one trial call through
 * after `breakerCooldownMs`. Shared by every verification in this process.
 */
@Injectable()
export class UpstreamCircuit {
  private readonly logger = new Logger(UpstreamCircuit.name);
  private readonly policy: CircuitBreakerPolicy;
  private readonly cooldownMs: number;
  private openedAt: number | null = null;

  constructor(config: AppConfig, metrics: UpstreamMetrics) {
    this.cooldownMs = config.upstream.breakerCooldownMs;
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

  view(): CircuitView {
    const state = STATE_NAMES[this.policy.state];
    if (state !== 'open' && state !== 'half_open' && state !== 'isolated') return { state, retryAfterSeconds: null };
    const remainingMs = this.openedAt === null ? this.cooldownMs : this.openedAt + this.cooldownMs - Date.now();
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
