import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBody, ApiCreatedResponse, ApiHeader, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { BODY_PROBLEMS, ID_PARAM_PROBLEM, NOT_FOUND_BY_ID } from '../common/api-problems';
import type { Response } from 'express';
import { CurrentAuditContext } from '../audit/audit-context.decorator';
import type { AuditContext } from '../audit/audit-vocabulary';
import { Authenticated, CurrentPrincipal } from '../auth/authenticated.decorator';
import type { Principal } from '../auth/roles';
import { uuidParam } from '../common/params';
import { ProblemBody, ProblemException } from '../common/problem';
import { CreateVerificationDto } from './dto/create-verification.dto';
import { SearchVerificationsDto, VerificationFiltersDto } from './dto/list-verifications.dto';
import { VerificationDto, VerificationPageDto } from './dto/verification.dto';
import { SubmissionService } from './submission.service';
import { VerificationReadsService, seesFullPii } from './verification-reads.service';
import { toVerificationDto } from './verification-view';
import { VerificationFilters } from './verification.types';

/**
 * Reads show personal data in full to compliance only, unless it asks for the masked view;
 * to everyone else (finance, a client reading its own) masked.
 */
function readView(principal: Principal, asked: 'full' | 'masked' = 'full'): 'full' | 'masked' {
  return seesFullPii(principal) && asked === 'full' ? 'full' : 'masked';
}

function filtersOf(dto: VerificationFiltersDto & Partial<SearchVerificationsDto>): VerificationFilters {
  const filters: VerificationFilters = {};
  if (dto.from !== undefined) filters.from = dto.from;
  if (dto.to !== undefined) filters.to = dto.to;
  if (dto.result !== undefined) filters.result = dto.result;
  if (dto.charged !== undefined) filters.charged = dto.charged as VerificationFilters['charged'];
  if (dto.status !== undefined) filters.status = dto.status;
  if (dto.reference !== undefined) filters.reference = dto.reference;
  if (dto.client !== undefined) filters.clientId = dto.client;
  if (dto.id_card !== undefined) filters.idCard = dto.id_card;
  if (dto.name !== undefined) filters.name = dto.name;
  return filters;
}

@ApiTags('verifications')
@Controller('v1/verifications')
export class VerificationsController {
  constructor(
    private readonly submissions: SubmissionService,
    private readonly reads: VerificationReadsService,
  ) {}

  @Post()
  @Authenticated({
    roles: ['client'],
    summary: 'Verify a name and ID number, or an ID card image',
    description:
      'Local checks first (an invalid ID number answers `-2`, an invalid name `-3`, without calling or charging). Otherwise the verification is recorded as `pending`, the upstream is called once (retried only where it cannot have charged), and the answer recorded. `Idempotency-Key` replays the first response (200) for 24 h.',
    errors: {
      ...BODY_PROBLEMS,
      400: {
        description: 'A field is missing, malformed or not allowed (each named in `errors`).',
        errors: [{ field: 'name', message: 'is required unless image_url is sent' }],
      },
      404: {
        description: 'A retry whose verification has since been purged.',
        detail: 'The verification of this Idempotency-Key is gone.',
      },
      409: [
        {
          description: 'A request with this Idempotency-Key is still in progress (Retry-After: 1),',
          detail: 'A request with this Idempotency-Key is still in progress; retry later.',
        },
        {
          description: 'or an identical verification (same client, ID number and name) is, within the reuse window.',
          detail: 'An identical verification is still in progress; nothing was recorded or charged. Retry shortly.',
        },
      ],
      422: {
        description: 'This Idempotency-Key was used with a different request.',
        detail: 'This Idempotency-Key was used with a different request.',
        kind: 'unprocessable',
      },
      429: {
        description: 'The client’s daily quota or monthly spend cap is reached (`quota_resets_at`, Retry-After).',
        detail: 'Monthly spend cap of 100000 reached.',
        extensions: { quota_resets_at: '2026-12-01T00:00:00.000Z' },
      },
      502: {
        description:
          'The upstream refused the request: recorded as failed, not charged (`verification_id`, `upstream_error`).',
        detail:
          'The upstream refused the request (token_mismatched). The verification was recorded as failed and not charged.',
        extensions: { verification_id: '3b9d6f0a-8c1e-4d2f-a7b5-6e0c9d8f1a2b', upstream_error: 'token_mismatched' },
      },
      503: [
        {
          description: 'The upstream is failing and its circuit breaker is open: nothing recorded or charged,',
          detail: 'The upstream is failing; idgate is not calling it for now. Nothing was recorded or charged.',
          extensions: { retry_after_seconds: 30 },
        },
        {
          description: 'or idgate is at capacity: nothing recorded or charged,',
          detail: 'idgate is at capacity; nothing was recorded or charged. Retry shortly.',
          extensions: { retry_after_seconds: 1 },
        },
        {
          description:
            'or the upstream could not take the call: recorded as failed, not charged; final for its Idempotency-Key.',
          detail:
            'The upstream could not take the call. The verification was recorded as failed and not charged. This answer is final for its Idempotency-Key: to try again later, send a new key.',
          extensions: { verification_id: '3b9d6f0a-8c1e-4d2f-a7b5-6e0c9d8f1a2b', retry_after_seconds: 30 },
        },
      ],
    },
  })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Up to 255 characters; scoped to your client.' })
  @ApiBody({
    type: CreateVerificationDto,
    examples: {
      nameAndIdCard: {
        summary: 'Name + ID number',
        value: { name: '张三', id_card: '360426199101010071', reference: 'order-1234' },
      },
      image: {
        summary: 'ID card image',
        value: { image_url: 'https://images.example.com/idcard/360426199101010071.jpg' },
      },
    },
  })
  @ApiCreatedResponse({ type: VerificationDto, description: 'Recorded, with the upstream’s answer.' })
  @ApiOkResponse({
    type: VerificationDto,
    description: 'Replayed: the first response to this Idempotency-Key (`Idempotent-Replayed: true`).',
  })
  @ApiAcceptedResponse({
    type: VerificationDto,
    description:
      'Recorded and called; the answer is still being written (status `pending`). `Location` names the verification to read; Retry-After says when.',
  })
  async create(
    @Body() body: CreateVerificationDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() audit: AuditContext,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Headers('x-sandbox-fault') sandboxFault: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<VerificationDto> {
    const reply = await this.submissions.submitApi(body, { principal, audit, idempotencyKey, sandboxFault });
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    if (reply.replayed) res.setHeader('Idempotent-Replayed', 'true');
    if (reply.problem) throw ProblemException.replay(reply.body as ProblemBody, reply.headers);
    res.status(reply.replayed ? 200 : reply.status);
    return reply.body as VerificationDto;
  }

  @Get(':id')
  @Authenticated({
    roles: ['client', 'compliance', 'finance'],
    summary: 'One verification (compliance sees personal data in full; that read is audited)',
    description:
      'Finance, and a client reading its own, see the name as `张*三` and the ID number as its first 6 and last 4 characters; sex, nation, birth and address are empty (they would reveal the masked digits or more).',
    errors: {
      400: ID_PARAM_PROBLEM,
      404: NOT_FOUND_BY_ID('verification'),
    },
  })
  @ApiOkResponse({ type: VerificationDto })
  async get(
    @Param('id', uuidParam('id')) id: string,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() audit: AuditContext,
  ): Promise<VerificationDto> {
    return toVerificationDto(await this.reads.getVerification(principal, id, audit), readView(principal));
  }

  @Get()
  @Authenticated({
    roles: ['client', 'compliance', 'finance'],
    summary: 'List verifications, newest first (clients see their own)',
    errors: {
      400: {
        description: 'A filter is malformed, or the query names an unknown one.',
        errors: [
          {
            field: 'from',
            message: 'must be an ISO 8601 date-time with a zone such as 2026-01-01T00:00:00Z, or a date YYYY-MM-DD',
          },
        ],
      },
    },
  })
  @ApiOkResponse({ type: VerificationPageDto })
  async list(
    @Query() query: VerificationFiltersDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() audit: AuditContext,
  ): Promise<VerificationPageDto> {
    return this.page(principal, query, audit);
  }

  @Post('search')
  @HttpCode(200)
  @Authenticated({
    roles: ['client', 'compliance', 'finance'],
    summary: 'Search verifications, including by exact ID number or name (kept out of URLs)',
    description:
      'A search by `id_card` or `name` is audited and spends one of the key’s PII_SEARCH_PER_HOUR exact-match searches (shared with the audit search): beyond them, 429 with Retry-After and a security alert. Finance sees personal data masked and gets 403 for such a search; a client searches its own verifications only.',
    errors: {
      ...BODY_PROBLEMS,
      400: {
        description: 'A filter is malformed, or the body names an unknown one.',
        errors: [{ field: 'limit', message: 'must not be greater than 200' }],
      },
      403: {
        description: 'Finance searching by ID number or name (it sees personal data masked).',
        detail: 'This role sees personal data masked and may not search by ID number or name.',
      },
      429: {
        description: 'The key’s exact-match searches this hour (PII_SEARCH_PER_HOUR) are spent.',
        detail: 'This API key has used its 100 searches by ID number or name for this hour.',
        extensions: { retry_after_seconds: 1800 },
      },
    },
  })
  @ApiOkResponse({ type: VerificationPageDto })
  async search(
    @Body() body: SearchVerificationsDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() audit: AuditContext,
  ): Promise<VerificationPageDto> {
    return this.page(principal, body, audit);
  }

  private async page(
    principal: Principal,
    filters: VerificationFiltersDto & Partial<SearchVerificationsDto>,
    audit: AuditContext,
  ): Promise<VerificationPageDto> {
    const view = readView(principal, filters.view);
    const page = await this.reads.listVerifications(
      principal,
      filtersOf(filters),
      filters.cursor,
      filters.limit ?? 50,
      audit,
      view,
    );
    return {
      items: page.items.map((v) => toVerificationDto(v, view)),
      next_cursor: page.next_cursor,
    };
  }
}
