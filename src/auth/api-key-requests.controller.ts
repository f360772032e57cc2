import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { BODY_PROBLEMS, ID_PARAM_PROBLEM, NOT_FOUND_BY_ID } from '../common/api-problems';
import { CurrentAuditContext } from '../audit/audit-context.decorator';
import type { AuditContext } from '../audit/audit-vocabulary';
import { uuidParam } from '../common/params';
import { ApiKeysService } from './api-keys.service';
import { ApprovalsService } from './approvals.service';
import { Authenticated, CurrentPrincipal } from './authenticated.decorator';
import { IssuedApiKeyDto } from './dto/api-key.dto';
import { ApiKeyRequestDto, ApiKeyRequestListDto, CreateApiKeyRequestDto } from './dto/api-key-request.dto';
import type { Principal, Role } from './roles';

/** How long a request for such a key waits for its approval and issue. */
const KEY_REQUEST_VALID_MS = 24 * 60 * 60 * 1000;
const APPROVER_ROLES: Role[] = ['admin'];

/**
 * Keys that read personal data in full, through the API: one admin key asks, a second
 * admin key approves (older than the request, not descended from the asking key), then
 * the asking key receives the key, once. Each step is audited, the issue raises an alert.
 */
@ApiTags('api keys')
@Controller('v1/api-key-requests')
export class ApiKeyRequestsController {
  constructor(
    private readonly approvals: ApprovalsService,
    private readonly apiKeys: ApiKeysService,
  ) {}

  @Post()
  @Authenticated({
    roles: ['admin'],
    summary: 'Ask for a key that reads personal data in full (needs a second admin key’s approval)',
    errors: {
      ...BODY_PROBLEMS,
      400: {
        description: 'A field is missing or malformed.',
        errors: [{ field: 'role', message: 'must be one of the following values: compliance' }],
      },
    },
  })
  @ApiCreatedResponse({ type: ApiKeyRequestDto })
  async request(
    @Body() body: CreateApiKeyRequestDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<ApiKeyRequestDto> {
    const record = await this.approvals.request(
      'api_key.create_full_pii',
      { role: body.role, label: body.name.trim() },
      principal,
      context,
      KEY_REQUEST_VALID_MS,
    );
    return ApiKeyRequestDto.from(record);
  }

  @Get()
  @Authenticated({ roles: ['admin'], summary: 'Requests for keys that read personal data in full, newest first' })
  @ApiOkResponse({ type: ApiKeyRequestListDto })
  async list(): Promise<ApiKeyRequestListDto> {
    return { items: (await this.approvals.list('api_key.create_full_pii')).map(ApiKeyRequestDto.from) };
  }

  @Post(':id/approve')
  @HttpCode(200)
  @Authenticated({
    roles: ['admin'],
    summary: 'Approve a key request as a second admin key (older than the request, not made by the asking key)',
    errors: {
      400: ID_PARAM_PROBLEM,
      403: {
        description:
          'This key may not approve it (the asking key, one it made, one younger than the request), or it expired.',
        detail: 'Approval refused: a request cannot be approved by the key that made it.',
      },
      404: NOT_FOUND_BY_ID('approval request'),
      409: {
        description: 'The request changed meanwhile (approved by another key).',
        detail: 'This request changed meanwhile; read it again.',
      },
    },
  })
  @ApiOkResponse({ type: ApiKeyRequestDto })
  async approve(
    @Param('id', uuidParam('id')) id: string,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<ApiKeyRequestDto> {
    return ApiKeyRequestDto.from(await this.approvals.approve(id, principal, APPROVER_ROLES, context));
  }

  @Post(':id/issue')
  @Authenticated({
    roles: ['admin'],
    summary: 'Receive the approved key (the asking key only, once; the key is shown once)',
    errors: {
      400: ID_PARAM_PROBLEM,
      403: {
        description: 'Not approved yet, expired, or not the asking key.',
        detail: 'Not allowed: this request is not approved yet.',
      },
      404: NOT_FOUND_BY_ID('approval request'),
      409: {
        description: 'The key was issued meanwhile (it is issued once).',
        detail: 'This request was carried out meanwhile.',
      },
    },
  })
  @ApiCreatedResponse({ type: IssuedApiKeyDto })
  async issue(
    @Param('id', uuidParam('id')) id: string,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<IssuedApiKeyDto> {
    let origin: Parameters<ApiKeysService['announce']>[2] | undefined;
    const issued = await this.approvals.carryOut(id, 'api_key.create_full_pii', principal, (tx, request) => {
      origin = {
        kind: 'approved',
        byKeyId: principal.keyId,
        approvedByKeyId: request.approvedByKeyId!,
        approvalId: request.id,
      };
      return this.apiKeys.createKeyIn(
        tx,
        { role: request.payload.role as Role, name: String(request.payload.label) },
        context,
        origin,
      );
    });
    await this.apiKeys.announce(issued, context, origin!);
    return IssuedApiKeyDto.fromIssued(issued);
  }
}
