import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import { PrismaService } from '../database/prisma.service';
import type { Tx } from './verification.store';

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
    private readonly audit: AuditService,
  ) {}

  /** Returns the verifications actually settled (those still unknown). */
  async settleUnknownCharges(
    tx: Tx | undefined,
    settlements: readonly ChargeSettlement[],
    context: AuditContext,
    why: SettlementSource,
  ): Promise<SettledCharge[]> {
    if (settlements.length === 0) return [];
    if (!tx) return this.prisma.$transaction((own) => this.settleUnknownCharges(own, settlements, context, why));
    const settled: SettledCharge[] = [];
    for (let i = 0; i < settlements.length; i += BATCH) {
      const batch = settlements.slice(i, i + BATCH);
      const rows = await tx.$queryRaw<
        Array<{
          id: string;
          charge_status: 'charged' | 'not_charged';
          amount: number;
          currency: string;
          id_card_hmac: string | null;
          upstream_trace_id: string | null;
          learnt_trace_id: boolean;
        }>
      >`
        UPDATE verifications v
        SET charge_status = (CASE WHEN s.charged THEN 'charged' ELSE 'not_charged' END)::"ChargeStatus",
            amount = CASE WHEN s.charged THEN v.unit_price ELSE 0 END,
            upstream_trace_id = COALESCE(v.upstream_trace_id, s.trace_id)
        FROM unnest(
          ${batch.map((s) => s.verificationId)}::text[],
          ${batch.map((s) => s.charged)}::boolean[],
          ${batch.map((s) => s.traceId ?? null)}::text[]
        ) AS s(id, charged, trace_id)
        WHERE v.id = s.id::uuid AND v.status = 'unknown' AND v.charge_status = 'unknown'
        RETURNING v.id::text AS id, v.charge_status::text AS charge_status, v.amount, v.currency,
                  v.id_card_hmac, v.upstream_trace_id, (s.trace_id IS NOT NULL AND v.upstream_trace_id = s.trace_id) AS learnt_trace_id`;
      for (const row of rows) {
        await this.audit.record(tx, context, {
          action: 'verification.settled',
          target: { type: 'verification', id: row.id },
          details: {
            charge_status: row.charge_status,
            amount: row.amount,
            currency: row.currency,
            previous_charge_status: 'unknown',
            source: why.source,
            reconciliation_id: why.reconciliationId,
            ...(row.upstream_trace_id ? { upstream_trace_id: row.upstream_trace_id } : {}),
            ...(row.learnt_trace_id ? { trace_id_from_statement: true } : {}),
          },
          idCardHmac: row.id_card_hmac,
        });
        settled.push({ verificationId: row.id, chargeStatus: row.charge_status, amount: row.amount });
      }
    }
    return settled;
  }
}
