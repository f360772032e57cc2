import { Injectable, Logger } from '@nestjs/common';
import { ExponentialBackoff, handleWhen, retry, RetryPolicy } from 'cockatiel';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import type { Principal } from '../auth/roles';
import { ProblemException, validationProblem } from '../common/problem';
import { loggableError } from '../common/problem.filter';
import { AppConfig } from '../config/app-config';
import { maskIdCardNumber } from '../domain/id-card-number';
import { isTransientDatabaseError } from '../database/database-errors';
import { PrismaService } from '../database/prisma.service';
import { PriceService } from '../billing/pricing/price.service';
import { UpstreamCircuit } from '../upstream/upstream-circuit';
import { UpstreamClient } from '../upstream/upstream.client';
import { UpstreamOutcome } from '../upstream/upstream.types';
import type { AdmissionPermit } from '../common/admission-gate';
import { ClientPolicyService } from './client-policy.service';
import {
  EarlierClaim,
  IdempotencyKeyReused,
  IdempotencyScope,
  IdempotencyService,
  StoredReply,
} from './idempotency.service';
import { PiiSearchBudget } from '../audit/pii-search-budget.service';
import { VerificationMetrics } from './verification.metrics';
import { answerHmacs, prepareFields } from './encryption-rules';
import { PiiVault } from './pii-vault.service';
import { amountFor, quotaPeriods, requestDeadlineMs, settle, Settlement } from './verification-rules';
import { Tx, VerificationBase, VerificationStore } from './verification.store';
import { Channel, Mode, VerificationRecord, VerificationRequest } from './verification.types';

export interface SubmitOptions {
  principal: Principal & { clientId: string };
  audit: AuditContext;
  channel: Channel;
  /** Admission to the pre-call database work; released before the paid call. */
  admission: AdmissionPermit;
  idempotency?: IdempotentSubmission;
  /** Sandbox only: forwarded as X-Sandbox-Fault. */
  sandboxFault?: string;
}

/** An Idempotency-Key submission: the key is claimed with the record, and the final reply stored with the settlement. */
export interface IdempotentSubmission extends Omit<IdempotencyScope, 'clientId'> {
  /** The channel's answer for a final outcome, stored for replay. */
  render(outcome: SubmitOutcome): StoredReply;
}

/** How a submission ended; the controller renders it for its channel. */
export type SubmitOutcome =
  /** Recorded and settled (completed, failed, unknown, local check or reuse). */
  | { kind: 'recorded'; verification: VerificationRecord }
  /** Recorded, but the upstream could not be reached or refused for load: try again later. */
  | { kind: 'unavailable'; verification: VerificationRecord; retryAfterSeconds: number }
  /** Recorded, and the upstream refused the request itself (not charged). */
  | { kind: 'upstream_rejected'; verification: VerificationRecord; errorCode: string }
  /** Recorded and (maybe) answered, but not yet settled: the answer is still being written (202). */
  | { kind: 'accepted'; verification: VerificationRecord };

/** What the recording transaction found or did. */
type Recording =
  | { kind: 'earlier_claim'; claim: EarlierClaim }
  | { kind: 'final'; verification: VerificationRecord }
  | { kind: 'pending'; verification: VerificationRecord };

/** Settle writes are retried with this backoff while the process lives (capped so a recovered database is seen fast). */
const SETTLE_BACKOFF = { initialDelay: 50, maxDelay: 1000 };
/** Recording transactions wait this long for a pooled connection (Prisma's maxWait) before giving up (503). */
const RECORD_MAX_WAIT_MS = 2000;

/**
 * The verification flow (SPEC §4.3): local checks, quotas, reuse, then record
 * `pending` before the paid call, and settle it after, each step with its audit
 * event in the same transaction.
 *
 * Failure rules (issue 11): everything before the call happens in one transaction
 * (idempotency claim included), so a request refused there has written nothing and
 * called nothing. Once the upstream has answered, the answer is held in memory and
 * its settle write retried until it lands; the request waits SETTLE_WAIT_MS for it
 * and is then answered 202 with the verification as it stands.
 */
@Injectable()
export class VerificationService {
  private readonly logger = new Logger(VerificationService.name);
  /** Verifications whose upstream answer this process holds and is still writing. */
  private readonly settling = new Map<string, Promise<VerificationRecord | null>>();
  private readonly settleRetry: RetryPolicy;

  constructor(
    private readonly prisma: PrismaService,
    private readonly store: VerificationStore,
    private readonly audit: AuditService,
    private readonly upstream: UpstreamClient,
    private readonly circuit: UpstreamCircuit,
    private readonly policies: ClientPolicyService,
    private readonly metrics: VerificationMetrics,
    private readonly prices: PriceService,
    private readonly idempotency: IdempotencyService,
    private readonly config: AppConfig,
    private readonly vault: PiiVault,
    private readonly budget: PiiSearchBudget,
  ) {
    this.settleRetry = retry(
      handleWhen((err) => isTransientDatabaseError(err) && !this.prisma.drainExpired),
      { maxAttempts: Number.MAX_SAFE_INTEGER, backoff: new ExponentialBackoff(SETTLE_BACKOFF) },
    );
  }

  /** Ids of verifications whose answer this process is still recording: the sweeper leaves them alone. */
  settlingIds(): string[] {
    return [...this.settling.keys()];
  }

  async submit(
    request: VerificationRequest,
    options: SubmitOptions,
  ): Promise<SubmitOutcome | { kind: 'earlier_claim'; claim: EarlierClaim }> {
    if (
      request.imageUrl === undefined &&
      (request.name === undefined || request.idCard === undefined) &&
      !request.encryption
    ) {
      throw validationProblem([
        ...(request.name === undefined ? [{ field: 'name', message: 'is required unless image_url is sent' }] : []),
        ...(request.idCard === undefined
          ? [{ field: 'id_card', message: 'is required unless image_url is sent' }]
          : []),
      ]);
    }
    const mode: Mode = request.imageUrl !== undefined ? 'image' : 'name_id_card';
    const now = new Date();
    const { clientId } = options.principal;
    // The price in force now (the price table, else PRICE_PER_CHARGED_CALL / CURRENCY); the row keeps it.
    const price = await this.prices.priceAt(now);
    const base: VerificationBase = {
      clientId,
      apiKeyId: options.principal.keyId,
      channel: options.channel,
      mode,
      reference: request.reference ?? null,
      unitPrice: price.amount,
      currency: price.currency,
    };

    // Fields sent in clear get the local checks (and are stored with their HMACs); the fields the
    // vendor's `encryption` names are unreadable here and go to the vendor as sent.
    const fields = prepareFields(request, mode, now);
    const { name, idCard, rejection } = fields;

    // The circuit's permission to call, taken in the transaction; released when the call has ended.
    let releaseCall = (): void => undefined;
    let recording: Recording;
    try {
      recording = await this.prisma.$transaction(
        async (tx) => {
          const idem = options.idempotency;
          if (idem) {
            const claim = await this.idempotency.claimIn(
              tx,
              { clientId, key: idem.key, fingerprint: idem.fingerprint, legacyFingerprint: idem.legacyFingerprint },
              requestDeadlineMs(this.config),
            );
            if (claim !== 'claimed') return { kind: 'earlier_claim', claim } as const;
          }
          if (rejection) {
            const rejected = await this.recordLocalRejection(tx, base, name, idCard, rejection, options);
            return { kind: 'final', verification: rejected } as const;
          }
          const policy = await this.policies.policyFor(clientId, tx);
          if (policy.dailyLimit !== null || policy.monthlySpendCap !== null) {
            // Serialises this client's admissions so its limits hold exactly under concurrency.
            // Only clients with limits pay for it: the lock is held until this transaction commits.
            await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`idgate.admission.${clientId}`}))`;
            await this.enforceQuotas(tx, clientId, policy, price.amount, now);
          }
          if (fields.bothClear && policy.reuseWindowSeconds) {
            const reused = await this.reuse(tx, base, name!, idCard!, policy.reuseWindowSeconds, now, options);
            if (reused) return { kind: 'final', verification: reused } as const;
          }
          // Asked last, so a refusal rolls back the claim: nothing written, nothing called.
          const call = this.circuit.permitCall();
          if (!call.admitted) throw circuitProblem(call.retryAfterSeconds);
          releaseCall = call.release;
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
          if (idem) await this.idempotency.linkIn(tx, clientId, idem.key, row.id);
          return { kind: 'pending', verification: this.store.toRecord(row) } as const;
        },
        { maxWait: RECORD_MAX_WAIT_MS },
      );
    } catch (err) {
      releaseCall();
      if (err instanceof IdempotencyKeyReused) {
        // Replay (200) or 422 tells whether a guessed body is the stored one: each such answer is
        // an exact-match lookup by name and ID number, and spends the same hourly budget (429 past it).
        await this.budget.spend(
          options.audit,
          { action: 'idempotency.mismatched', outcome: 'denied', details: { client_id: clientId } },
          clientId,
        );
      }
      throw err;
    } finally {
      options.admission.release();
    }

    if (recording.kind !== 'pending') {
      releaseCall();
      // A replay confirms the body it repeats: once the key's guesses are spent, it is refused like them.
      if (recording.kind === 'earlier_claim') await this.budget.ensureLeft(options.audit, clientId);
      if (recording.kind === 'final') this.metrics.recordSettled(recording.verification);
      return recording.kind === 'final' ? { kind: 'recorded', verification: recording.verification } : recording;
    }

    // The paid call, outside any transaction and holding no connection: the pending row is committed whatever happens next.
    const pending = recording.verification;
    let outcome: UpstreamOutcome;
    try {
      outcome = await this.upstream.verify(
        {
          ...fields.upstream,
          ...(request.imageUrl !== undefined ? { image_url: request.imageUrl } : {}),
          ...(request.encryption !== undefined ? { encryption: request.encryption } : {}),
        },
        { sandboxFault: options.sandboxFault },
      );
    } finally {
      releaseCall();
    }

    const settled = this.settleDurably(
      pending.id,
      outcome,
      options.audit,
      options.idempotency && {
        clientId,
        key: options.idempotency.key,
        render: options.idempotency.render,
      },
    );
    const answer = await waitAtMost(settled, this.config.settleWaitMs);
    if (answer === TIMED_OUT || answer === null) {
      // Still being written (or, after a bug, left for the sweeper): answer with the verification as it stands.
      if (options.idempotency) {
        this.idempotency
          .markEnded(clientId, options.idempotency.key)
          .catch(() => undefined /* the request deadline covers it */);
      }
      return { kind: 'accepted', verification: pending };
    }
    return outcomeOf(answer, outcome);
  }

  /**
   * Records an upstream answer, retrying the write with backoff while the process lives
   * (and, on shutdown, until the drain deadline). Resolves with the settled record, or
   * null when the write failed for good (the row stays pending for the sweeper).
   */
  private settleDurably(
    id: string,
    outcome: UpstreamOutcome,
    context: AuditContext,
    reply?: { clientId: string; key: string; render: (outcome: SubmitOutcome) => StoredReply },
  ): Promise<VerificationRecord | null> {
    const work = this.settleRetry
      .execute(() => this.settleVerification(id, outcome, context, reply))
      .catch((err: unknown) => {
        this.logger.error({ err: loggableError(err), verification_id: id }, 'could not record an upstream answer');
        return null;
      })
      .finally(() => this.settling.delete(id));
    this.settling.set(id, work);
    return this.prisma.keepOpenFor(work);
  }

  /** Moves a verification out of `pending` (or a late answer out of `unknown`), with its audit event. */
  async settleVerification(
    id: string,
    outcome: UpstreamOutcome,
    context: AuditContext,
    reply?: { clientId: string; key: string; render: (outcome: SubmitOutcome) => StoredReply },
  ): Promise<VerificationRecord> {
    const s: Settlement = settle(outcome);
    const settled = await this.prisma.$transaction(async (tx) => {
      const current = await tx.verification.findUniqueOrThrow({ where: { id } });
      const settleable = current.status === 'pending' || (current.status === 'unknown' && s.status !== 'unknown');
      if (!settleable) return { record: this.store.toRecord(current), changed: false };
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
          // For exact search: the ID number read from a card, and readable echoes of fields sent encrypted.
          ...answerHmacs(this.vault, current, s.ocr, new Date()),
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
      const record = this.store.toRecord(row);
      // The final reply lands with the settlement: a retry under the key replays it.
      if (reply && current.status === 'pending') {
        await this.idempotency.storeReplyIn(tx, reply.clientId, reply.key, reply.render(outcomeOf(record, outcome)));
      }
      return { record, changed: true };
    });
    if (settled.changed) this.metrics.recordSettled(settled.record);
    return settled.record;
  }

  private async recordLocalRejection(
    tx: Tx,
    base: VerificationBase,
    name: string | null,
    idCard: string | null,
    check: { result: '-2' | '-3'; description: string },
    options: SubmitOptions,
  ): Promise<VerificationRecord> {
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
    return this.finishIdempotentIn(tx, base.clientId, options, this.store.toRecord(row));
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
    // Concurrent repeats of one identity by one client queue here, so the second sees the first.
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`idgate.reuse.${base.clientId}.${hashes.idCardHmac}.${hashes.nameHmac}`}))`;
    const since = new Date(now.getTime() - windowSeconds * 1000);
    const inFlight = await tx.verification.findFirst({
      where: {
        clientId: base.clientId,
        idCardHmac: hashes.idCardHmac,
        nameHmac: hashes.nameHmac,
        status: 'pending',
        createdAt: { gte: since },
      },
      select: { id: true },
    });
    // The same call is already being made: its answer will be reused (the transaction rolls back).
    if (inFlight) throw new DuplicateInFlight(inFlight.id);
    const earlier = await tx.verification.findFirst({
      where: {
        clientId: base.clientId,
        idCardHmac: hashes.idCardHmac,
        nameHmac: hashes.nameHmac,
        status: 'completed',
        result: { in: ['0', '-1'] },
        reusedFromId: null,
        createdAt: { gte: since },
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
    return this.finishIdempotentIn(tx, base.clientId, options, this.store.toRecord(row));
  }

  /** A verification final at once (local check, reuse): link the key and store its reply in the same transaction. */
  private async finishIdempotentIn(
    tx: Tx,
    clientId: string,
    options: SubmitOptions,
    verification: VerificationRecord,
  ): Promise<VerificationRecord> {
    const idem = options.idempotency;
    if (idem) {
      await this.idempotency.completeIn(
        tx,
        clientId,
        idem.key,
        verification.id,
        idem.render({ kind: 'recorded', verification }),
      );
    }
    return verification;
  }
}

/** Thrown in the recording transaction (rolling it back) when the same identity is being verified right now. */
export class DuplicateInFlight extends Error {
  constructor(readonly verificationId: string) {
    super('an identical verification is in flight');
    this.name = 'DuplicateInFlight';
  }
}

const TIMED_OUT = Symbol('timed out');

/** `work`'s value, or TIMED_OUT after `ms` (work goes on). */
async function waitAtMost<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<typeof TIMED_OUT>((r) => (timer = setTimeout(r, ms, TIMED_OUT)))]);
  } finally {
    clearTimeout(timer);
  }
}

function circuitProblem(retryAfterSeconds: number): ProblemException {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  return new ProblemException(
    'service-unavailable',
    'The upstream is failing; idgate is not calling it for now. Nothing was recorded or charged.',
    { retry_after_seconds: seconds },
    { 'Retry-After': String(seconds) },
  );
}

/** How a settled verification answers its submission, given the upstream outcome that settled it. */
export function outcomeOf(verification: VerificationRecord, outcome: UpstreamOutcome): SubmitOutcome {
  if (verification.status === 'pending') return { kind: 'accepted', verification };
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
