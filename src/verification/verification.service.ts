import { Injectable, Logger } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import type { Principal } from '../auth/roles';
import { ProblemException } from '../common/problem';
import { maskIdCardNumber } from '../domain/id-card-number';
import { PrismaService } from '../database/prisma.service';
import { PriceService } from '../billing/pricing/price.service';
import { UpstreamClient } from '../upstream/upstream.client';
import { UpstreamOutcome } from '../upstream/upstream.types';
import { ClientPolicyService } from './client-policy.service';
import { VerificationMetrics } from './verification.metrics';
import { amountFor, checkLocally, quotaPeriods, settle, Settlement } from './verification-rules';
import { Tx, VerificationBase, VerificationStore } from './verification.store';
import { Channel, Mode, VerificationRecord, VerificationRequest } from './verification.types';

export interface SubmitOptions {
  principal: Principal & { clientId: string };
  audit: AuditContext;
  channel: Channel;
  /** Links the idempotency record to the verification in the recording transaction. */
  idempotencyKey?: string;
  /** Sandbox only: forwarded as X-Sandbox-Fault. */
  sandboxFault?: string;
}

/** How a submission ended; the controller renders it for its channel. */
export type SubmitOutcome =
  /** Recorded and settled (completed, failed, unknown, local check or reuse). */
  | { kind: 'recorded'; verification: VerificationRecord }
  /** Recorded, but the upstream could not be reached or refused for load: try again later. */
  | { kind: 'unavailable'; verification: VerificationRecord; retryAfterSeconds: number }
  /** Recorded, and the upstream refused the request itself (not charged). */
  | { kind: 'upstream_rejected'; verification: VerificationRecord; errorCode: string };

/**
 * The verification flow (SPEC §4.3): local checks, quotas, reuse, then record
 * `pending` before the paid call, and settle it after, each step with its audit
 * event in the same transaction.
 */
@Injectable()
export class VerificationService {
  private readonly logger = new Logger(VerificationService.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly store: VerificationStore,
    private readonly audit: AuditService,
    private readonly upstream: UpstreamClient,
    private readonly policies: ClientPolicyService,
    private readonly metrics: VerificationMetrics,
    private readonly prices: PriceService,
  ) {}

  async submit(request: VerificationRequest, options: SubmitOptions): Promise<SubmitOutcome> {
    if (
      request.imageUrl === undefined &&
      (request.name === undefined || request.idCard === undefined) &&
      !request.encryption
    ) {
      throw new ProblemException('validation', 'Send name and id_card, or image_url.', {
        errors: [
          ...(request.name === undefined ? [{ field: 'name', message: 'is required unless image_url is sent' }] : []),
          ...(request.idCard === undefined
            ? [{ field: 'id_card', message: 'is required unless image_url is sent' }]
            : []),
        ],
      });
    }
    const mode: Mode = request.imageUrl !== undefined ? 'image' : 'name_id_card';
    const now = new Date();
    const { clientId } = options.principal;
    // The price in force now (the price table, else PRICE_PER_CHARGED_CALL / CURRENCY); the row keeps it.
    const price = await this.prices.priceAt(now);
    const unitPrice = price.amount;
    const base = {
      clientId,
      apiKeyId: options.principal.keyId,
      channel: options.channel,
      mode,
      reference: request.reference ?? null,
      unitPrice,
      currency: price.currency,
    };

    // With the vendor's field encryption, idgate cannot read name or ID number: no local checks, nothing to store.
    const readable = mode === 'name_id_card' && !request.encryption;
    let name = readable ? request.name! : null;
    let idCard = readable ? request.idCard! : null;

    if (readable) {
      const check = checkLocally({ name: name!, idCard: idCard! }, now);
      if (check.kind === 'rejected') {
        const rejected = await this.recordLocalRejection(base, name!, idCard!, check, options);
        this.metrics.recordSettled(rejected);
        return { kind: 'recorded', verification: rejected };
      }
      name = check.normalized.name;
      idCard = check.normalized.idCard;
    }

    const circuit = this.upstream.circuitState();
    if (circuit.state === 'open') {
      throw new ProblemException(
        'service-unavailable',
        'The upstream is failing; idgate is not calling it for now.',
        { retry_after_seconds: circuit.retryAfterSeconds },
        { 'Retry-After': String(Math.max(1, Math.ceil(circuit.retryAfterSeconds ?? 1))) },
      );
    }

    const pending = await this.prisma.$transaction(async (tx) => {
      const policy = await this.policies.policyFor(clientId, tx);
      if (policy.dailyLimit !== null || policy.monthlySpendCap !== null) {
        // Serialises this client's admissions so its limits hold exactly under concurrency.
        // Only clients with limits pay for it: the lock is held until this transaction commits.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`idgate.admission.${clientId}`}))`;
        await this.enforceQuotas(tx, clientId, policy, unitPrice, now);
      }
      if (readable && policy.reuseWindowSeconds) {
        const reused = await this.reuse(tx, base, name!, idCard!, policy.reuseWindowSeconds, now, options);
        if (reused) return { reused };
      }
      const row = await this.store.insert(tx, { ...base, name, idCard }, {});
      await this.audit.record(tx, options.audit, {
        action: 'verification.created',
        target: { type: 'verification', id: row.id },
        details: {
          channel: base.channel,
          mode,
          client_id: clientId,
          ...(idCard ? { id_card: maskIdCardNumber(idCard) } : {}),
        },
        idCardHmac: row.idCardHmac,
      });
      await this.linkIdempotency(tx, clientId, options.idempotencyKey, row.id);
      return { row };
    });
    if ('reused' in pending) {
      this.metrics.recordSettled(pending.reused!);
      return { kind: 'recorded', verification: pending.reused! };
    }

    // The paid call, outside any transaction: the pending row is committed whatever happens next.
    const outcome = await this.upstream.verify(
      {
        ...(request.name !== undefined ? { name: request.encryption ? request.name : name! } : {}),
        ...(request.idCard !== undefined ? { id_card: request.encryption ? request.idCard : idCard! } : {}),
        ...(request.imageUrl !== undefined ? { image_url: request.imageUrl } : {}),
        ...(request.encryption !== undefined ? { encryption: request.encryption } : {}),
      },
      { sandboxFault: options.sandboxFault },
    );
    const verification = await this.settleVerification(pending.row!.id, outcome, options.audit);
    return this.outcomeOf(verification, outcome);
  }

  private outcomeOf(verification: VerificationRecord, outcome: UpstreamOutcome): SubmitOutcome {
    if (outcome.kind === 'unsent') {
      return {
        kind: 'unavailable',
        verification,
        retryAfterSeconds: Math.max(1, Math.ceil(outcome.retryAfterSeconds ?? 5)),
      };
    }
    if (outcome.kind === 'rejected') {
      if (outcome.httpStatus === 429) {
        return {
          kind: 'unavailable',
          verification,
          retryAfterSeconds: Math.max(1, Math.ceil(outcome.retryAfterSeconds ?? 5)),
        };
      }
      return { kind: 'upstream_rejected', verification, errorCode: outcome.errorCode ?? `http_${outcome.httpStatus}` };
    }
    return { kind: 'recorded', verification };
  }

  /** Moves a verification out of `pending` (or a late answer out of `unknown`), with its audit event. */
  async settleVerification(id: string, outcome: UpstreamOutcome, context: AuditContext): Promise<VerificationRecord> {
    const s: Settlement = settle(outcome);
    const settled = await this.prisma.$transaction(async (tx) => {
      const current = await tx.verification.findUniqueOrThrow({ where: { id } });
      const settleable = current.status === 'pending' || (current.status === 'unknown' && s.status !== 'unknown');
      if (!settleable) return this.store.toRecord(current);
      const row = await tx.verification.update({
        where: { id },
        data: {
          status: s.status,
          result: s.result,
          description: s.description,
          chargeStatus: s.chargeStatus,
          amount: amountFor(s.chargeStatus, current.unitPrice),
          upstreamTraceId: s.traceId,
          upstreamAttempts: s.attempts,
          upstreamError: s.error,
          ocrEnc: this.store.sealedOcr(s.ocr),
          ...(current.mode === 'image' && s.ocr?.id_card
            ? { idCardHmac: this.store.sealedPii(null, s.ocr.id_card).idCardHmac }
            : {}),
          completedAt: new Date(),
        },
      });
      await this.audit.record(tx, context, {
        action:
          s.status === 'completed'
            ? 'verification.completed'
            : s.status === 'failed'
              ? 'verification.failed'
              : 'verification.unknown',
        outcome: s.status === 'completed' ? 'success' : 'failure',
        target: { type: 'verification', id },
        details: {
          result: s.result,
          charge_status: s.chargeStatus,
          attempts: s.attempts,
          ...(s.error ? { error: s.error } : {}),
          ...(s.traceId ? { upstream_trace_id: s.traceId } : {}),
          ...(current.status === 'unknown' ? { previous_status: 'unknown' } : {}),
        },
        idCardHmac: row.idCardHmac,
      });
      return this.store.toRecord(row);
    });
    this.metrics.recordSettled(settled);
    return settled;
  }

  private async recordLocalRejection(
    base: VerificationBase,
    name: string,
    idCard: string,
    check: { result: '-2' | '-3'; description: string },
    options: SubmitOptions,
  ): Promise<VerificationRecord> {
    return this.prisma.$transaction(async (tx) => {
      const row = await this.store.insert(
        tx,
        { ...base, name, idCard },
        {
          status: 'completed',
          result: check.result,
          description: check.description,
          chargeStatus: 'not_charged',
          amount: 0,
          localCheck: true,
          completedAt: new Date(),
        },
      );
      await this.audit.record(tx, options.audit, {
        action: 'verification.completed',
        target: { type: 'verification', id: row.id },
        details: {
          channel: base.channel,
          mode: base.mode,
          result: check.result,
          charge_status: 'not_charged',
          local_check: true,
        },
        idCardHmac: row.idCardHmac,
      });
      await this.linkIdempotency(tx, base.clientId, options.idempotencyKey, row.id);
      return this.store.toRecord(row);
    });
  }

  private async enforceQuotas(
    tx: Tx,
    clientId: string,
    policy: { dailyLimit: number | null; monthlySpendCap: number | null },
    unitPrice: number,
    now: Date,
  ): Promise<void> {
    const { dayStart, monthStart } = quotaPeriods(now);
    if (policy.dailyLimit !== null) {
      const today = await tx.verification.count({
        where: { clientId, createdAt: { gte: dayStart }, localCheck: false, reusedFromId: null },
      });
      if (today >= policy.dailyLimit) {
        const reset = new Date(dayStart.getTime() + 86_400_000);
        throw this.quotaProblem(`Daily limit of ${policy.dailyLimit} verifications reached.`, reset, now);
      }
    }
    if (policy.monthlySpendCap !== null) {
      // Unknown calls count as charged until reconciliation says otherwise.
      const [spend] = await tx.$queryRaw<Array<{ spent: bigint }>>`
        SELECT COALESCE(SUM(CASE WHEN charge_status = 'unknown' THEN unit_price ELSE amount END), 0)::bigint AS spent
        FROM verifications WHERE client_id = ${clientId}::uuid AND created_at >= ${monthStart}`;
      if (Number(spend.spent) + unitPrice > policy.monthlySpendCap) {
        const reset = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
        throw this.quotaProblem(`Monthly spend cap of ${policy.monthlySpendCap} reached.`, reset, now);
      }
    }
  }

  private quotaProblem(detail: string, reset: Date, now: Date): ProblemException {
    const seconds = Math.max(1, Math.ceil((reset.getTime() - now.getTime()) / 1000));
    return new ProblemException(
      'rate-limited',
      detail,
      { quota_resets_at: reset.toISOString() },
      { 'Retry-After': String(seconds) },
    );
  }

  private async reuse(
    tx: Tx,
    base: VerificationBase,
    name: string,
    idCard: string,
    windowSeconds: number,
    now: Date,
    options: SubmitOptions,
  ): Promise<VerificationRecord | null> {
    const hashes = this.store.sealedPii(name, idCard);
    const earlier = await tx.verification.findFirst({
      where: {
        clientId: base.clientId,
        idCardHmac: hashes.idCardHmac,
        nameHmac: hashes.nameHmac,
        status: 'completed',
        result: { in: ['0', '-1'] },
        reusedFromId: null,
        createdAt: { gte: new Date(now.getTime() - windowSeconds * 1000) },
      },
      orderBy: { createdAt: 'desc' },
    });
    if (!earlier) return null;
    const row = await this.store.insert(
      tx,
      { ...base, name, idCard },
      {
        status: 'completed',
        result: earlier.result,
        description: earlier.description,
        chargeStatus: 'not_charged',
        amount: 0,
        reusedFromId: earlier.id,
        completedAt: now,
      },
    );
    await this.audit.record(tx, options.audit, {
      action: 'verification.reused',
      target: { type: 'verification', id: row.id },
      details: { reused_from: earlier.id, result: earlier.result, charge_status: 'not_charged' },
      idCardHmac: row.idCardHmac,
    });
    await this.linkIdempotency(tx, base.clientId, options.idempotencyKey, row.id);
    return this.store.toRecord(row);
  }

  private async linkIdempotency(
    tx: Tx,
    clientId: string,
    key: string | undefined,
    verificationId: string,
  ): Promise<void> {
    if (key === undefined) return;
    await tx.idempotencyRecord.updateMany({ where: { clientId, key }, data: { verificationId } });
  }
}
