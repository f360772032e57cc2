import { Body, Controller, Get, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { BODY_PROBLEMS, PAGE_QUERY_PROBLEM } from '../common/api-problems';
import { CurrentAuditContext } from '../audit/audit-context.decorator';
import type { AuditContext } from '../audit/audit-vocabulary';
import { PageQueryDto } from '../common/pagination';
import { Authenticated } from './authenticated.decorator';
import { ClientsService } from './clients.service';
import { ClientDto, ClientPageDto, CreateClientDto } from './dto/client.dto';

@ApiTags('clients')
@Controller('v1/clients')
export class ClientsController {
  constructor(private readonly clients: ClientsService) {}

  @Post()
  @Authenticated({
    roles: ['admin'],
    summary: 'Register a client app',
    errors: {
      ...BODY_PROBLEMS,
      400: {
        description: '`name` is missing or malformed.',
        errors: [{ field: 'name', message: 'must be longer than or equal to 1 characters' }],
      },
      409: { description: 'A client with that name exists.', detail: 'A client named "acme-pos" already exists.' },
    },
  })
  @ApiCreatedResponse({ type: ClientDto })
  async create(@Body() body: CreateClientDto, @CurrentAuditContext() context: AuditContext): Promise<ClientDto> {
    return ClientDto.from(await this.clients.createClient(body.name.trim(), context));
  }

  @Get()
  @Authenticated({ roles: ['admin'], summary: 'List client apps, newest first', errors: { 400: PAGE_QUERY_PROBLEM } })
  @ApiOkResponse({ type: ClientPageDto })
  async list(@Query() query: PageQueryDto): Promise<ClientPageDto> {
    const page = await this.clients.listClients(query.cursor, query.limit ?? 50);
    return { items: page.items.map(ClientDto.from), next_cursor: page.next_cursor };
  }
}
