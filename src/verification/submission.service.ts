import { Injectable } from '@nestjs/common';
import type { AuditContext } from '../audit/audit-vocabulary';
import type { Principal } from '../auth/roles';
import { validationProblem } from '../common/problem';
import { AppConfig } from '../config/app-config';
import type { DropInRequestDto } from './dto/drop-in.dto';
import type { CreateVerificationDto } from './dto/create-verification.dto';
import { IdempotencyService, StoredReply } from './idempotency.service';
import { apiReply, dropInReply } from './verification-replies';
import { pendingDeadlineMs, requestFingerprint } from './verification-rules';
import { SubmitOutcome, VerificationService } from './verification.service';
import { VerificationStore } from './verification.store';
import { Channel, VerificationRequest } from './verification.types';

export interface SubmissionContext {
  principal: Principal;
  audit: AuditContext;
  idempotencyKey?: string;
  sandboxFault?: string;
}

const MAX_IDEMPOTENCY_KEY = 255;

/**
 * One submission on either channel: idempotency around the verification flow,
 * and the reply in that channel's format (stored, so a replay is identical).
 */
@Injectable()
export class SubmissionService {
  constructor(
    private readonly verifications: VerificationService,
    private readonly idempotency: IdempotencyService,
    private readonly store: VerificationStore,
    private readonly config: AppConfig,
  ) {}

  async submitApi(dto: CreateVerificationDto, ctx: SubmissionContext) {
    const request: VerificationRequest = {
      name: dto.name,
      idCard: dto.id_card,
      imageUrl: dto.image_url,
      encryption: dto.encryption,
      reference: dto.reference,
    };
    if (dto.image_url !== undefined && (dto.name !== undefined || dto.id_card !== undefined)) {
      throw validationProblem([
        { field: 'image_url', message: 'cannot be combined with name and id_card: choose one mode' },
      ]);
    }
    const reply = await this.submit('api', 'POST /v1/verifications', dto, request, ctx, apiReply);
    return { ...reply, problem: reply.status >= 400 };
  }

  async submitDropIn(dto: DropInRequestDto, ctx: SubmissionContext) {
    const request: VerificationRequest = {
      name: dto.name,
      idCard: dto.id_card,
      imageUrl: dto.image_url,
      encryption: dto.encryption,
    };
    return this.submit('drop_in', 'POST /identity/idcard/ocr', dto, request, ctx, dropInReply);
  }

  private async submit(
    channel: Channel,
    endpoint: string,
    body: object,
    request: VerificationRequest,
    ctx: SubmissionContext,
    render: (outcome: SubmitOutcome) => StoredReply,
  ) {
    const principal = ctx.principal;
    if (principal.clientId === null) throw new Error('submissions come from client keys only');
    const clientPrincipal = { ...principal, clientId: principal.clientId };
    const work = async () =>
      render(
        await this.verifications.submit(request, {
          principal: clientPrincipal,
          audit: ctx.audit,
          channel,
          idempotencyKey: ctx.idempotencyKey,
          sandboxFault: ctx.sandboxFault,
        }),
      );
    if (ctx.idempotencyKey === undefined) return { ...(await work()), replayed: false };

    const key = ctx.idempotencyKey;
    if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY) {
      throw validationProblem([{ field: 'Idempotency-Key', message: `must be 1-${MAX_IDEMPOTENCY_KEY} characters` }]);
    }
    return this.idempotency.execute(
      {
        clientId: principal.clientId,
        key,
        fingerprint: requestFingerprint(endpoint, body),
        staleAfterMs: pendingDeadlineMs(this.config.upstream),
      },
      work,
      async (verificationId) => {
        const v = await this.store.findForClient(principal.clientId!, verificationId);
        return v && v.status !== 'pending' ? render({ kind: 'recorded', verification: v }) : null;
      },
    );
  }
}
