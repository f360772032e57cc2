import { ApiProperty, ApiPropertyOptional, IntersectionType } from '@nestjs/swagger';
import { PageQueryDto } from '../../common/pagination';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { IsDateTime } from '../../common/date-time';
import { IsInteger } from '../../common/integer';
import { ACTOR_TYPES, AUDIT_ACTIONS, OUTCOMES } from '../audit-vocabulary';
import type { AuditAction, Outcome } from '../audit-vocabulary';
import type { AuditEventFilters } from '../audit-rows';
import type { AuditEventView } from '../export-format';

/** Filters shared by the list (query string), the search (body) and the export. */
export class AuditEventFiltersDto {
  @ApiPropertyOptional({ description: 'Events at or after this instant (ISO 8601).', example: '2026-01-01T00:00:00Z' })
  @IsOptional()
  @IsDateTime()
  from?: string;

  @ApiPropertyOptional({
    description: 'Events before this instant (ISO 8601, exclusive).',
    example: '2026-02-01T00:00:00Z',
  })
  @IsOptional()
  @IsDateTime()
  to?: string;

  @ApiPropertyOptional({
    description: 'Actor id: an API key id, or a system actor such as `cli`.',
    example: '01a1f6d6-d054-7392-96ff-c73374591e6b',
    maxLength: 100,
  })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  actor?: string;

  @ApiPropertyOptional({ description: 'What happened.', enum: AUDIT_ACTIONS })
  @IsOptional()
  @IsIn(AUDIT_ACTIONS)
  action?: AuditAction;

  @ApiPropertyOptional({
    description: 'Kind of thing acted on, e.g. `verification`, `api_key`.',
    example: 'verification',
    maxLength: 64,
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  target_type?: string;

  @ApiPropertyOptional({
    description: 'Id of the thing acted on.',
    example: '01a22bbc-7a65-7df5-8dc9-1a9a2b25f50a',
    maxLength: 200,
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  target_id?: string;

  @ApiPropertyOptional({ description: 'How it ended.', enum: OUTCOMES })
  @IsOptional()
  @IsIn(OUTCOMES)
  outcome?: Outcome;
}

/** The filters plus paging (cursor, limit), as GET /v1/audit/events takes them. */
export class AuditEventQueryDto extends IntersectionType(AuditEventFiltersDto, PageQueryDto) {}

export class AuditEventSearchDto extends AuditEventQueryDto {
  @ApiPropertyOptional({
    description:
      'Events about this ID number, matched through its HMAC (never stored or logged). In the body, not the URL, because URLs end up in access logs.',
    example: '360426199101010071',
  })
  @IsOptional()
  @IsString()
  @Matches(/^\s*([0-9]{17}[0-9Xx]|[0-9]{15})\s*$/, { message: 'must be an 18-digit (or 15-digit) ID number' })
  id_card?: string;
}

export class AuditExportQueryDto extends AuditEventFiltersDto {
  @ApiPropertyOptional({
    description: 'NDJSON (verifiable, with checkpoints) or CSV.',
    enum: ['ndjson', 'csv'],
    default: 'ndjson',
  })
  @IsOptional()
  @IsIn(['ndjson', 'csv'])
  format?: 'ndjson' | 'csv';

  @ApiPropertyOptional({ description: 'First chain seq to export (sealed events only).', minimum: 1, example: 47001 })
  @IsOptional()
  @IsInteger({ min: 1, max: Number.MAX_SAFE_INTEGER, fromString: true })
  from_seq?: number;

  @ApiPropertyOptional({ description: 'Last chain seq to export (sealed events only).', minimum: 1, example: 48213 })
  @IsOptional()
  @IsInteger({ min: 1, max: Number.MAX_SAFE_INTEGER, fromString: true })
  to_seq?: number;
}

export function filtersFromDto(dto: AuditEventFiltersDto): AuditEventFilters {
  const filters: AuditEventFilters = {};
  if (dto.from !== undefined) filters.from = new Date(dto.from);
  if (dto.to !== undefined) filters.to = new Date(dto.to);
  if (dto.actor !== undefined) filters.actor = dto.actor;
  if (dto.action !== undefined) filters.action = dto.action;
  if (dto.target_type !== undefined) filters.targetType = dto.target_type;
  if (dto.target_id !== undefined) filters.targetId = dto.target_id;
  if (dto.outcome !== undefined) filters.outcome = dto.outcome;
  return filters;
}

export class AuditActorDto {
  @ApiProperty({ description: 'Kind of actor.', enum: ACTOR_TYPES })
  type: string;

  @ApiProperty({
    description: 'API key id, system actor name (`cli`, `bootstrap`, …), or null.',
    nullable: true,
    type: String,
    example: '01a1f6d6-d054-7392-96ff-c73374591e6b',
  })
  id: string | null;

  @ApiProperty({ description: 'Role of the API key, or null.', nullable: true, type: String, example: 'client' })
  role: string | null;
}

export class AuditTargetDto {
  @ApiProperty({ description: 'Kind of thing acted on.', nullable: true, type: String, example: 'verification' })
  type: string | null;

  @ApiProperty({
    description: 'Its id.',
    nullable: true,
    type: String,
    example: '01a22bbc-7a65-7df5-8dc9-1a9a2b25f50a',
  })
  id: string | null;
}

export class AuditEventDto {
  @ApiProperty({ description: 'Event id (UUIDv7).', format: 'uuid', example: '01a22bbc-7a65-7666-8ab8-cce6bc19371b' })
  id: string;

  @ApiProperty({
    description: 'Position in the hash chain; null until sealed (shortly after commit).',
    nullable: true,
    type: Number,
    example: 48213,
  })
  seq: number | null;

  @ApiProperty({
    description: 'When it happened (UTC, millisecond precision).',
    format: 'date-time',
    example: '2026-11-30T09:15:02.117Z',
  })
  occurred_at: string;

  @ApiProperty({ description: 'Who did it.', type: AuditActorDto })
  actor: AuditActorDto;

  @ApiProperty({ description: 'What happened.', enum: AUDIT_ACTIONS })
  action: string;

  @ApiProperty({ description: 'What it was done to.', type: AuditTargetDto })
  target: AuditTargetDto;

  @ApiProperty({ description: 'How it ended.', enum: OUTCOMES })
  outcome: string;

  @ApiProperty({
    description: 'Request id (X-Request-Id) of the request that caused it.',
    nullable: true,
    type: String,
    example: 'c492e044-aa01-414a-bb5f-9c54f1b7002c',
  })
  request_id: string | null;

  @ApiProperty({ description: 'Client IP address.', nullable: true, type: String, example: '203.0.113.24' })
  ip: string | null;

  @ApiProperty({
    description: 'Facts about the event; never personal data (masked values or HMACs only).',
    type: Object,
    example: {
      channel: 'api',
      mode: 'name_id_card',
      client_id: '01a1f6d4-46c6-7ebb-9e02-5cb499515b8d',
      id_card: '360426********0071',
    },
  })
  details: unknown;

  @ApiProperty({
    description: 'HMAC of the ID number the event concerns, or null.',
    nullable: true,
    type: String,
    example: 'dff522d760cacd40b7bba5f274affbb8f2d6280c6e9f0effcec2c50dfa1c3cd0',
  })
  id_card_hmac: string | null;

  @ApiProperty({
    description: 'Hash of the previous chain entry; null until sealed.',
    nullable: true,
    type: String,
    example: '5a9b8a5401c9d8eb1700e15e7fa26490ada815030a08f9bfce62b4661247c050',
  })
  prev_hash: string | null;

  @ApiProperty({
    description: 'sha256_hex(prev_hash + "\\n" + canonical event), see docs/audit.md; null until sealed.',
    nullable: true,
    type: String,
    example: '8cb7965e89a2e6632e82df39b2a3f4d29719ff631ecd873c8ae09402ebd382eb',
  })
  hash: string | null;

  static from(view: AuditEventView): AuditEventDto {
    return view as AuditEventDto;
  }
}

export class AuditEventPageDto {
  @ApiProperty({ type: [AuditEventDto], description: 'Events, newest first.' })
  items: AuditEventDto[];

  @ApiProperty({
    description: 'Cursor for the next page; null on the last page.',
    nullable: true,
    type: String,
    example: 'WyIyMDI2LTExLTMwVDA5OjE1OjAyLjExN1oiLCIwMWEyMmJiYy03YTY1LTc2NjYtOGFiOC1jY2U2YmMxOTM3MWIiXQ',
  })
  next_cursor: string | null;
}
