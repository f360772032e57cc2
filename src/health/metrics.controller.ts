import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { SharedTokenProtected } from '../auth/authenticated.decorator';
import { MetricsService } from './metrics.service';

@ApiTags('health')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @SharedTokenProtected(
    'metrics',
    'Prometheus metrics (no personal data)',
    'Open when METRICS_TOKEN is unset; otherwise send `Authorization: Bearer <METRICS_TOKEN>`. ' +
      'Restrict it by network in production either way.',
  )
  @Header('Cache-Control', 'no-store')
  @ApiProduces('text/plain')
  @ApiOkResponse({
    description: 'Prometheus text exposition format.',
    schema: {
      type: 'string',
      example:
        '# HELP idgate_upstream_charged_calls_total Upstream calls answered with a charged result code (0, -1).\n' +
        '# TYPE idgate_upstream_charged_calls_total counter\n' +
        'idgate_upstream_charged_calls_total 1284\n',
    },
  })
  async scrape(@Res() res: Response): Promise<void> {
    const { contentType, body } = await this.metrics.render();
    res.type(contentType).send(body);
  }
}
