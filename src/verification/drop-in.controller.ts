import { Body, Controller, Headers, HttpCode, Post, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBody, ApiHeader, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { BODY_PROBLEMS } from '../common/api-problems';
import { UpstreamErrorDto } from '../common/problem.dto';
import type { Response } from 'express';
import { CurrentAuditContext } from '../audit/audit-context.decorator';
import type { AuditContext } from '../audit/audit-vocabulary';
import { Authenticated, CurrentPrincipal } from '../auth/authenticated.decorator';
import type { Principal } from '../auth/roles';
import { DropInRequestDto, DropInResponseDto } from './dto/drop-in.dto';
import { SubmissionService } from './submission.service';

/**
 * Drop-in replacement for the upstream's `POST /identity/idcard/ocr`: same request,
 * same response, same error format (`{success:false,error:{code,message},trace_id}`).
 * A client app points its base URL at idgate and keeps its code; idgate still
 * records, audits and bills the call.
 */
@ApiTags('drop-in (upstream compatible)')
@Controller('identity/idcard')
export class DropInController {
  constructor(private readonly submissions: SubmissionService) {}

  @Post('ocr')
  @HttpCode(200)
  @Authenticated({
    roles: ['client'],
    summary: 'Upstream-compatible ID card verification',
    description:
      'Request and response exactly as the upstream documents them, errors included (`{ success: false, error: { code, message }, trace_id }` with the upstream’s codes, not problem+json); use an idgate client key as the bearer token.',
    errorStyle: 'upstream',
    errors: {
      ...BODY_PROBLEMS,
      400: [
        {
          description: 'A field is missing or malformed (`token_mismatched`, naming the field),',
          errors: [{ field: 'id_card', message: 'must be a string' }],
        },
        {
          description: 'or the upstream refused the request parameters (recorded as failed, not charged).',
          kind: 'bad-request',
          detail: 'The upstream refused the request parameters.',
        },
      ],
      409: {
        description: 'A request with this Idempotency-Key, or an identical verification, is still in progress.',
        detail: 'A request with this Idempotency-Key is still in progress; retry later.',
      },
      422: {
        description: 'This Idempotency-Key was used with a different request.',
        detail: 'This Idempotency-Key was used with a different request.',
        kind: 'unprocessable',
      },
      429: [
        {
          description: 'idgate is at capacity (nothing recorded or charged; Retry-After),',
          detail: 'idgate is at capacity; nothing was recorded or charged. Retry shortly.',
        },
        {
          description: 'or the client’s quota or spend cap is reached.',
          detail: 'Monthly spend cap of 100000 reached.',
        },
      ],
      500: [
        {
          description: 'The upstream call failed or was refused: recorded as failed, nothing charged,',
          detail: 'The upstream call failed; nothing was charged.',
        },
        {
          description:
            'or the upstream did not answer readably: recorded as unknown, reconciled later; do not retry blindly.',
          detail:
            'The upstream did not answer readably; the outcome is recorded as unknown and will be reconciled. Do not retry blindly.',
        },
      ],
      503: {
        description:
          'The upstream is unavailable (its circuit breaker is open, or it could not take the call); nothing charged.',
        detail: 'The upstream is unavailable; nothing was charged. Try again later.',
      },
    },
  })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Optional; replays the first response for 24 h.',
  })
  @ApiBody({
    type: DropInRequestDto,
    examples: {
      nameAndIdCard: { summary: 'Name + ID number', value: { name: '张三', id_card: '360426199101010071' } },
      image: {
        summary: 'ID card image',
        value: { image_url: 'https://images.example.com/idcard/360426199101010071.jpg' },
      },
    },
  })
  @ApiOkResponse({ type: DropInResponseDto })
  @ApiAcceptedResponse({
    type: UpstreamErrorDto,
    description:
      'No such answer upstream: recorded and called, the outcome still being written (`success: false`, so no client takes it for a result). `X-Idgate-Verification-Id` names the verification; retry with the same Idempotency-Key to read the outcome.',
    example: {
      success: false,
      error: {
        code: 'api_error',
        message: 'Accepted: the outcome is still being recorded. Retry with the same Idempotency-Key to read it.',
      },
      trace_id: '3b9d6f0a-8c1e-4d2f-a7b5-6e0c9d8f1a2b',
    },
  })
  async verify(
    @Body() body: DropInRequestDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() audit: AuditContext,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Headers('x-sandbox-fault') sandboxFault: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<unknown> {
    const reply = await this.submissions.submitDropIn(body, { principal, audit, idempotencyKey, sandboxFault });
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    if (reply.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(reply.status);
    return reply.body;
  }
}
