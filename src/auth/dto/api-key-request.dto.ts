import { ApiProperty } from '@nestjs/swagger';
import { IsIn, IsString, Length, Matches } from 'class-validator';
import { FULL_PII_ROLES } from '../approval-rules';
import type { Role } from '../roles';
import { approvalStatus } from '../approvals.service';
import type { ApprovalRecord, ApprovalStatus } from '../approvals.service';

export class CreateApiKeyRequestDto {
  @ApiProperty({
    description: 'Role of the key asked for: one that reads personal data in full.',
    enum: FULL_PII_ROLES,
    example: 'compliance',
  })
  @IsIn(FULL_PII_ROLES)
  role: Role;

  @ApiProperty({ description: 'A label for people.', example: 'compliance officer Li', minLength: 1, maxLength: 100 })
  @IsString()
  @Length(1, 100)
  @Matches(/\S/, { message: 'must not be blank' })
  name: string;
}

export class ApiKeyRequestDto {
  @ApiProperty({
    format: 'uuid',
    description: 'The request (approve and issue it by this id).',
    example: '01a22b7a-66fe-7f1a-8ae6-4f76c56aaea6',
  })
  id: string;

  @ApiProperty({ enum: FULL_PII_ROLES, description: 'Role of the key asked for.' })
  role: Role;

  @ApiProperty({ description: 'Label of the key asked for.', example: 'compliance officer Li' })
  name: string;

  @ApiProperty({
    enum: ['pending', 'approved', 'carried_out', 'expired'],
    description: 'pending → approved (by a second admin key) → carried_out (the key was issued); or expired.',
  })
  status: ApprovalStatus;

  @ApiProperty({
    format: 'uuid',
    description: 'The admin key that asked.',
    example: '01a1e1e3-27f2-7308-ab86-7d3398dcc4d3',
  })
  requested_by_key_id: string;

  @ApiProperty({
    format: 'uuid',
    nullable: true,
    type: String,
    description: 'The second admin key that approved.',
    example: '01a1e1e7-304f-7b45-9d22-75998427518a',
  })
  approved_by_key_id: string | null;

  @ApiProperty({ format: 'date-time', description: 'When it was asked (UTC).', example: '2026-11-30T08:02:51.774Z' })
  created_at: string;

  @ApiProperty({
    format: 'date-time',
    description: 'After this it can be neither approved nor issued.',
    example: '2026-12-01T08:02:51.774Z',
  })
  expires_at: string;

  static from(r: ApprovalRecord): ApiKeyRequestDto {
    return {
      id: r.id,
      role: r.payload.role as Role,
      name: String(r.payload.label),
      status: approvalStatus(r),
      requested_by_key_id: r.requestedByKeyId,
      approved_by_key_id: r.approvedByKeyId,
      created_at: r.createdAt.toISOString(),
      expires_at: r.expiresAt.toISOString(),
    };
  }
}

export class ApiKeyRequestListDto {
  @ApiProperty({ type: [ApiKeyRequestDto], description: 'Newest first (at most 100).' })
  items: ApiKeyRequestDto[];
}
