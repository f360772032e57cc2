import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PageQueryDto } from '../../common/pagination';
import { IsOptional } from 'class-validator';
import { IsInteger } from '../../common/integer';
import type { PublicKeyInfo } from '../audit-checkpoints.service';
import type { IntegrityReport } from '../audit-integrity.service';
import type { CheckpointView } from '../export-format';

export class IntegrityQueryDto {
  @ApiPropertyOptional({
    description: 'First seq to check (default 1).',
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
    example: 1,
  })
  @IsOptional()
  @IsInteger({ min: 1, max: Number.MAX_SAFE_INTEGER, fromString: true })
  from_seq?: number;

  @ApiPropertyOptional({
    description: 'Last seq to check (default: the chain head).',
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
    example: 48213,
  })
  @IsOptional()
  @IsInteger({ min: 1, max: Number.MAX_SAFE_INTEGER, fromString: true })
  to_seq?: number;
}

export class ChainFaultDto {
  @ApiProperty({ description: 'The seq where it shows.', example: 31877 })
  seq: number;

  @ApiProperty({
    description: 'What is wrong there.',
    example: 'hash does not match the event: the event or its hash was altered',
  })
  reason: string;
}

export class WitnessSourceDto {
  @ApiProperty({
    description: 'folder: AUDIT_WITNESS_DIR; http: AUDIT_WITNESS_URL; checkpoints: a list given to the CLI.',
    enum: ['folder', 'http', 'checkpoints'],
  })
  kind: 'folder' | 'http' | 'checkpoints';

  @ApiProperty({ description: 'Folder path or URL (without credentials).', example: '/var/lib/idgate/witness' })
  location: string;

  @ApiProperty({
    description:
      'ok; lagging: behind the chain or the folder (delivery retried); unreachable/unreadable: could not be read; ' +
      'diverged: holds a record the folder does not.',
    enum: ['ok', 'lagging', 'unreachable', 'unreadable', 'diverged'],
  })
  state: 'ok' | 'lagging' | 'unreachable' | 'unreadable' | 'diverged';

  @ApiProperty({ description: 'Records read.', example: 13690 })
  records: number;

  @ApiProperty({ description: 'Checkpoint records read.', example: 6845 })
  checkpoints: number;

  @ApiProperty({ description: 'Sealed-head records read.', example: 6845 })
  heads: number;

  @ApiProperty({ description: 'Records whose hash matched the chain at their seq.', example: 13690 })
  matched: number;

  @ApiProperty({ description: 'Seq of the newest record read.', nullable: true, type: Number, example: 48213 })
  latest_seq: number | null;

  @ApiProperty({
    description: 'When the newest record read was signed.',
    nullable: true,
    type: String,
    example: '2026-11-30T09:15:45.003Z',
  })
  latest_at: string | null;

  @ApiPropertyOptional({ description: 'Records waiting to be delivered (http).', type: Number, example: 2 })
  pending?: number;

  @ApiPropertyOptional({ description: 'Why it could not be read.', type: String, example: 'EACCES' })
  error?: string;
}

export class CadenceGapDto {
  @ApiProperty({ description: 'The last checkpoint before the gap (0: none yet).', example: 40112 })
  after_seq: number;

  @ApiProperty({ description: 'When the chain grew past it.', example: '2026-11-27T03:12:09.551Z' })
  grew_at: string;

  @ApiProperty({
    description: 'When the next checkpoint came; null: not yet.',
    nullable: true,
    type: String,
    example: '2026-11-27T03:14:02.870Z',
  })
  checkpoint_at: string | null;

  @ApiProperty({ description: 'How much later than interval + tolerance.', example: 23319 })
  late_ms: number;
}

export class CadenceDto {
  @ApiProperty({ description: 'AUDIT_CHECKPOINT_INTERVAL_MS.', example: 60000 })
  interval_ms: number;

  @ApiProperty({ description: 'Allowed lateness: half the interval, at least 5 s.', example: 30000 })
  tolerance_ms: number;

  @ApiProperty({ description: 'Gaps found.', example: 1 })
  gap_count: number;

  @ApiProperty({ type: [CadenceGapDto], description: 'The first gaps (at most 20).' })
  gaps: CadenceGapDto[];
}

export class SigningRefusalDto {
  @ApiProperty({ description: 'When the signer first refused.', example: '2026-11-30T09:16:45.120Z' })
  since: string;

  @ApiProperty({ description: 'What it would have written.', enum: ['checkpoint', 'head'] })
  kind: 'checkpoint' | 'head';

  @ApiProperty({ description: 'Where the segment failed.', example: 31877 })
  seq: number;

  @ApiProperty({ description: 'Why.', example: 'hash does not match the event: the event or its hash was altered' })
  reason: string;
}

export class ChainAlertDto {
  @ApiProperty({ description: 'When the alert was raised.', example: '2026-11-30T09:16:45.388Z' })
  at: string;

  @ApiProperty({ nullable: true, type: Number, description: 'Seq of the fault.', example: 31877 })
  seq: number | null;

  @ApiProperty({
    nullable: true,
    type: String,
    description: 'The fault.',
    example: 'hash does not match the event: the event or its hash was altered',
  })
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
  @ApiProperty({ description: 'True when nothing shows tampering (status intact or attention).', example: true })
  ok: boolean;

  @ApiProperty({
    description:
      'intact; attention: nothing tampered, but evidence is late or missing (cadence gaps, a lagging witness); broken.',
    enum: ['intact', 'attention', 'broken'],
  })
  status: 'intact' | 'attention' | 'broken';

  @ApiProperty({ description: 'Chain entries checked.', example: 48213 })
  checked: number;

  @ApiProperty({ description: 'First seq of the range checked.', example: 1 })
  from_seq: number;

  @ApiProperty({ description: 'Last seq of the range checked.', example: 48213 })
  to_seq: number;

  @ApiProperty({ description: 'Signed checkpoints in the range whose signature and hash matched.', example: 6845 })
  checkpoints_verified: number;

  @ApiPropertyOptional({ description: 'The first seq where the chain is broken.', type: Number, example: 31877 })
  first_bad_seq?: number;

  @ApiPropertyOptional({
    description: 'What is wrong there.',
    type: String,
    example: 'hash does not match the event: the event or its hash was altered',
  })
  reason?: string;

  @ApiProperty({ type: [ChainFaultDto], description: 'The first faults by seq (at most 20).' })
  faults: ChainFaultDto[];

  @ApiProperty({ description: 'How many faults were found.', example: 1 })
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

  @ApiProperty({
    type: [String],
    description: 'Why the status is attention.',
    example: ['the HTTP witness is 2 record(s) behind the witness folder (delivery is retried)'],
  })
  attention: string[];

  static from(report: IntegrityReport): IntegrityReportDto {
    return report;
  }
}

export class CheckpointDto {
  @ApiProperty({ description: 'Chain seq signed.', example: 48213 })
  seq: number;

  @ApiProperty({
    description: 'Hash of the chain entry at seq.',
    example: '8cb7965e89a2e6632e82df39b2a3f4d29719ff631ecd873c8ae09402ebd382eb',
  })
  hash: string;

  @ApiProperty({ description: 'When it was signed (UTC).', format: 'date-time', example: '2026-11-30T09:15:45.003Z' })
  signed_at: string;

  @ApiProperty({ description: 'Id of the signing key (see /v1/audit/public-key).', example: 'ca9702a5957ff649' })
  key_id: string;

  @ApiProperty({
    description: 'Base64 Ed25519 signature over the message in docs/audit.md.',
    example: '9H8tACG2Vh7+hP4U1DpoBBkgf2rMDjwDYtoYnwq7Ie6pkGjvURezi53bQ7h9uzIR8B8eDj6wJHr8yl1CT4viDQ==',
  })
  signature: string;

  @ApiProperty({
    description: 'Format: 1 (before the witness) or 2 (a witness record, names the record before it).',
    example: 2,
  })
  version: number;

  @ApiProperty({
    description: 'Format 2: digest of the previous witness record, or "genesis"; null for format 1.',
    nullable: true,
    type: String,
    example: '3d7ac3f379e66a18d1158ac73d96451c8e1f9cf16baab50f24f25b44eb8f7776',
  })
  prev: string | null;

  static from(view: CheckpointView): CheckpointDto {
    return view;
  }
}

export class CheckpointPageDto {
  @ApiProperty({ type: [CheckpointDto], description: 'Checkpoints, newest first.' })
  items: CheckpointDto[];

  @ApiProperty({
    description: 'Cursor for the next page; null on the last page.',
    nullable: true,
    type: String,
    example: 'WyI0ODIxMyJd',
  })
  next_cursor: string | null;
}

export class CheckpointQueryDto extends PageQueryDto {}

export class PublicKeyJwkDto {
  @ApiProperty({ description: 'Key type.', example: 'OKP' })
  kty: string;

  @ApiProperty({ description: 'Curve.', example: 'Ed25519' })
  crv: string;

  @ApiProperty({ description: 'Public key, base64url.', example: 'MAY4gXrYueZrfrkaNeaiPkvW_ntI7B8lDO5RO9cQKRU' })
  x: string;
}

export class PublicKeyDto {
  @ApiProperty({ description: 'Key id: first 16 hex of SHA-256 over the raw public key.', example: 'ca9702a5957ff649' })
  key_id: string;

  @ApiProperty({ description: 'Signature algorithm.', enum: ['Ed25519'] })
  algorithm: 'Ed25519';

  @ApiProperty({
    description: 'Public key, SPKI PEM.',
    example:
      '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAMAY4gXrYueZrfrkaNeaiPkvW/ntI7B8lDO5RO9cQKRU=\n-----END PUBLIC KEY-----\n',
  })
  pem: string;

  @ApiProperty({ description: 'Public key, JWK.', type: PublicKeyJwkDto })
  jwk: PublicKeyJwkDto;

  static from(info: PublicKeyInfo): PublicKeyDto {
    return info;
  }
}
