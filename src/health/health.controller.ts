import { Controller, Get, HttpCode, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/authenticated.decorator';
import { HealthService } from './health.service';

class CheckDto {
  @ApiProperty({ description: '"up" or "down".', enum: ['up', 'down'] })
  status: 'up' | 'down';

  @ApiProperty({ description: 'Why it is down (no secrets).', required: false })
  detail?: string;
}

class ReadinessDto {
  @ApiProperty({ description: '"ok" when every check is up, otherwise "unavailable".', enum: ['ok', 'unavailable'] })
  status: 'ok' | 'unavailable';

  @ApiProperty({
    description: 'Each dependency that gates readiness.',
    type: 'object',
    additionalProperties: { $ref: '#/components/schemas/CheckDto' },
  })
  checks: Record<string, CheckDto>;
}

class LivenessDto {
  @ApiProperty({ description: 'Always "ok" while the process serves requests.', enum: ['ok'] })
  status: 'ok';
}

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('live')
  @Public('Liveness: the process is up')
  @ApiOkResponse({ type: LivenessDto })
  live(): LivenessDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @Public('Readiness: the database answers and the upstream circuit is not open (503 otherwise)')
  @HttpCode(HttpStatus.OK)
  @ApiOkResponse({ type: ReadinessDto })
  @ApiServiceUnavailableResponse({ type: ReadinessDto })
  async ready(@Res({ passthrough: true }) res: Response): Promise<ReadinessDto> {
    const checks = await this.health.readinessChecks();
    const ok = Object.values(checks).every((c) => c.status === 'up');
    if (!ok) res.status(HttpStatus.SERVICE_UNAVAILABLE);
    return { status: ok ? 'ok' : 'unavailable', checks };
  }
}
