import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { IsDateTime } from '../../common/date-time';
import { USAGE_GROUPS } from '../usage/usage-rules';
import type { UsageGroup } from '../usage/usage-rules';

export class UsageQueryDto {
  @ApiPropertyOptional({
    description:
      'Start (inclusive): a date `YYYY-MM-DD` (midnight in `tz`) or an ISO 8601 date-time with a zone. Default: the first day of the current UTC month.',
    example: '2026-11-01',
  })
  @IsOptional()
  @IsDateTime()
  from?: string;

  @ApiPropertyOptional({
    description:
      'End (exclusive): a date `YYYY-MM-DD` (midnight in `tz`) or an ISO 8601 date-time with a zone. Default: now.',
    example: '2026-12-01',
  })
  @IsOptional()
  @IsDateTime()
  to?: string;

  @ApiProperty({
    description:
      'How to group: per day (in `tz`), per client id, or per result code (or status when there is no result).',
    enum: USAGE_GROUPS,
    example: 'day',
  })
  @IsIn(USAGE_GROUPS)
  group_by: UsageGroup;

  @ApiPropertyOptional({
    description: 'IANA time zone for day boundaries and date bounds.',
    default: 'UTC',
    example: 'Asia/Shanghai',
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  tz?: string;

  @ApiPropertyOptional({
    description: 'Response format; `csv` (or `Accept: text/csv`) exports the items as CSV.',
    enum: ['json', 'csv'],
    default: 'json',
  })
  @IsOptional()
  @IsIn(['json', 'csv'])
  format?: 'json' | 'csv';
}

export class UsageTotalsDto {
  @ApiProperty({ description: 'Verifications recorded in the period.', example: 1240 })
  calls: number;

  @ApiProperty({ description: 'Of them, charged.', example: 1198 })
  charged_calls: number;

  @ApiProperty({ description: 'Of them, with the charge not known yet (settled by reconciliation).', example: 3 })
  unknown_calls: number;

  @ApiProperty({
    description: 'Charged amount in minor units of `currency` (unknown calls not included).',
    example: 59900,
  })
  amount: number;

  @ApiProperty({ description: 'What the unknown calls would cost if all were charged (minor units).', example: 150 })
  unknown_amount: number;

  @ApiProperty({ description: 'ISO 4217 currency code.', example: 'CNY' })
  currency: string;
}

export class UsageItemDto extends UsageTotalsDto {
  @ApiProperty({
    description: 'The group: a day `YYYY-MM-DD` in `tz`, a client id, or a result code / status.',
    example: '2026-11-25',
  })
  key: string;
}

export class UsageReportDto {
  @ApiProperty({
    description: 'Start of the period (inclusive, UTC).',
    format: 'date-time',
    example: '2026-10-31T16:00:00.000Z',
  })
  from: string;

  @ApiProperty({
    description: 'End of the period (exclusive, UTC).',
    format: 'date-time',
    example: '2026-11-30T16:00:00.000Z',
  })
  to: string;

  @ApiProperty({ description: 'Time zone of day boundaries.', example: 'Asia/Shanghai' })
  tz: string;

  @ApiProperty({ description: 'Grouping used.', enum: USAGE_GROUPS })
  group_by: UsageGroup;

  @ApiProperty({ type: [UsageItemDto], description: 'One line per group and currency, ordered by key.' })
  items: UsageItemDto[];

  @ApiProperty({ type: [UsageTotalsDto], description: 'Totals per currency (normally one line).' })
  totals: UsageTotalsDto[];
}
