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

export class ChainFaultDto {
  @ApiProperty({ description: 'The seq where it shows.' })
  seq: number;

  @ApiProperty({ description: 'What is wrong there.' })
  reason: string;
}

export class WitnessSourceDto {
  @ApiProperty({
    description: 'folder: AUDIT_WITNESS_DIR; http: AUDIT_WITNESS_URL; checkpoints: a list given to the CLI.',
    enum: ['folder', 'http', 'checkpoints'],
  })
  kind: 'folder' | 'http' | 'checkpoints';

  @ApiProperty({ description: 'Folder path or URL (without credentials).' })
  location: string;

  @ApiProperty({
    description:
      'ok; lagging: behind the chain or the folder (delivery retried); unreachable/unreadable: could not be read; ' +
      'diverged: holds a record the folder does not.',
    enum: ['ok', 'lagging', 'unreachable', 'unreadable', 'diverged'],
  })
  state: 'ok' | 'lagging' | 'unreachable' | 'unreadable' | 'diverged';

  @ApiProperty({ description: 'Records read.' })
  records: number;

  @ApiProperty({ description: 'Checkpoint records read.' })
  checkpoints: number;

  @ApiProperty({ description: 'Sealed-head records read.' })
  heads: number;

  @ApiProperty({ description: 'Records whose hash matched the chain at their seq.' })
  matched: number;

  @ApiProperty({ description: 'Seq of the newest record read.', nullable: true, type: Number })
  latest_seq: number | null;

  @ApiProperty({ description: 'When the newest record read was signed.', nullable: true, type: String })
  latest_at: string | null;

  @ApiPropertyOptional({ description: 'Records waiting to be delivered (http).', type: Number })
  pending?: number;

  @ApiPropertyOptional({ description: 'Why it could not be read.', type: String })
  error?: string;
}

export class CadenceGapDto {
  @ApiProperty({ description: 'The last checkpoint before the gap (0: none yet).' })
  after_seq: number;

  @ApiProperty({ description: 'When the chain grew past it.' })
  grew_at: string;

  @ApiProperty({ description: 'When the next checkpoint came; null: not yet.', nullable: true, type: String })
  checkpoint_at: string | null;

  @ApiProperty({ description: 'How much later than interval + tolerance.' })
  late_ms: number;
}

export class CadenceDto {
  @ApiProperty({ description: 'AUDIT_CHECKPOINT_INTERVAL_MS.' })
  interval_ms: number;

  @ApiProperty({ description: 'Allowed lateness: half the interval, at least 5 s.' })
  tolerance_ms: number;

  @ApiProperty({ description: 'Gaps found.' })
  gap_count: number;

  @ApiProperty({ type: [CadenceGapDto], description: 'The first gaps (at most 20).' })
  gaps: CadenceGapDto[];
}

export class SigningRefusalDto {
  @ApiProperty({ description: 'When the signer first refused.' })
  since: string;

  @ApiProperty({ description: 'What it would have written.', enum: ['checkpoint', 'head'] })
  kind: 'checkpoint' | 'head';

  @ApiProperty({ description: 'Where the segment failed.' })
  seq: number;

  @ApiProperty({ description: 'Why.' })
  reason: string;
}

export class ChainAlertDto {
  @ApiProperty({ description: 'When the alert was raised.' })
  at: string;

  @ApiProperty({ nullable: true, type: Number, description: 'Seq of the fault.' })
  seq: number | null;

  @ApiProperty({ nullable: true, type: String, description: 'The fault.' })
  reason: string | null;
}

export class SigningStateDto {
  @ApiProperty({
    description: 'signing; refused: this instance found a segment that does not verify and signs nothing.',
    enum: ['signing', 'refused'],
  })
  state: 'signing' | 'refused';

  @ApiPropertyOptional({ type: SigningRefusalDto, description: 'Present while refused: since when, where and why.' })
  refusal?: SigningRefusalDto;

  @ApiPropertyOptional({ type: ChainAlertDto, description: 'The newest audit_chain_broken alert in the trail.' })
  last_alert?: ChainAlertDto;
}

export class IntegrityReportDto {
  @ApiProperty({ description: 'True when nothing shows tampering (status intact or attention).' })
  ok: boolean;

  @ApiProperty({
    description:
      'intact; attention: nothing tampered, but evidence is late or missing (cadence gaps, a lagging witness); broken.',
    enum: ['intact', 'attention', 'broken'],
  })
  status: 'intact' | 'attention' | 'broken';

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

  @ApiProperty({ type: [ChainFaultDto], description: 'The first faults by seq (at most 20).' })
  faults: ChainFaultDto[];

  @ApiProperty({ description: 'How many faults were found.' })
  fault_count: number;

  @ApiProperty({ type: [WitnessSourceDto], description: 'What the chain was compared with.' })
  witness: WitnessSourceDto[];

  @ApiProperty({ type: CadenceDto, description: 'Whether checkpoints came as often as expected while the chain grew.' })
  cadence: CadenceDto;

  @ApiProperty({
    type: SigningStateDto,
    description:
      'Whether this instance signs: refused once it found a segment that does not verify (an alert is raised).',
  })
  signing: SigningStateDto;

  @ApiProperty({ type: [String], description: 'Why the status is attention.' })
  attention: string[];

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

  @ApiProperty({ description: 'Format: 1 (before the witness) or 2 (a witness record, names the record before it).' })
  version: number;

  @ApiProperty({
    description: 'Format 2: digest of the previous witness record, or "genesis"; null for format 1.',
    nullable: true,
    type: String,
  })
  prev: string | null;

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
