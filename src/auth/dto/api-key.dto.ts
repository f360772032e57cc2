import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, IsUUID, Length, Matches } from 'class-validator';
import { ROLES } from '../roles';
import type { Role } from '../roles';
import type { ApiKeyInfo, IssuedApiKey } from '../api-keys.service';

export class CreateApiKeyDto {
  @ApiProperty({ description: 'What the key may do.', enum: ROLES, example: 'client' })
  @IsIn(ROLES)
  role: Role;

  @ApiProperty({
    description: 'A label for people: who or what uses the key.',
    example: 'checkout service (prod)',
    minLength: 1,
    maxLength: 100,
  })
  @IsString()
  @Length(1, 100)
  @Matches(/\S/, { message: 'must not be blank' })
  name: string;

  @ApiPropertyOptional({
    description: 'The client app a `client` key belongs to (required for role client, refused otherwise).',
    format: 'uuid',
    example: '01a1f6d4-46c6-7ebb-9e02-5cb499515b8d',
  })
  @IsOptional()
  @IsUUID()
  client_id?: string;
}

export class ApiKeyDto {
  @ApiProperty({
    description: 'Key id (used to revoke it).',
    format: 'uuid',
    example: '01a1f6d6-d054-7392-96ff-c73374591e6b',
  })
  id: string;

  @ApiProperty({ description: 'Visible, non-secret start of the key.', example: 'idg_test_AbCd1234' })
  prefix: string;

  @ApiProperty({ description: 'Role of the key.', enum: ROLES })
  role: Role;

  @ApiProperty({ description: 'Label given at creation.', example: 'checkout service (prod)' })
  name: string;

  @ApiProperty({
    description: 'Client app of a `client` key; null for staff keys.',
    format: 'uuid',
    nullable: true,
    type: String,
    example: '01a1f6d4-46c6-7ebb-9e02-5cb499515b8d',
  })
  client_id: string | null;

  @ApiProperty({ description: 'Name of that client app.', nullable: true, type: String, example: 'acme-checkout' })
  client: string | null;

  @ApiProperty({
    description: 'When the key was created (UTC).',
    format: 'date-time',
    example: '2026-11-20T02:43:55.604Z',
  })
  created_at: string;

  @ApiProperty({
    description: 'When the key was revoked, or null while active.',
    format: 'date-time',
    nullable: true,
    type: String,
    example: '2026-11-30T10:42:19.506Z',
  })
  revoked_at: string | null;

  @ApiProperty({
    description: 'Last time the key authenticated (to the minute), or null.',
    format: 'date-time',
    nullable: true,
    type: String,
    example: '2026-11-30T09:15:02.094Z',
  })
  last_used_at: string | null;

  static from(info: ApiKeyInfo): ApiKeyDto {
    return {
      id: info.id,
      prefix: info.prefix,
      role: info.role,
      name: info.name,
      client_id: info.clientId,
      client: info.clientName,
      created_at: info.createdAt.toISOString(),
      revoked_at: info.revokedAt?.toISOString() ?? null,
      last_used_at: info.lastUsedAt?.toISOString() ?? null,
    };
  }
}

export class IssuedApiKeyDto extends ApiKeyDto {
  @ApiProperty({
    description: 'The key itself. Shown only in this response: store it now.',
    example: 'idg_test_AbCd1234VMzc_3oNQzF8prvCHx4Wmxg-v1cJi5-d',
  })
  key: string;

  static fromIssued(issued: IssuedApiKey): IssuedApiKeyDto {
    return { ...ApiKeyDto.from(issued), key: issued.key };
  }
}

export class ApiKeyPageDto {
  @ApiProperty({ type: [ApiKeyDto], description: 'Keys, newest first.' })
  items: ApiKeyDto[];

  @ApiProperty({
    description: 'Cursor for the next page; null on the last page.',
    nullable: true,
    type: String,
    example: 'WyIwMWExZjZkNi1kMDU0LTczOTItOTZmZi1jNzMzNzQ1OTFlNmIiXQ',
  })
  next_cursor: string | null;
}
