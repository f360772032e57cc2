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
  })
  @IsOptional()
  @IsUUID()
  client_id?: string;
}

export class ApiKeyDto {
  @ApiProperty({ description: 'Key id (used to revoke it).', format: 'uuid' })
  id: string;

  @ApiProperty({ description: 'Visible, non-secret start of the key.', example: 'idg_test_AbCd1234' })
  prefix: string;

  @ApiProperty({ description: 'Role of the key.', enum: ROLES })
  role: Role;

  @ApiProperty({ description: 'Label given at creation.' })
  name: string;

  @ApiProperty({
    description: 'Client app of a `client` key; null for staff keys.',
    format: 'uuid',
    nullable: true,
    type: String,
  })
  client_id: string | null;

  @ApiProperty({ description: 'Name of that client app.', nullable: true, type: String })
  client: string | null;

  @ApiProperty({ description: 'When the key was created (UTC).', format: 'date-time' })
  created_at: string;

  @ApiProperty({
    description: 'When the key was revoked, or null while active.',
    format: 'date-time',
    nullable: true,
    type: String,
  })
  revoked_at: string | null;

  @ApiProperty({
    description: 'Last time the key authenticated (to the minute), or null.',
    format: 'date-time',
    nullable: true,
    type: String,
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
    example: 'idg_test_AbCd1234…',
  })
  key: string;

  static fromIssued(issued: IssuedApiKey): IssuedApiKeyDto {
    return { ...ApiKeyDto.from(issued), key: issued.key };
  }
}

export class ApiKeyPageDto {
  @ApiProperty({ type: [ApiKeyDto], description: 'Keys, newest first.' })
  items: ApiKeyDto[];

  @ApiProperty({ description: 'Cursor for the next page; null on the last page.', nullable: true, type: String })
  next_cursor: string | null;
}
