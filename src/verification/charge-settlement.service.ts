import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import { PrismaService } from '../database/prisma.service';
import type { Transaction } from '../database/transaction';
import { VerificationStore } from './verification.store';

export interface ChargeSettlement {
  verificationId: string;
  /** What the vendor's statement says: on it as charged, or absent from it (or on it as not charged). */
  charged: boolean;
  /**
   * The vendor's trace id, when the statement taught it to us (a call that timed
   * out before any answer): recorded so later statements match it by trace id.
   * Ignored when the verification already has one.
   */
  traceId?: string | null;
}

export interface SettledCharge {
  verificationId: string;
  chargeStatus: 'charged' | 'not_charged';
  amount: number;
}

/** Why charges are being settled, for the audit trail (no PII). */
export interface SettlementSource {
  source: 'reconciliation';
  reconciliationId: string;
}

const BATCH = 5000;

/**
 * The verification module's one write path for billing (SPEC §7): settles the
 * charge of verifications whose upstream outcome was `unknown`, from the
 * vendor's statement.
 *
 * Rules:
 * - Only rows with `status = 'unknown'` and `charge_status = 'unknown'` change;
 *   anything else (already settled, still pending, answered late) is left alone,
 *   so settling twice is a no-op the second time.
 * - `charge_status` becomes `charged` (amount = the row's own `unit_price`, the
 *   price in force when the call was made) or `not_charged` (amount 0).
 * - `status` stays `unknown`: it says the caller never learnt the upstream's
 *   answer (result, OCR fields), which is still true; only the charge is known
 *   now. The CHECK constraints hold: `(charge_status = 'unknown') = (amount IS NULL)`,
 *   and the completed-row check does not apply to `unknown` rows.
 * - One `verification.settled` audit event per settled verification, in the
 *   caller's transaction (or one of its own when none is given).
 */
@Injectable()
export class ChargeSettlementService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly store: VerificationStore,
    private readonly audit: AuditService,
  ) {}

  /** Returns the verifications actually settled (those still unknown). */
  async settleUnknownCharges(
    tx: Transaction | undefined,
    settlements: readonly ChargeSettlement[],
    context: AuditContext,
    why: SettlementSource,
  ): Promise<SettledCharge[]> {
    if (settlements.length === 0) return [];
    if (!tx) return this.prisma.$transaction((own) => this.settleUnknownCharges(own, settlements, context, why));
    const settled: SettledCharge[] = [];
    for (let i = 0; i < settlements.length; i += BATCH) {
      const batch = settlements.slice(i, i + BATCH);
      const rows = await this.store.settleUnknownCharges(tx, batch);
      await this.audit.recordMany(
        tx,
        context,
        rows.map((row) => ({
          action: 'verification.settled' as const,
          target: { type: 'verification', id: row.id },
          details: {
            charge_status: row.chargeStatus,
            amount: row.amount,
            currency: row.currency,
            previous_charge_status: 'unknown',
            source: why.source,
            reconciliation_id: why.reconciliationId,
            ...(row.upstreamTraceId ? { upstream_trace_id: row.upstreamTraceId } : {}),
            ...(row.learntTraceId ? { trace_id_from_statement: true } : {}),
          },
          idCardHmac: row.idCardHmac,
        })),
      );
      for (const row of rows)
        settled.push({ verificationId: row.id, chargeStatus: row.chargeStatus, amount: row.amount });
    }
    return settled;
  }
}
