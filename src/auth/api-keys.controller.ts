import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
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
  @Authenticated({ roles: ['admin'], summary: 'List API keys, newest first' })
  @ApiOkResponse({ type: ApiKeyPageDto })
  async list(@Query() query: PageQueryDto): Promise<ApiKeyPageDto> {
    const page = await this.apiKeys.listKeys(query.cursor, query.limit ?? 50);
    return { items: page.items.map(ApiKeyDto.from), next_cursor: page.next_cursor };
  }

  @Delete(':id')
  @HttpCode(200)
  @Authenticated({ roles: ['admin'], summary: 'Revoke an API key (it stops working at once)' })
  @ApiOkResponse({ type: ApiKeyDto })
  @ApiNotFoundResponse({ description: 'No key with that id.' })
  async revoke(
    @Param('id', uuidParam('id')) id: string,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<ApiKeyDto> {
    return ApiKeyDto.from(await this.apiKeys.revokeKey(id, context));
  }
}
