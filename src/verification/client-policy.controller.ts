import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { BODY_PROBLEMS, ID_PARAM_PROBLEM, NOT_FOUND_BY_ID } from '../common/api-problems';
import { CurrentAuditContext } from '../audit/audit-context.decorator';
import type { AuditContext } from '../audit/audit-vocabulary';
import { Authenticated } from '../auth/authenticated.decorator';
import { uuidParam } from '../common/params';
import { ClientPolicyService } from './client-policy.service';
import { ClientPolicyDto } from './dto/client-policy.dto';

@ApiTags('clients')
@Controller('v1/clients/:id/policy')
export class ClientPolicyController {
  constructor(private readonly policies: ClientPolicyService) {}

  @Get()
  @Authenticated({
    roles: ['admin'],
    summary: 'A client’s limits: daily limit, monthly spend cap, reuse window',
    errors: {
      400: ID_PARAM_PROBLEM,
      404: NOT_FOUND_BY_ID('client'),
    },
  })
  @ApiOkResponse({ type: ClientPolicyDto })
  async get(@Param('id', uuidParam('id')) id: string): Promise<ClientPolicyDto> {
    return ClientPolicyDto.from(await this.policies.policyOfExistingClient(id));
  }

  @Put()
  @Authenticated({
    roles: ['admin'],
    summary: 'Set a client’s limits (null turns one off)',
    errors: {
      ...BODY_PROBLEMS,
      400: {
        description: '`id` is not a UUID, or a limit is missing or out of range (each named in `errors`).',
        errors: [{ field: 'reuse_window_seconds', message: 'must not be less than 1' }],
      },
      404: NOT_FOUND_BY_ID('client'),
    },
  })
  @ApiOkResponse({ type: ClientPolicyDto })
  async put(
    @Param('id', uuidParam('id')) id: string,
    @Body() body: ClientPolicyDto,
    @CurrentAuditContext() audit: AuditContext,
  ): Promise<ClientPolicyDto> {
    const policy = await this.policies.setPolicy(
      id,
      {
        dailyLimit: body.daily_limit,
        monthlySpendCap: body.monthly_spend_cap,
        reuseWindowSeconds: body.reuse_window_seconds,
      },
      audit,
    );
    return ClientPolicyDto.from(policy);
  }
}
