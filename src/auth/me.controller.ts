import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Authenticated, CurrentPrincipal } from './authenticated.decorator';
import { ROLES } from './roles';
import type { Principal } from './roles';

export class MeDto {
  @ApiProperty({ description: 'The role of the key that made this request.', enum: ROLES })
  role: string;

  @ApiProperty({ description: 'The key’s visible prefix (never the secret).', example: 'idg_live_H8bEowPl' })
  prefix: string;

  @ApiProperty({
    description: 'For `client` keys, the client app the key belongs to; otherwise null.',
    nullable: true,
    type: String,
    format: 'uuid',
    example: '01a22e5e-cce7-77bb-ad43-25d43bd93d76',
  })
  client_id: string | null;
}

@ApiTags('auth')
@Controller('v1/me')
export class MeController {
  @Get()
  @Authenticated({
    roles: ['client', 'compliance', 'finance', 'admin'],
    summary: 'Who am I: the role and visible prefix of the presented key',
    description: 'Lets a caller (the staff console) learn its role without probing endpoints it may be denied.',
  })
  @ApiOkResponse({ type: MeDto })
  me(@CurrentPrincipal() principal: Principal): MeDto {
    return { role: principal.role, prefix: principal.keyPrefix, client_id: principal.clientId };
  }
}
