import { Injectable } from '@nestjs/common';
import type { AuditContext } from '../audit/audit-vocabulary';
import type { Principal } from '../auth/roles';
import { ProblemException } from '../common/problem';
import { AppConfig } from '../config/app-config';
import { isDatabaseUnavailable } from '../database/database-errors';
import { PrismaService } from '../database/prisma.service';
import type { DropInRequestDto } from './dto/drop-in.dto';
import type { CreateVerificationDto } from './dto/create-verification.dto';
import { AdmissionGate, AdmissionPermit, AdmissionRefused } from '../common/admission-gate';
import type { EarlierClaim, StoredReply } from './idempotency';
import { parseSubmission, SubmissionBody } from './submission-rules';
import { apiReply, dropInReply } from './verification-replies';
import {
  legacyRequestFingerprint,
  pendingDeadlineMs,
  requestDeadlineMs,
  requestFingerprint,
} from './verification-rules';
import { DuplicateInFlight, keyInProgressProblem, SubmitOutcome, VerificationService } from './verification.service';
import { VerificationMetrics } from './verification.metrics';
import { VerificationStore } from './verification.store';
import type { Channel } from './verification.types';

export interface SubmissionContext {
  principal: Principal;
  audit: AuditContext;
  idempotencyKey?: string;
  sandboxFault?: string;
}

export interface SubmissionReply extends StoredReply {
  /** A stored reply sent again (Idempotent-Replayed: true). */
  replayed: boolean;
}

/** Retry-After for a submission refused for load: the queue drains within about a second. */
const OVERLOAD_RETRY_AFTER_SECONDS = 1;

/**
 * One submission on either channel: admission control, idempotency around the
 * verification flow, and the reply in that channel's format (stored, so that a
 * replay is identical).
 */
@Injectable()
export class SubmissionService {
  private readonly admission: AdmissionGate;

  constructor(
    private readonly verifications: VerificationService,
    private readonly store: VerificationStore,
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly metrics: VerificationMetrics,
  ) {
    this.admission = new AdmissionGate(config.admission);
    metrics.watchAdmission(this.admission);
  }

  async submitApi(dto: CreateVerificationDto, ctx: SubmissionContext) {
    const reply = await this.submit('api', 'POST /v1/verifications', dto, ctx, apiReply);
    return { ...reply, problem: reply.status >= 400 };
  }

  async submitDropIn(dto: DropInRequestDto, ctx: SubmissionContext): Promise<SubmissionReply> {
    return this.submit('drop_in', 'POST /identity/idcard/ocr', dto, ctx, dropInReply);
  }

  private async submit(
    channel: Channel,
    endpoint: string,
    body: SubmissionBody,
    ctx: SubmissionContext,
    render: (outcome: SubmitOutcome) => StoredReply,
  ): Promise<SubmissionReply> {
    const { request, idempotencyKey: key } = parseSubmission(channel, body, ctx.idempotencyKey);
    const principal = ctx.principal;
    if (principal.clientId === null) throw new Error('submissions come from client keys only');
    const clientId = principal.clientId;
    const idempotency =
      key === undefined
        ? undefined
        : {
            key,
            fingerprint: requestFingerprint(this.config.pii.hmacKey, endpoint, body),
            // Records from before fingerprints were keyed (24 h at most): recognised, never written again.
            legacyFingerprint: legacyRequestFingerprint(endpoint, body),
            render,
          };

    const attempt = async (idem: typeof idempotency) => {
      const permit = await this.admit(channel);
      try {
        return await this.verifications.submit(request, {
          principal: { ...principal, clientId },
          audit: ctx.audit,
          channel,
          admission: permit,
          idempotency: idem,
          sandboxFault: ctx.sandboxFault,
        });
      } catch (err) {
        // Everything before the paid call is one transaction: if it could not get a
        // connection or reach the database, nothing was written and nothing called.
        if (isDatabaseUnavailable(err)) throw this.overloaded(channel, 'database');
        throw err;
      } finally {
        permit.release();
      }
    };
    // With a reuse window, a repeat of an identity being verified right now waits for that
    // answer and reuses it, instead of paying for the same call twice.
    const run = async (idem: typeof idempotency) => {
      for (let round = 0; ; round++) {
        try {
          return await attempt(idem);
        } catch (err) {
          if (!(err instanceof DuplicateInFlight) || round >= 2) {
            if (err instanceof DuplicateInFlight) throw this.identicalInFlight();
            throw err;
          }
          await this.settledOrDeadline(clientId, err.verificationId);
        }
      }
    };
    const outcome = await run(idempotency);
    if (outcome.kind === 'earlier_claim') return this.answerRetry(clientId, key!, outcome.claim, render);
    return { ...render(outcome), replayed: false };
  }

  /** Polls the verification until it has left `pending`, at most the longest a call can take. */
  private async settledOrDeadline(clientId: string, id: string): Promise<void> {
    const deadline = Date.now() + pendingDeadlineMs(this.config.upstream);
    while (Date.now() < deadline) {
      const status = await this.store.statusForClient(clientId, id);
      if (status !== 'pending') return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private identicalInFlight(): ProblemException {
    return new ProblemException(
      'conflict',
      'An identical verification is still in progress; nothing was recorded or charged. Retry shortly.',
      {},
      { 'Retry-After': '1' },
    );
  }

  private async admit(channel: Channel): Promise<AdmissionPermit> {
    try {
      return await this.admission.enter();
    } catch (err) {
      if (err instanceof AdmissionRefused) {
        this.metrics.admissionRefused.inc({ reason: err.reason });
        throw this.overloaded(channel, err.reason);
      }
      throw err;
    }
  }

  /** Refused before anything was written or called: 503 on /v1, the upstream's own 429 on the drop-in. */
  private overloaded(channel: Channel, reason: string): ProblemException {
    const detail = 'idgate is at capacity; nothing was recorded or charged. Retry shortly.';
    const headers = { 'Retry-After': String(OVERLOAD_RETRY_AFTER_SECONDS) };
    if (reason === 'database') this.metrics.admissionRefused.inc({ reason });
    return channel === 'drop_in'
      ? new ProblemException('rate-limited', detail, {}, headers)
      : new ProblemException(
          'service-unavailable',
          detail,
          { retry_after_seconds: OVERLOAD_RETRY_AFTER_SECONDS },
          headers,
        );
  }

  /**
   * A retry under a key already claimed by the same request. Its stored reply if there
   * is one; 409 while the first request may still be running; after that, the
   * verification as it stands: 202 while pending or unknown, the final answer once
   * settled. Never a second upstream call.
   */
  private async answerRetry(
    clientId: string,
    key: string,
    claim: EarlierClaim,
    render: (outcome: SubmitOutcome) => StoredReply,
  ): Promise<SubmissionReply> {
    if (claim.reply) return { ...claim.reply, replayed: true };
    const firstMayRun =
      claim.state === 'in_flight' && Date.now() - claim.createdAt.getTime() < requestDeadlineMs(this.config);
    if (claim.verificationId === null || firstMayRun) {
      throw keyInProgressProblem();
    }
    const verification = await this.store.findForClient(clientId, claim.verificationId);
    if (!verification) throw new ProblemException('not-found', 'The verification of this Idempotency-Key is gone.');
    if (verification.status === 'pending' || verification.status === 'unknown') {
      return { ...render({ kind: 'accepted', verification }), replayed: false };
    }
    const reply = render({ kind: 'recorded', verification });
    await this.store.storeReply(this.prisma, clientId, key, reply);
    return { ...reply, replayed: true };
  }
}
