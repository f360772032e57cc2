import { Injectable } from '@nestjs/common';
import { ProblemException } from '../common/problem';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../database/prisma.service';
import type { AuditEventInput } from './audit-event-row';
import { AuditService } from './audit.service';
import type { AuditContext } from './audit-vocabulary';
import { SecurityAlerts } from './security-alerts.service';
import { lockForTransaction } from '../database/transaction';

/** The sliding window of the budget. */
export const PII_SEARCH_WINDOW_MS = 60 * 60 * 1000;

/**
 * The audit events that record an exact-match search by ID number or name (both endpoints), and
 * an Idempotency-Key sent again with another body: its 422 (against the replay of the same body)
 * tells whether a guessed name and ID number are those of the stored request.
 */
export const PII_SEARCH_ACTIONS = ['verification.searched', 'audit.searched', 'idempotency.mismatched'] as const;
export type PiiSearchAction = (typeof PII_SEARCH_ACTIONS)[number];

/** Seconds until a budget that is spent frees a search: when its oldest search leaves the window. */
export function budgetRetryAfterSeconds(oldestInWindow: Date | null, now: Date): number {
  if (oldestInWindow === null) return 1;
  return Math.max(1, Math.ceil((oldestInWindow.getTime() + PII_SEARCH_WINDOW_MS - now.getTime()) / 1000));
}

/**
 * The hourly budget of exact-match personal-data searches per API key (PII_SEARCH_PER_HOUR),
 * shared by POST /v1/verifications/search and POST /v1/audit/events/search. Each such search
 * is an audit event, so the budget is counted on the audit trail itself: it holds across
 * instances and restarts without anything else to share, and the count is what compliance
 * sees. Checking the count and recording the search happen in one transaction under a per-key
 * advisory lock, so concurrent searches cannot overspend it.
 *
 * Over budget: 429 with Retry-After, and a security alert (`pii_search_budget_exhausted`),
 * once per key and window, so a loop of refused searches cannot flood the audit trail.
 *
 * Part of the audit module because it counts on the audit trail; the verification module
 * uses it through this exported service.
 */
@Injectable()
export class PiiSearchBudget {
  /** Keys this process raised the alert for, until when: covers the alert not yet committed. */
  private readonly alertedUntil = new Map<string, number>();

  private readonly perHour: number;

  constructor(
    private readonly prisma: PrismaService,
    private readonly audit: AuditService,
    private readonly alerts: SecurityAlerts,
    config: AppConfig,
  ) {
    this.perHour = config.abuse.piiSearchesPerHour;
  }

  /**
   * Records the search event if the caller's key has budget left; otherwise raises the alert
   * (once per window) and throws 429. Nothing is searched before this returns.
   */
  async spend(
    context: AuditContext,
    event: AuditEventInput & { action: PiiSearchAction },
    clientId: string | null = null,
  ): Promise<void> {
    const keyId = context.actor.type === 'api_key' ? context.actor.id : null;
    if (keyId === null) {
      await this.audit.recordStandalone(context, event);
      return;
    }
    // A client's keys share one budget: an admin who mints fresh client keys gains no searches.
    const scope = clientId !== null ? `client:${clientId}` : `key:${keyId}`;
    event = { ...event, details: { ...event.details, budget_scope: scope } };
    const now = new Date();
    const since = new Date(now.getTime() - PII_SEARCH_WINDOW_MS);
    const verdict = await this.prisma.$transaction(
      async (tx) => {
        await lockForTransaction(tx, `idgate.pii-search.${scope}`);
        // Per key as before (events without a scope), and per scope: a client's keys share it.
        const used = await this.used(tx, scope, keyId, since);
        if (Number(used.searches) < this.perHour) {
          await this.audit.record(tx, context, event);
          return { spent: false as const };
        }
        const [alerted] = await tx.$queryRaw<Array<{ found: boolean }>>`
          SELECT EXISTS (
            SELECT 1 FROM audit_events
            WHERE actor_type = 'api_key' AND actor_id = ${keyId} AND occurred_at > ${since}
              AND action = 'security.alert' AND details->>'reason' = 'pii_search_budget_exhausted'
          ) AS found`;
        return { spent: true as const, oldest: used.oldest, alerted: alerted.found };
      },
      // A search refused for want of a connection is a 503 like any other; wait as long as audit writes do.
      { maxWait: 10_000 },
    );
    if (!verdict.spent) return;

    if (!verdict.alerted && (this.alertedUntil.get(keyId) ?? 0) <= now.getTime()) {
      for (const [id, until] of this.alertedUntil) if (until <= now.getTime()) this.alertedUntil.delete(id);
      this.alertedUntil.set(keyId, now.getTime() + PII_SEARCH_WINDOW_MS);
      await this.alerts.raise(
        context,
        'pii_search_budget_exhausted',
        {
          limit_per_hour: this.perHour,
          budget_scope: scope,
          endpoint: event.action === 'audit.searched' ? 'audit' : 'verifications',
        },
        { type: 'api_key', id: keyId },
      );
    }
    throw this.exhausted(clientId, verdict.oldest, now);
  }

  /**
   * Throws the budget's 429 when the caller has none left, without spending any. For answers
   * that confirm a guess when they succeed (a replay of the stored body under an Idempotency-Key
   * whose other bodies spend the budget): past the budget, right and wrong guesses look alike.
   */
  async ensureLeft(context: AuditContext, clientId: string | null = null): Promise<void> {
    const keyId = context.actor.type === 'api_key' ? context.actor.id : null;
    if (keyId === null) return;
    const scope = clientId !== null ? `client:${clientId}` : `key:${keyId}`;
    const now = new Date();
    const used = await this.used(this.prisma, scope, keyId, new Date(now.getTime() - PII_SEARCH_WINDOW_MS));
    if (Number(used.searches) >= this.perHour) throw this.exhausted(clientId, used.oldest, now);
  }

  /** Exact-match lookups in the window: per key as before (events without a scope), and per scope (a client's keys share it). */
  private async used(
    db: Pick<PrismaService, '$queryRaw'>,
    scope: string,
    keyId: string,
    since: Date,
  ): Promise<{ searches: bigint; oldest: Date | null }> {
    const [used] = await db.$queryRaw<Array<{ searches: bigint; oldest: Date | null }>>`
      SELECT count(*)::bigint AS searches, min(occurred_at) AS oldest FROM audit_events
      WHERE occurred_at > ${since} AND action IN ('verification.searched', 'audit.searched', 'idempotency.mismatched')
        AND (details->>'budget_scope' = ${scope}
             OR (details->>'budget_scope' IS NULL AND actor_type = 'api_key' AND actor_id = ${keyId}))`;
    return used;
  }

  private exhausted(clientId: string | null, oldest: Date | null, now: Date): ProblemException {
    const retryAfter = budgetRetryAfterSeconds(oldest, now);
    return new ProblemException(
      'rate-limited',
      clientId !== null
        ? `This client app's keys have used their ${this.perHour} searches by ID number or name for this hour.`
        : `This API key has used its ${this.perHour} searches by ID number or name for this hour.`,
      { retry_after_seconds: retryAfter },
      { 'Retry-After': String(retryAfter) },
    );
  }
}
