import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PageQueryDto } from '../../common/pagination';
import { IsOptional } from 'class-validator';
import { IsInteger } from '../../common/integer';
import type { PublicKeyInfo } from '../audit-checkpoints.service';
import type { IntegrityReport } from '../audit-integrity.service';
import type { CheckpointView } from '../export-format';

export class IntegrityQueryDto {
  @ApiPropertyOptional({ description: 'First seq to check (default 1).', minimum: 1, maximum: Number.MAX_SAFE_INTEGER })
  @IsOptional()
  @IsInteger({ min: 1, max: Number.MAX_SAFE_INTEGER, fromString: true })
  from_seq?: number;

  @ApiPropertyOptional({
    description: 'Last seq to check (default: the chain head).',
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
  })
  @IsOptional()
  @IsInteger({ min: 1, max: Number.MAX_SAFE_INTEGER, fromString: true })
  to_seq?: number;
}

export class IntegrityReportDto {
  @ApiProperty({ description: 'True when every check passed.' })
  ok: boolean;

  @ApiProperty({ description: 'Chain entries checked.' })
  checked: number;

  @ApiProperty({ description: 'First seq of the range checked.' })
  from_seq: number;

  @ApiProperty({ description: 'Last seq of the range checked.' })
  to_seq: number;

  @ApiProperty({ description: 'Signed checkpoints in the range whose signature and hash matched.' })
  checkpoints_verified: number;

  @ApiPropertyOptional({ description: 'The first seq where the chain is broken.', type: Number })
  first_bad_seq?: number;

  @ApiPropertyOptional({ description: 'What is wrong there.', type: String })
  reason?: string;

  static from(report: IntegrityReport): IntegrityReportDto {
    return report;
  }
}

export class CheckpointDto {
  @ApiProperty({ description: 'Chain seq signed.' })
  seq: number;

  @ApiProperty({ description: 'Hash of the chain entry at seq.' })
  hash: string;

  @ApiProperty({ description: 'When it was signed (UTC).', format: 'date-time' })
  signed_at: string;

  @ApiProperty({ description: 'Id of the signing key (see /v1/audit/public-key).' })
  key_id: string;

  @ApiProperty({ description: 'Base64 Ed25519 signature over the message in docs/audit.md.' })
  signature: string;

  static from(view: CheckpointView): CheckpointDto {
    return view;
  }
}

export class CheckpointPageDto {
  @ApiProperty({ type: [CheckpointDto], description: 'Checkpoints, newest first.' })
  items: CheckpointDto[];

  @ApiProperty({ description: 'Cursor for the next page; null on the last page.', nullable: true, type: String })
  next_cursor: string | null;
}

export class CheckpointQueryDto extends PageQueryDto {}

export class PublicKeyJwkDto {
  @ApiProperty({ description: 'Key type.', example: 'OKP' })
  kty: string;

  @ApiProperty({ description: 'Curve.', example: 'Ed25519' })
  crv: string;

  @ApiProperty({ description: 'Public key, base64url.' })
  x: string;
}

export class PublicKeyDto {
  @ApiProperty({ description: 'Key id: first 16 hex of SHA-256 over the raw public key.' })
  key_id: string;

  @ApiProperty({ description: 'Signature algorithm.', enum: ['Ed25519'] })
  algorithm: 'Ed25519';

  @ApiProperty({ description: 'Public key, SPKI PEM.' })
  pem: string;

  @ApiProperty({ description: 'Public key, JWK.', type: PublicKeyJwkDto })
  jwk: PublicKeyJwkDto;

  static from(info: PublicKeyInfo): PublicKeyDto {
    return info;
  }
}
