import { Controller, Get, HttpCode, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/authenticated.decorator';
import type { CircuitStateName } from '../upstream/upstream.types';
import { HealthService } from './health.service';

class CheckDto {
  @ApiProperty({ description: '"up" or "down".', enum: ['up', 'down'] })
  status: 'up' | 'down';

  @ApiProperty({ description: 'Why it is down (no secrets).', required: false, example: 'no answer within 2 s' })
  detail?: string;
}

class UpstreamReportDto {
  @ApiProperty({ description: '"up" while the circuit is closed, "degraded" otherwise.', enum: ['up', 'degraded'] })
  status: 'up' | 'degraded';

  @ApiProperty({ description: 'The upstream circuit breaker.', enum: ['closed', 'open', 'half_open', 'isolated'] })
  circuit: CircuitStateName;

  @ApiProperty({
    description: '"sandbox" when results are simulated (no UPSTREAM_TOKEN).',
    enum: ['vendor', 'sandbox'],
  })
  mode: 'vendor' | 'sandbox';

  @ApiProperty({
    required: false,
    description: 'What the state means for verifications.',
    example:
      'The upstream is failing: verifications answer 503 without calling it until the breaker lets a trial call through.',
  })
  detail?: string;

  @ApiProperty({ required: false, description: 'While not closed: seconds until calls may flow again.', example: 30 })
  retry_after_seconds?: number;
}

class ReadinessDto {
  @ApiProperty({ description: '"ok" when every check is up, otherwise "unavailable".', enum: ['ok', 'unavailable'] })
  status: 'ok' | 'unavailable';

  @ApiProperty({
    description: 'Each dependency that gates readiness (the database).',
    type: 'object',
    additionalProperties: { $ref: '#/components/schemas/CheckDto' },
    example: { database: { status: 'up' } },
  })
  checks: Record<string, CheckDto>;

  @ApiProperty({
    type: UpstreamReportDto,
    description:
      'The vendor as this instance sees it. Reported, not gating: a vendor outage leaves reads, audit and billing working, and the breaker recovers by itself. Alert on it (idgate_upstream_circuit_state) instead.',
  })
  upstream: UpstreamReportDto;
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
  @Public('Readiness: the database answers (503 otherwise); the upstream circuit is reported, not gating')
  @HttpCode(HttpStatus.OK)
  @ApiOkResponse({ type: ReadinessDto })
  @ApiServiceUnavailableResponse({
    type: ReadinessDto,
    description: 'The database does not answer: take this instance out of rotation.',
    example: {
      status: 'unavailable',
      checks: { database: { status: 'down', detail: 'no answer within 2 s' } },
      upstream: { status: 'up', circuit: 'closed', mode: 'vendor' },
    },
  })
  async ready(@Res({ passthrough: true }) res: Response): Promise<ReadinessDto> {
    const checks = await this.health.readinessChecks();
    const ok = Object.values(checks).every((c) => c.status === 'up');
    if (!ok) res.status(HttpStatus.SERVICE_UNAVAILABLE);
    return { status: ok ? 'ok' : 'unavailable', checks, upstream: this.health.upstreamReport() };
  }
}
