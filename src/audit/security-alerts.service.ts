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
] as const;
export type SecurityAlertReason = (typeof SECURITY_ALERT_REASONS)[number];

/**
 * An alert is an audit event `security.alert` (with its reason and details, never
 * personal data or secrets) plus the metric `idgate_security_alerts_total{reason}`.
 * Recording is best effort: the alert must never turn a refusal into an error.
 */
@Injectable()
export class SecurityAlerts {
  readonly registry = new Registry();
  private readonly raised: Counter<'reason'>;

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
    await this.audit.recordBestEffort(context, {
      action: 'security.alert',
      outcome: 'denied',
      target,
      details: { reason, ...details },
    });
  }
}
