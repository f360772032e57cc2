import { Body, Controller, Headers, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOkResponse, ApiTags } from '@nestjs/swagger';
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
      'Request and response exactly as the upstream documents them; use an idgate client key as the bearer token.',
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
