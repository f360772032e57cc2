import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';
import { AuditService } from './audit.service';
import type { AuditContext } from './audit-vocabulary';

/**
 * Why a security alert was raised. A fixed list: dashboards and compliance reports
 * branch on these names.
 */
export const SECURITY_ALERT_REASONS = [
  /** A key spent its hourly budget of exact-match personal-data searches. */
  'pii_search_budget_exhausted',
  /** A source or key sent more failed or refused requests than allowed. */
  'auth_failures_exceeded',
  /** A key that reads personal data in full was created (CLI, or API with a second key's approval). */
  'full_pii_key_created',
  /** An attempt to create such a key without a valid approval. */
  'full_pii_key_refused',
  /** The audit chain failed verification where it was about to be signed. */
  'audit_chain_broken',
  /** An API key row without a valid MAC was presented: inserted or changed by someone with database access. */
  'api_key_tampered',
  /** A key revoked on the audit trail was presented while its row says active: revocation undone in the database. */
  'api_key_revocation_undone',
  /** The audit chain has not been sealed for longer than sealing ever takes: events could be removed before they are chained. */
  'audit_sealing_stalled',
] as const;
export type SecurityAlertReason = (typeof SECURITY_ALERT_REASONS)[number];

/** The same alert (reason, actor, target) is written at most once per window; the metric counts every one. */
export const ALERT_WINDOW_MS = 60_000;
const MAX_TRACKED_ALERTS = 10_000;

/**
 * An alert is an audit event `security.alert` (with its reason and details, never
 * personal data or secrets) plus the metric `idgate_security_alerts_total{reason}`.
 * Recording is best effort: the alert must never turn a refusal into an error. Repeats
 * of one alert within ALERT_WINDOW_MS are counted, not written again: the next event
 * after the window says how many it stands for (`repeated`), so an attacker who keeps
 * provoking an alert cannot flood the audit trail with it.
 */
@Injectable()
export class SecurityAlerts {
  readonly registry = new Registry();
  private readonly raised: Counter<'reason'>;
  private readonly recent = new Map<string, { writtenAt: number; repeated: number }>();

  constructor(private readonly audit: AuditService) {
    this.raised = new Counter({
      name: 'idgate_security_alerts_total',
      help: 'Security alerts raised by this instance, by reason (each is also an audit event security.alert)',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    for (const reason of SECURITY_ALERT_REASONS) this.raised.inc({ reason }, 0);
  }

  async raise(
    context: AuditContext,
    reason: SecurityAlertReason,
    details: Record<string, unknown> = {},
    target: { type: string; id: string | null } | null = null,
  ): Promise<void> {
    this.raised.inc({ reason });
    // Identical repeats only: another source, key or scope in the details is another alert.
    const key = `${reason}|${context.actor.type}:${context.actor.id ?? ''}|${target?.type ?? ''}:${target?.id ?? ''}|${JSON.stringify(details)}`;
    const now = Date.now();
    const seen = this.recent.get(key);
    if (seen && now - seen.writtenAt < ALERT_WINDOW_MS) {
      seen.repeated++;
      return;
    }
    this.recent.delete(key);
    this.recent.set(key, { writtenAt: now, repeated: 0 });
    for (const oldest of this.recent.keys()) {
      if (this.recent.size <= MAX_TRACKED_ALERTS) break;
      this.recent.delete(oldest);
    }
    await this.audit.recordBestEffort(context, {
      action: 'security.alert',
      outcome: 'denied',
      target,
      details: { reason, ...details, ...(seen?.repeated ? { repeated: seen.repeated } : {}) },
    });
  }
}
