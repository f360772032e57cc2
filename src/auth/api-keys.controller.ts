import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { BODY_PROBLEMS, ID_PARAM_PROBLEM, NOT_FOUND_BY_ID, PAGE_QUERY_PROBLEM } from '../common/api-problems';
import { CurrentAuditContext } from '../audit/audit-context.decorator';
import type { AuditContext } from '../audit/audit-vocabulary';
import { PageQueryDto } from '../common/pagination';
import { uuidParam } from '../common/params';
import { ApiKeysService } from './api-keys.service';
import { Authenticated, CurrentPrincipal } from './authenticated.decorator';
import type { Principal } from './roles';
import { ApiKeyDto, ApiKeyPageDto, CreateApiKeyDto, IssuedApiKeyDto } from './dto/api-key.dto';

@ApiTags('api keys')
@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post()
  @Authenticated({
    roles: ['admin'],
    summary: 'Create an API key (the key is shown once)',
    description:
      'Keys that read personal data in full (role compliance) are not made here by one admin key: use the CLI, or POST /v1/api-key-requests with a second admin key approving (403 otherwise).',
    errors: {
      ...BODY_PROBLEMS,
      400: [
        {
          description:
            'A field is missing or malformed; `client_id` is required for a client key and refused for others,',
          errors: [{ field: 'client_id', message: 'is required for a key with role client' }],
        },
        {
          description: 'or `client_id` names no existing client.',
          errors: [{ field: 'client_id', message: 'names no existing client' }],
        },
      ],
      403: {
        description: 'The role reads personal data in full (compliance): one admin key cannot make it.',
        detail:
          'A compliance key reads personal data in full: create it from the CLI (npm run cli -- keys create), or request it with POST /v1/api-key-requests and have a second admin key approve it.',
      },
    },
  })
  @ApiCreatedResponse({ type: IssuedApiKeyDto })
  async create(
    @Body() body: CreateApiKeyDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<IssuedApiKeyDto> {
    const issued = await this.apiKeys.createKey(
      { role: body.role, name: body.name.trim(), clientId: body.client_id },
      context,
      { kind: 'api', byKeyId: principal.keyId },
    );
    return IssuedApiKeyDto.fromIssued(issued);
  }

  @Get()
  @Authenticated({ roles: ['admin'], summary: 'List API keys, newest first', errors: { 400: PAGE_QUERY_PROBLEM } })
  @ApiOkResponse({ type: ApiKeyPageDto })
  async list(@Query() query: PageQueryDto): Promise<ApiKeyPageDto> {
    const page = await this.apiKeys.listKeys(query.cursor, query.limit ?? 50);
    return { items: page.items.map(ApiKeyDto.from), next_cursor: page.next_cursor };
  }

  @Delete(':id')
  @HttpCode(200)
  @Authenticated({
    roles: ['admin'],
    summary: 'Revoke an API key (it stops working at once)',
    errors: { 400: ID_PARAM_PROBLEM, 404: NOT_FOUND_BY_ID('API key') },
  })
  @ApiOkResponse({ type: ApiKeyDto })
  async revoke(
    @Param('id', uuidParam('id')) id: string,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<ApiKeyDto> {
    return ApiKeyDto.from(await this.apiKeys.revokeKey(id, context));
  }
}
