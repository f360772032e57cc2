import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { IsDateTime } from '../../common/date-time';
import { PageQueryDto } from '../../common/pagination';

/** Filters shared by GET /v1/verifications and POST /v1/verifications/search. */
export class VerificationFiltersDto extends PageQueryDto {
  @ApiPropertyOptional({
    description:
      'Created at or after this instant (ISO 8601 with a zone, or a date: UTC midnight; 0001-01-02 to 9999-12-31).',
    format: 'date-time',
    example: '2026-11-23T00:00:00+08:00',
  })
  @IsOptional()
  @IsDateTime({ toDate: true })
  from?: Date;

  @ApiPropertyOptional({
    description:
      'Created before this instant (ISO 8601 with a zone, or a date: UTC midnight; 0001-01-02 to 9999-12-31).',
    format: 'date-time',
    example: '2026-12-01T00:00:00+08:00',
  })
  @IsOptional()
  @IsDateTime({ toDate: true })
  to?: Date;

  @ApiPropertyOptional({ description: 'Upstream result code.', enum: ['0', '-1', '-2', '-3', '-4', '-5', '-6', '-7'] })
  @IsOptional()
  @IsIn(['0', '-1', '-2', '-3', '-4', '-5', '-6', '-7'])
  result?: string;

  @ApiPropertyOptional({
    description: '`true`, `false`, or `unknown` (charge not known yet).',
    enum: ['true', 'false', 'unknown'],
  })
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'boolean' ? String(value) : value))
  @IsIn(['true', 'false', 'unknown'])
  charged?: string;

  @ApiPropertyOptional({
    description: 'Client app id (compliance only; a client key always sees only its own).',
    format: 'uuid',
    example: '01a1f6d4-46c6-7ebb-9e02-5cb499515b8d',
  })
  @IsOptional()
  @IsUUID()
  client?: string;

  @ApiPropertyOptional({ description: 'The client’s own reference.', example: 'order-1234', maxLength: 255 })
  @IsOptional()
  @IsString()
  @MaxLength(255)
  reference?: string;

  @ApiPropertyOptional({ description: 'Status.', enum: ['pending', 'completed', 'failed', 'unknown'] })
  @IsOptional()
  @IsIn(['pending', 'completed', 'failed', 'unknown'])
  status?: string;

  @ApiPropertyOptional({
    description:
      'How personal data is shown. `full` (the default) shows it in full to compliance, and each record so read is an audited read; `masked` shows it as finance and clients always see it (`张*`, the ID number’s first 6 and last 4 characters) and audits no read: for browsing, before opening one record.',
    enum: ['full', 'masked'],
    example: 'masked',
  })
  @IsOptional()
  @IsIn(['full', 'masked'])
  view?: 'full' | 'masked';
}

/** The search body: the same filters plus exact personal-data matches (never in a URL). */
export class SearchVerificationsDto extends VerificationFiltersDto {
  @ApiPropertyOptional({
    description: 'Exact ID number (matched by keyed hash, never decrypted).',
    example: '360426199101010071',
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  id_card?: string;

  @ApiPropertyOptional({ description: 'Exact name (matched by keyed hash).', example: '张三' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  name?: string;
}
