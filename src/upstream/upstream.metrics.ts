import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CircuitStateName, UpstreamOutcome } from './upstream.types';

const CIRCUIT_STATE_VALUES: Record<CircuitStateName, number> = { closed: 0, open: 1, half_open: 2, isolated: 3 };

/**
 * Causes of a safe retry (`retryCause` in upstream.client.ts), exported at 0 from the start so
 * that a rate or an alert on any of them has a series to work with. `reused_socket_closed`: a
 * kept-alive socket the upstream had closed before it carried the request (not charged).
 */
export const RETRY_CAUSES = [
  'connection_refused',
  'unreachable',
  'reused_socket_closed',
  'http_429',
  'result_-4',
  'result_-6',
] as const;

/**
 * Prometheus metrics of the upstream client, in a registry of their own so that several
 * app instances in one process (tests) never collide; the `/metrics` endpoint merges
 * `registry` with the others (`Registry.merge`).
 */
@Injectable()
export class UpstreamMetrics {
  readonly registry = new Registry();

  /** One per verification handed to the client, by final outcome. */
  private readonly calls = new Counter({
    name: 'idgate_upstream_calls_total',
    help: 'Upstream verifications by outcome (answered, rejected, indeterminate, unsent), result code and reason.',
    labelNames: ['outcome', 'result', 'reason'] as const,
    registers: [this.registry],
  });

  /** Every HTTP request actually made (retries included). */
  private readonly attempts = new Counter({
    name: 'idgate_upstream_attempts_total',
    help: 'HTTP requests sent to the upstream, retries included.',
    registers: [this.registry],
  });

  private readonly retries = new Counter({
    name: 'idgate_upstream_retries_total',
    help:
      'Safe retries (connection refused or unreachable, a reused keep-alive socket the upstream had closed ' +
      'before it carried the request, 429, result -4 / -6), by what caused them.',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });

  private readonly charged = new Counter({
    name: 'idgate_upstream_charged_calls_total',
    help: 'Upstream calls answered with a charged result code (0, -1).',
    registers: [this.registry],
  });

  private readonly latency = new Histogram({
    name: 'idgate_upstream_call_duration_seconds',
    help: 'Wall time of an upstream verification, retries and backoff included.',
    labelNames: ['outcome'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly circuit = new Gauge({
    name: 'idgate_upstream_circuit_state',
    help: 'Upstream circuit breaker: 0 closed, 1 open, 2 half-open, 3 held open.',
    registers: [this.registry],
  });

  constructor() {
    this.circuit.set(0);
    for (const cause of RETRY_CAUSES) this.retries.inc({ cause }, 0);
  }

  recordOutcome(outcome: UpstreamOutcome): void {
    const result = outcome.kind === 'answered' ? outcome.result : '';
    const reason =
      outcome.kind === 'indeterminate' || outcome.kind === 'unsent'
        ? outcome.reason
        : outcome.kind === 'rejected'
          ? String(outcome.httpStatus)
          : '';
    this.calls.inc({ outcome: outcome.kind, result, reason });
    this.latency.observe({ outcome: outcome.kind }, outcome.durationMs / 1000);
    if (outcome.kind === 'answered' && outcome.charged) this.charged.inc();
  }

  recordAttempt(): void {
    this.attempts.inc();
  }

  recordRetry(cause: string): void {
    this.retries.inc({ cause });
  }

  recordCircuitState(state: CircuitStateName): void {
    this.circuit.set(CIRCUIT_STATE_VALUES[state]);
  }
}
