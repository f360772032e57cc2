import { Injectable, Logger } from '@nestjs/common';
import { ExponentialBackoff, handleWhen, retry, RetryPolicy } from 'cockatiel';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import { PiiSearchBudget } from '../audit/pii-search-budget.service';
import type { Principal } from '../auth/roles';
import { PriceService } from '../billing/pricing/price.service';
import type { AdmissionPermit } from '../common/admission-gate';
import { ProblemException } from '../common/problem';
import { loggableError } from '../common/problem.filter';
import { AppConfig } from '../config/app-config';
import { isDatabaseUnavailable, isTransientDatabaseError } from '../database/database-errors';
import { PrismaService } from '../database/prisma.service';
import { lockForTransaction, Transaction } from '../database/transaction';
import { maskIdCardNumber } from '../domain/id-card-number';
import { UpstreamCircuit } from '../upstream/upstream-circuit';
import { UpstreamClient } from '../upstream/upstream.client';
import { UpstreamOutcome } from '../upstream/upstream.types';
import { ClientPolicyService } from './client-policy.service';
import { answerHmacs, prepareFields, PreparedFields } from './encryption-rules';
import { EarlierClaim, IdempotencyKeyReused, IdempotencyScope, KeyClaim, StoredReply } from './idempotency';
import { PiiVault } from './pii-vault.service';
import {
  amountFor,
  IDEMPOTENCY_TTL_MS,
  quotaPeriods,
  requestDeadlineMs,
  settle,
  SettledAnswer,
  Settlement,
} from './verification-rules';
import { VerificationMetrics } from './verification.metrics';
import {
  PendingVerification,
  PiiHashes,
  SettlementWrite,
  VerificationBase,
  VerificationStore,
} from './verification.store';
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
  | { kind: 'pending'; pending: PendingVerification };

/** Settle writes are retried with this backoff while the process lives (capped so a recovered database is seen fast). */
const SETTLE_BACKOFF = { initialDelay: 50, maxDelay: 1000 };
/** Recording transactions wait this long for a pooled connection (Prisma's maxWait) before giving up (503). */
const RECORD_MAX_WAIT_MS = 2000;

/**
 * The verification flow (SPEC §4.3): local checks, quotas, reuse, then record
 * `pending` before the paid call, and settle it after, each step with its audit
 * event in the same statement or transaction.
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
    const claim: KeyClaim | undefined = options.idempotency && {
      clientId,
      key: options.idempotency.key,
      fingerprint: options.idempotency.fingerprint,
      legacyFingerprint: options.idempotency.legacyFingerprint,
      expiresAt: new Date(now.getTime() + IDEMPOTENCY_TTL_MS),
      takeOverUnlinkedBefore: new Date(now.getTime() - requestDeadlineMs(this.config)),
    };

    // The circuit's permission to call, taken before the record is written; released when the call has ended.
    let releaseCall = (): void => undefined;
    let recording: Recording;
    try {
      // Which path: a policy read at most POLICY_CACHE_MS ago (the rules' path reads it again in its transaction).
      const recent = await this.policies.recentPolicyFor(clientId);
      const plain = !rejection && recent.dailyLimit === null && recent.monthlySpendCap === null;
      if (plain && !(fields.bothClear && recent.reuseWindowSeconds)) {
        // The common case: one statement records the verification, its audit event and the key's claim.
        const call = this.circuit.permitCall();
        if (!call.admitted) {
          // A retry of a request already recorded is answered from its claim, open circuit or not.
          const earlier = claim && (await this.store.earlierClaim(this.prisma, claim, now));
          if (earlier) return await this.earlierClaimAnswer(earlier, options);
          throw circuitProblem(call.retryAfterSeconds);
        }
        releaseCall = call.release;
        const id = this.store.newId();
        const hashes = this.store.hashesOf(name, idCard);
        const event = this.audit.eventStatement(
          options.audit,
          createdEvent(id, base, idCard, hashes.idCardHmac),
          claim ? 'v' : undefined,
        );
        const v = { ...base, name, idCard };
        let pending: PendingVerification | null;
        try {
          pending = await this.store.recordPending(this.prisma, id, v, hashes, event, claim);
        } catch (err) {
          // A connection lost while the statement ran may have lost only its reply: the statement
          // commits on its own. If it did, the verification is recorded and goes on to its call.
          if (!isDatabaseUnavailable(err)) throw err;
          pending = await this.store.findRecordedPending(id, v, hashes).catch(() => null);
          if (!pending) throw err;
        }
        if (pending) recording = { kind: 'pending', pending };
        else {
          const held = await this.store.claimThatHeld(this.prisma, claim!);
          // Purged (24 h old) between the two statements: the next attempt claims the key afresh.
          if (!held) throw keyInProgressProblem();
          recording = { kind: 'earlier_claim', claim: held };
        }
      } else {
        recording = await this.prisma.$transaction(
          (tx) =>
            this.recordWithRules(
              tx,
              base,
              fields,
              price.amount,
              now,
              claim,
              options,
              (release) => (releaseCall = release),
            ),
          { maxWait: RECORD_MAX_WAIT_MS },
        );
      }
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
      if (recording.kind === 'earlier_claim') return this.earlierClaimAnswer(recording.claim, options);
      this.metrics.recordSettled(recording.verification);
      return { kind: 'recorded', verification: recording.verification };
    }

    // The paid call, outside any transaction and holding no connection: the pending row is committed whatever happens next.
    const { pending } = recording;
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

    const settlement = settle(outcome);
    const settled = this.settleDurably(
      pending,
      settlement,
      options.audit,
      options.idempotency && { clientId, key: options.idempotency.key, render: options.idempotency.render },
    );
    const answer = await waitAtMost(settled, this.config.settleWaitMs);
    if (answer === TIMED_OUT || answer === null) {
      // Still being written (or, after a bug, left for the sweeper): answer with the verification as it stands.
      if (options.idempotency) {
        this.store
          .markKeyEnded(clientId, options.idempotency.key)
          .catch(() => undefined /* the request deadline covers it */);
      }
      return { kind: 'accepted', verification: pending.record };
    }
    return outcomeFor(answer, settlement.answer);
  }

  /** A replay confirms the body it repeats: once the key's guesses are spent, it is refused like them. */
  private async earlierClaimAnswer(
    claim: EarlierClaim,
    options: SubmitOptions,
  ): Promise<{ kind: 'earlier_claim'; claim: EarlierClaim }> {
    await this.budget.ensureLeft(options.audit, options.principal.clientId);
    return { kind: 'earlier_claim', claim };
  }

  /**
   * The recording transaction for a submission the client's rules weigh on (limits, reuse) or
   * that local checks reject: claim, quotas, reuse, then the record, all or nothing.
   */
  private async recordWithRules(
    tx: Transaction,
    base: VerificationBase,
    fields: PreparedFields,
    unitPrice: number,
    now: Date,
    claim: KeyClaim | undefined,
    options: SubmitOptions,
    holdCall: (release: () => void) => void,
  ): Promise<Recording> {
    const { name, idCard, rejection } = fields;
    const hashes = this.store.hashesOf(name, idCard);
    if (claim && !(await this.store.claimKey(tx, claim))) {
      // The failed claim locked the key's row until this transaction ends: it is there.
      return { kind: 'earlier_claim', claim: (await this.store.claimThatHeld(tx, claim))! };
    }
    if (rejection) {
      const id = this.store.newId();
      const rejected = await this.store.insertFinal(tx, id, { ...base, name, idCard }, hashes, {
        ...rejection,
        localCheck: true,
      });
      await this.audit.record(tx, options.audit, {
        action: 'verification.completed',
        target: { type: 'verification', id },
        details: {
          channel: base.channel,
          mode: base.mode,
          result: rejection.result,
          charge_status: 'not_charged',
          local_check: true,
        },
        idCardHmac: hashes.idCardHmac,
      });
      return { kind: 'final', verification: await this.finishIdempotentIn(tx, claim, options, rejected) };
    }
    const policy = await this.policies.policyFor(base.clientId, tx);
    if (policy.dailyLimit !== null || policy.monthlySpendCap !== null) {
      // Serialises this client's admissions so its limits hold exactly under concurrency.
      // Only clients with limits pay for it: the lock is held until this transaction commits.
      await lockForTransaction(tx, `idgate.admission.${base.clientId}`);
      await this.enforceQuotas(tx, base.clientId, policy, unitPrice, now);
    }
    if (fields.bothClear && policy.reuseWindowSeconds) {
      const reused = await this.reuse(tx, base, name!, idCard!, hashes, policy.reuseWindowSeconds, now, claim, options);
      if (reused) return { kind: 'final', verification: reused };
    }
    // Asked last, so a refusal rolls back the claim: nothing written, nothing called.
    const call = this.circuit.permitCall();
    if (!call.admitted) throw circuitProblem(call.retryAfterSeconds);
    holdCall(call.release);
    const id = this.store.newId();
    const event = this.audit.eventStatement(options.audit, createdEvent(id, base, idCard, hashes.idCardHmac));
    const pending = await this.store.recordPending(tx, id, { ...base, name, idCard }, hashes, event);
    if (claim) await this.store.linkKey(tx, claim, id);
    return { kind: 'pending', pending: pending! };
  }

  /**
   * Records an upstream answer, retrying the write with backoff while the process lives
   * (and, on shutdown, until the drain deadline). Resolves with the settled record, or
   * null when the write failed for good (the row stays pending for the sweeper).
   */
  private settleDurably(
    pending: PendingVerification,
    settlement: Settlement,
    context: AuditContext,
    reply?: ReplyToStore,
  ): Promise<VerificationRecord | null> {
    const id = pending.record.id;
    const work = this.settleRetry
      .execute(() => this.settleRecorded(pending, settlement, context, reply))
      .catch((err: unknown) => {
        this.logger.error({ err: loggableError(err), verification_id: id }, 'could not record an upstream answer');
        return null;
      })
      .finally(() => this.settling.delete(id));
    this.settling.set(id, work);
    return this.prisma.keepOpenFor(work);
  }

  /**
   * Settles the verification this request recorded: one statement (the row and its event), or
   * with an Idempotency-Key a short transaction that stores the final reply with it. The row
   * is known to be `pending` unless something else moved it, which the general path handles.
   */
  private async settleRecorded(
    pending: PendingVerification,
    s: Settlement,
    context: AuditContext,
    reply?: ReplyToStore,
  ): Promise<VerificationRecord> {
    const current = { status: 'pending' as const, mode: pending.record.mode, unitPrice: pending.record.unitPrice };
    const write = this.settlementWrite(current, pending.hashes, s);
    const event = this.audit.eventStatement(
      context,
      settledEvent(pending.record.id, s, write, pending.hashes, 'pending'),
      'v',
    );
    const record = reply
      ? await this.prisma.$transaction(async (tx) => {
          const r = await this.store.writeSettlement(tx, pending.record, 'pending', write, event);
          // The final reply lands with the settlement: a retry under the key replays it.
          if (r) await this.store.storeReply(tx, reply.clientId, reply.key, reply.render(outcomeFor(r, s.answer)));
          return r;
        })
      : await this.store.writeSettlement(this.prisma, pending.record, 'pending', write, event);
    if (!record) return this.settleVerification(pending.record.id, s, context, reply);
    this.metrics.recordSettled(record);
    return record;
  }

  /** Moves a verification out of `pending` (or a late answer out of `unknown`), with its audit event. */
  async settleVerification(
    id: string,
    s: Settlement,
    context: AuditContext,
    reply?: ReplyToStore,
  ): Promise<VerificationRecord> {
    const settled = await this.prisma.$transaction(async (tx) => {
      const current = await this.store.lockForSettlement(tx, id);
      if (!current) throw new Error('settling a verification that does not exist');
      const from = current.status;
      if (!(from === 'pending' || (from === 'unknown' && s.status !== 'unknown'))) {
        return { record: current.record, changed: false };
      }
      const write = this.settlementWrite(current, current.hashes, s);
      const event = this.audit.eventStatement(context, settledEvent(id, s, write, current.hashes, from), 'v');
      const record = await this.store.writeSettlement(tx, current.record, from, write, event);
      if (!record) throw new Error('a locked verification changed under its lock');
      if (reply && from === 'pending') {
        await this.store.storeReply(tx, reply.clientId, reply.key, reply.render(outcomeFor(record, s.answer)));
      }
      return { record, changed: true };
    });
    if (settled.changed) this.metrics.recordSettled(settled.record);
    return settled.record;
  }

  private settlementWrite(
    current: { mode: Mode; unitPrice: number },
    hashes: PiiHashes,
    s: Settlement,
  ): SettlementWrite {
    return {
      settlement: s,
      amount: amountFor(s.chargeStatus, current.unitPrice),
      // For exact search: the ID number read from a card, and readable echoes of fields sent encrypted.
      learntHashes: answerHmacs(this.vault, { mode: current.mode, ...hashes }, s.ocr, new Date()),
    };
  }

  private async enforceQuotas(
    tx: Transaction,
    clientId: string,
    policy: { dailyLimit: number | null; monthlySpendCap: number | null },
    unitPrice: number,
    now: Date,
  ): Promise<void> {
    const { dayStart, monthStart } = quotaPeriods(now);
    if (policy.dailyLimit !== null) {
      const today = await this.store.countCallsSince(tx, clientId, dayStart);
      if (today >= policy.dailyLimit) {
        const reset = new Date(dayStart.getTime() + 86_400_000);
        throw this.quotaProblem(`Daily limit of ${policy.dailyLimit} verifications reached.`, reset, now);
      }
    }
    if (policy.monthlySpendCap !== null) {
      const spent = await this.store.spendSince(tx, clientId, monthStart);
      if (spent + unitPrice > policy.monthlySpendCap) {
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
    tx: Transaction,
    base: VerificationBase,
    name: string,
    idCard: string,
    hashes: PiiHashes,
    windowSeconds: number,
    now: Date,
    claim: KeyClaim | undefined,
    options: SubmitOptions,
  ): Promise<VerificationRecord | null> {
    // Concurrent repeats of one identity by one client queue here, so the second sees the first.
    await lockForTransaction(tx, `idgate.reuse.${base.clientId}.${hashes.idCardHmac}.${hashes.nameHmac}`);
    const since = new Date(now.getTime() - windowSeconds * 1000);
    const inFlight = await this.store.findInFlightForClient(tx, base.clientId, hashes, since);
    // The same call is already being made: its answer will be reused (the transaction rolls back).
    if (inFlight) throw new DuplicateInFlight(inFlight);
    const earlier = await this.store.findReusableForClient(tx, base.clientId, hashes, since);
    if (!earlier) return null;
    const id = this.store.newId();
    const reused = await this.store.insertFinal(tx, id, { ...base, name, idCard }, hashes, {
      result: earlier.result,
      description: earlier.description,
      reusedFromId: earlier.id,
    });
    await this.audit.record(tx, options.audit, {
      action: 'verification.reused',
      target: { type: 'verification', id },
      details: { reused_from: earlier.id, result: earlier.result, charge_status: 'not_charged' },
      idCardHmac: hashes.idCardHmac,
    });
    return this.finishIdempotentIn(tx, claim, options, reused);
  }

  /** A verification final at once (local check, reuse): link the key and store its reply in the same transaction. */
  private async finishIdempotentIn(
    tx: Transaction,
    claim: KeyClaim | undefined,
    options: SubmitOptions,
    verification: VerificationRecord,
  ): Promise<VerificationRecord> {
    if (claim && options.idempotency) {
      await this.store.completeKey(
        tx,
        claim,
        verification.id,
        options.idempotency.render({ kind: 'recorded', verification }),
      );
    }
    return verification;
  }
}

/** The reply an Idempotency-Key submission stores with its settlement. */
interface ReplyToStore {
  clientId: string;
  key: string;
  render: (outcome: SubmitOutcome) => StoredReply;
}

function createdEvent(id: string, base: VerificationBase, idCard: string | null, idCardHmac: string | null) {
  return {
    action: 'verification.created' as const,
    target: { type: 'verification', id },
    details: {
      channel: base.channel,
      mode: base.mode,
      client_id: base.clientId,
      ...(idCard ? { id_card: maskIdCardNumber(idCard) } : {}),
    },
    idCardHmac,
  };
}

function settledEvent(
  id: string,
  s: Settlement,
  write: SettlementWrite,
  before: PiiHashes,
  from: 'pending' | 'unknown',
) {
  return {
    action:
      s.status === 'completed'
        ? ('verification.completed' as const)
        : s.status === 'failed'
          ? ('verification.failed' as const)
          : ('verification.unknown' as const),
    outcome: s.status === 'completed' ? ('success' as const) : ('failure' as const),
    target: { type: 'verification', id },
    details: {
      result: s.result,
      charge_status: s.chargeStatus,
      attempts: s.attempts,
      ...(s.error ? { error: s.error } : {}),
      ...(s.traceId ? { upstream_trace_id: s.traceId } : {}),
      ...(from === 'unknown' ? { previous_status: 'unknown' } : {}),
    },
    // The row's HMAC after the write: learnt from the answer, else the one it had.
    idCardHmac: write.learntHashes.idCardHmac ?? before.idCardHmac,
  };
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

/** 409: the key's request is still being handled (or must be sent again); nothing was written. */
export function keyInProgressProblem(): ProblemException {
  return new ProblemException(
    'conflict',
    'A request with this Idempotency-Key is still in progress; retry later.',
    {},
    { 'Retry-After': '1' },
  );
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

/** How a settled verification answers its submission, given how its settlement said to answer. */
export function outcomeFor(verification: VerificationRecord, answer: SettledAnswer): SubmitOutcome {
  if (verification.status === 'pending') return { kind: 'accepted', verification };
  return { ...answer, verification };
}
