import { BeforeApplicationShutdown, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditEventInput } from '../audit/audit-event-row';
import type { AuditContext, Outcome } from '../audit/audit-vocabulary';
import { SecurityAlerts } from '../audit/security-alerts.service';
import { PrismaService } from '../database/prisma.service';
import { ProblemException } from '../common/problem';
import { AuthFailureLimiter, FAILURE_WINDOW_SECONDS, FailureVerdict, knownKeyIdentity } from './auth-failure-limiter';
import { limiterSource } from '../common/client-address';
import { FailureAggregator, Summary } from './failure-aggregator';

/** Refusals recorded on their own per minute and instance, whatever their source; the rest are summarised. */
export const MAX_INDIVIDUAL_REFUSALS_PER_WINDOW = 1000;
/** Open aggregation windows held in memory; refusals from further sources share an overflow summary. */
export const MAX_REFUSAL_BUCKETS = 10_000;
/** How often closed windows are written out. */
const FLUSH_INTERVAL_MS = 5_000;

/** One refused request (401 or 403), as the guard saw it. */
export interface Refusal {
  action: 'auth.failed' | 'auth.denied';
  outcome: Outcome;
  reason: string;
  context: AuditContext;
  /** The counting unit for the address (see limiterSource). */
  source: string;
  endpoint: string;
  /** Counter key of the key it named (presented or known), or null. */
  keyIdentity: string | null;
  /** A key id when refusals are to be summarised per key (a small set), else null. */
  subject: string | null;
  keyPrefix: string | null;
  /** Details of the event as recorded when it is recorded on its own. */
  details: Record<string, unknown>;
}

interface Pending {
  context: AuditContext;
  outcome: Outcome;
  source: string;
  subject: string | null;
  keyPrefix: string | null;
}

/**
 * Refused requests: counted (AuthFailureLimiter), audited without flooding the trail
 * (FailureAggregator), and a security alert when a source or key crosses its limit.
 */
@Injectable()
export class AuthFailures implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly aggregator = new FailureAggregator<Pending>({
    windowMs: FAILURE_WINDOW_SECONDS * 1000,
    maxIndividualPerWindow: MAX_INDIVIDUAL_REFUSALS_PER_WINDOW,
    maxBuckets: MAX_REFUSAL_BUCKETS,
  });
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly limiter: AuthFailureLimiter,
    private readonly audit: AuditService,
    private readonly alerts: SecurityAlerts,
    private readonly prisma: PrismaService,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Shutdown: what was counted but not yet written is written before the pool closes. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.prisma.keepOpenFor(this.flush(true));
  }

  get limit(): number {
    return this.limiter.limit;
  }

  keyExhausted(identity: string): Promise<number | null> {
    return this.limiter.keyExhausted(identity);
  }

  /** Counts and audits a refusal; the verdict says whether to answer 429 instead of 401/403. */
  async refuse(refusal: Refusal): Promise<FailureVerdict> {
    const verdict = await this.limiter.registerFailure(refusal.source, refusal.keyIdentity);
    for (const dimension of verdict.crossed) {
      await this.alerts.raise(
        refusal.context,
        'auth_failures_exceeded',
        {
          dimension,
          ...(dimension === 'address' ? { source: refusal.source } : { key_prefix: refusal.keyPrefix }),
          limit: this.limiter.limit,
          window_seconds: FAILURE_WINDOW_SECONDS,
        },
        { type: 'endpoint', id: refusal.endpoint },
      );
    }
    const reason = verdict.limited ? 'too_many_failures' : refusal.reason;
    const details = verdict.limited ? { ...refusal.details, reason, refused_reason: refusal.reason } : refusal.details;
    await this.note({ ...refusal, reason, details });
    return verdict;
  }

  /**
   * A refusal decided by a handler after the guard let the request in (a role that may call
   * an endpoint but not do this with it): audited like the guard's refusals (the first per
   * source, reason and minute on its own, the rest summarised), and answered 429 once the key
   * is past its failure limit — so handler refusals can neither flood the trail nor go on
   * for free. The guard's response hook counts it (as any 401/403).
   */
  async refuseAfterGuard(
    principal: { keyId: string; keyPrefix: string },
    context: AuditContext,
    spec: {
      endpoint: string;
      reason: string;
      detail: string;
      details?: Record<string, unknown>;
    },
  ): Promise<never> {
    const keyIdentity = knownKeyIdentity(principal.keyId);
    const retryAfter = await this.limiter.keyExhausted(keyIdentity);
    const details = { reason: spec.reason, key_prefix: principal.keyPrefix, ...spec.details };
    await this.note({
      action: 'auth.denied',
      outcome: 'denied',
      reason: retryAfter !== null ? 'too_many_failures' : spec.reason,
      context,
      source: limiterSource(context.ip ?? null),
      endpoint: spec.endpoint,
      keyIdentity,
      subject: principal.keyId,
      keyPrefix: principal.keyPrefix,
      details: retryAfter !== null ? { ...details, reason: 'too_many_failures', refused_reason: spec.reason } : details,
    });
    if (retryAfter !== null) {
      throw new ProblemException(
        'rate-limited',
        `Too many refused requests with this key (${this.limiter.limit} a minute are answered); try again in ${retryAfter} s.`,
        { retry_after_seconds: retryAfter },
        { 'Retry-After': String(retryAfter) },
      );
    }
    throw new ProblemException('forbidden', spec.detail);
  }

  /** Counts a 401/403 answered elsewhere than the guard (it audits its own refusals). */
  async countOnly(source: string, keyIdentity: string | null): Promise<void> {
    await this.limiter.registerFailure(source, keyIdentity);
  }

  /** Writes the summaries of closed windows (all open ones with `force`); returns how many. */
  async flush(force = false): Promise<number> {
    const closed = force ? this.aggregator.closeAll() : this.aggregator.closeExpired();
    await this.writeSummaries(closed);
    return closed.length;
  }

  private async note(refusal: Refusal): Promise<void> {
    const { recordNow, closed } = this.aggregator.note(
      {
        action: refusal.action,
        reason: refusal.reason,
        source: refusal.source,
        subject: refusal.subject,
        endpoint: refusal.endpoint,
        keyPrefix: refusal.keyPrefix,
      },
      {
        context: refusal.context,
        outcome: refusal.outcome,
        source: refusal.source,
        subject: refusal.subject,
        keyPrefix: refusal.keyPrefix,
      },
    );
    if (closed.length > 0) void this.prisma.keepOpenFor(this.writeSummaries(closed));
    if (recordNow) {
      await this.audit.recordBestEffort(refusal.context, {
        action: refusal.action,
        outcome: refusal.outcome,
        target: { type: 'endpoint', id: refusal.endpoint },
        details: refusal.details,
      });
    }
  }

  private async writeSummaries(summaries: Summary<Pending>[]): Promise<void> {
    for (const summary of summaries) {
      const { context, event } = summaryEvent(summary);
      await this.audit.recordBestEffort(context, event);
    }
  }
}

/** The audit event standing for the refusals of one window that were not recorded on their own. */
export function summaryEvent(summary: Summary<Pending>): { context: AuditContext; event: AuditEventInput } {
  const first = summary.first;
  const context: AuditContext = summary.overflow
    ? { actor: { type: 'anonymous', id: null, role: null }, requestId: null, ip: null }
    : { actor: first.context.actor, requestId: null, ip: first.context.ip ?? null };
  const details: Record<string, unknown> = {
    reason: summary.reason,
    aggregated: true,
    count: summary.count,
    window_start: new Date(summary.windowStart).toISOString(),
    window_end: new Date(summary.windowEnd).toISOString(),
    endpoints: summary.endpoints,
  };
  if (summary.overflow) details.sources = 'many';
  else if (first.source !== (first.context.ip ?? null)) details.source = first.source;
  if (!summary.overflow && first.subject !== null) details.key_prefix = first.keyPrefix;
  if (summary.keyPrefixes.length > 0) details.key_prefixes = summary.keyPrefixes;
  return {
    context,
    event: {
      action: summary.action as AuditEventInput['action'],
      outcome: first.outcome,
      target: summary.endpoints.length === 1 ? { type: 'endpoint', id: summary.endpoints[0] } : null,
      details,
    },
  };
}
