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

  @ApiPropertyOptional({ description: 'Actor id: an API key id, or a system actor such as `cli`.', maxLength: 100 })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  actor?: string;

  @ApiPropertyOptional({ description: 'What happened.', enum: AUDIT_ACTIONS })
  @IsOptional()
  @IsIn(AUDIT_ACTIONS)
  action?: AuditAction;

  @ApiPropertyOptional({ description: 'Kind of thing acted on, e.g. `verification`, `api_key`.', maxLength: 64 })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  target_type?: string;

  @ApiPropertyOptional({ description: 'Id of the thing acted on.', maxLength: 200 })
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
    example: '11010119900307123X',
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

  @ApiPropertyOptional({ description: 'First chain seq to export (sealed events only).', minimum: 1 })
  @IsOptional()
  @IsInteger({ min: 1, max: Number.MAX_SAFE_INTEGER, fromString: true })
  from_seq?: number;

  @ApiPropertyOptional({ description: 'Last chain seq to export (sealed events only).', minimum: 1 })
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
  })
  id: string | null;

  @ApiProperty({ description: 'Role of the API key, or null.', nullable: true, type: String })
  role: string | null;
}

export class AuditTargetDto {
  @ApiProperty({ description: 'Kind of thing acted on.', nullable: true, type: String, example: 'verification' })
  type: string | null;

  @ApiProperty({ description: 'Its id.', nullable: true, type: String })
  id: string | null;
}

export class AuditEventDto {
  @ApiProperty({ description: 'Event id (UUIDv7).', format: 'uuid' })
  id: string;

  @ApiProperty({
    description: 'Position in the hash chain; null until sealed (shortly after commit).',
    nullable: true,
    type: Number,
  })
  seq: number | null;

  @ApiProperty({ description: 'When it happened (UTC, millisecond precision).', format: 'date-time' })
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
  })
  request_id: string | null;

  @ApiProperty({ description: 'Client IP address.', nullable: true, type: String })
  ip: string | null;

  @ApiProperty({
    description: 'Facts about the event; never personal data (masked values or HMACs only).',
    type: Object,
  })
  details: unknown;

  @ApiProperty({ description: 'HMAC of the ID number the event concerns, or null.', nullable: true, type: String })
  id_card_hmac: string | null;

  @ApiProperty({ description: 'Hash of the previous chain entry; null until sealed.', nullable: true, type: String })
  prev_hash: string | null;

  @ApiProperty({
    description: 'sha256_hex(prev_hash + "\\n" + canonical event), see docs/audit.md; null until sealed.',
    nullable: true,
    type: String,
  })
  hash: string | null;

  static from(view: AuditEventView): AuditEventDto {
    return view as AuditEventDto;
  }
}

export class AuditEventPageDto {
  @ApiProperty({ type: [AuditEventDto], description: 'Events, newest first.' })
  items: AuditEventDto[];

  @ApiProperty({ description: 'Cursor for the next page; null on the last page.', nullable: true, type: String })
  next_cursor: string | null;
}
