import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiExtraModels, ApiOkResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { Response } from 'express';
import { Authenticated } from '../../auth/authenticated.decorator';
import { csvRows } from '../../common/csv-safety';
import { UsageQueryDto, UsageReportDto } from '../dto/usage.dto';
import { UsageService } from './usage.service';

export const USAGE_CSV_COLUMNS = [
  'key',
  'calls',
  'charged_calls',
  'unknown_calls',
  'amount',
  'unknown_amount',
  'currency',
] as const;

/** True when the caller asked for CSV by query or by Accept. */
export function wantsCsv(format: string | undefined, accept: string | undefined): boolean {
  if (format !== undefined) return format === 'csv';
  return /\btext\/csv\b/.test(accept ?? '') && !/\bapplication\/json\b/.test(accept ?? '');
}

@ApiTags('billing')
@Controller('v1/billing/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get()
  @Authenticated({
    roles: ['finance', 'admin'],
    summary: 'Usage: calls, charged calls and amounts per day, client or result',
    description: 'Computed in PostgreSQL. `format=csv` (or `Accept: text/csv`) returns the same items as CSV.',
    errors: {
      400: {
        description: 'A parameter is missing or malformed, or the period is empty or too long.',
        errors: [{ field: 'to', message: 'must be after from' }],
      },
    },
  })
  @ApiExtraModels(UsageReportDto)
  @ApiOkResponse({
    description: 'The report (JSON), or its items as CSV.',
    content: {
      'application/json': { schema: { $ref: getSchemaPath(UsageReportDto) } },
      'text/csv': {
        schema: { type: 'string' },
        example:
          'key,calls,charged_calls,unknown_calls,amount,unknown_amount,currency\r\n' +
          '01a22e5e-cce7-77bb-ad43-25d43bd93d76,1284,1190,2,59500,100,CNY\r\n',
      },
    },
  })
  async get(
    @Query() query: UsageQueryDto,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UsageReportDto | string> {
    const report = await this.usage.usage({
      from: query.from,
      to: query.to,
      groupBy: query.group_by,
      tz: query.tz ?? 'UTC',
    });
    if (!wantsCsv(query.format, accept)) return report;
    res.type('text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="usage-${query.group_by}.csv"`);
    return csvRows([[...USAGE_CSV_COLUMNS], ...report.items.map((i) => USAGE_CSV_COLUMNS.map((c) => i[c]))]);
  }
}
