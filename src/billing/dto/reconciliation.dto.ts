import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { IsDateTime } from '../../common/date-time';
import { PageQueryDto } from '../../common/pagination';
import { ITEM_STATUSES } from '../reconciliation/statement-rules';
import type { ItemStatus } from '../reconciliation/statement-rules';

export class ReconcileQueryDto {
  @ApiPropertyOptional({
    description:
      'Start of the period the statement covers (inclusive; date = UTC midnight, or ISO 8601 date-time). With `to`; ' +
      'without both, the period is the statement’s own [earliest, latest] called_at. May also be sent as a form field before the file part.',
    example: '2026-11-01',
  })
  @IsOptional()
  @IsDateTime()
  from?: string;

  @ApiPropertyOptional({ description: 'End of the period (exclusive). With `from`.', example: '2026-12-01' })
  @IsOptional()
  @IsDateTime()
  to?: string;
}

export class ReconciliationItemsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Only items with this status.', enum: ITEM_STATUSES })
  @IsOptional()
  @IsIn(ITEM_STATUSES)
  status?: ItemStatus;
}

export class ReconciliationExportQueryDto {
  @ApiPropertyOptional({ description: 'Export format (CSV only).', enum: ['csv'], default: 'csv' })
  @IsOptional()
  @IsIn(['csv'])
  format?: 'csv';

  @ApiPropertyOptional({ description: 'Only items with this status.', enum: ITEM_STATUSES })
  @IsOptional()
  @IsIn(ITEM_STATUSES)
  status?: ItemStatus;
}

export class ReconciliationPeriodDto {
  @ApiProperty({
    description: 'Start (inclusive, UTC); null when there is no period.',
    nullable: true,
    type: String,
    format: 'date-time',
    example: '2026-11-01T00:00:00.000Z',
  })
  from: string | null;

  @ApiProperty({
    description: 'End (exclusive, UTC); null when there is no period.',
    nullable: true,
    type: String,
    format: 'date-time',
    example: '2026-12-01T00:00:00.000Z',
  })
  to: string | null;

  @ApiProperty({
    description: '`explicit` (from/to given), `statement` (earliest to latest called_at) or `none` (no readable line).',
    enum: ['explicit', 'statement', 'none'],
  })
  source: string;
}

export class ReconciliationCountsDto {
  @ApiProperty({
    description: 'On the bill and ours, agreeing (includes unknown calls the bill settled).',
    example: 1236,
  })
  matched: number;
  @ApiProperty({ description: 'On the bill, not ours.', example: 1 })
  missing_internal: number;
  @ApiProperty({ description: 'Ours, charged, in the period, not on the bill.', example: 0 })
  missing_vendor: number;
  @ApiProperty({ description: 'Charged on one side, not on the other.', example: 1 })
  charge_mismatch: number;
  @ApiProperty({ description: 'Charged on both sides, different amounts.', example: 0 })
  amount_mismatch: number;
  @ApiProperty({ description: 'Charged on both sides at the same amount, different result codes.', example: 0 })
  result_mismatch: number;
  @ApiProperty({ description: 'Lines repeating the trace id of an earlier line (billed twice).', example: 1 })
  duplicate: number;
  @ApiProperty({
    description: 'Lines that could not be read (see each item’s `problem` and `line_no`).',
    example: 1,
  })
  malformed: number;
  @ApiProperty({
    description: 'Unknown calls of ours in the period, absent from the bill: settled as not charged. Not a difference.',
    example: 2,
  })
  not_billed: number;
  @ApiProperty({
    description:
      'Sum of every status that is a difference (all but matched and not_billed). 0: the statement reconciles.',
    example: 4,
  })
  differences: number;
}

export class AmountPairDto {
  @ApiProperty({ description: 'Vendor side, minor units.', example: 59900 })
  vendor: number;
  @ApiProperty({ description: 'Our side (after settlement), minor units.', example: 59900 })
  internal: number;
}

export class ReconciliationAmountsDto {
  @ApiProperty({
    description: 'Sum of charged amounts on the statement (malformed lines excluded; duplicates included).',
    example: 60050,
  })
  vendor_total: number;
  @ApiProperty({
    description: 'Sum of our amounts for the items (after settlement; duplicates counted once).',
    example: 59900,
  })
  internal_total: number;
  @ApiProperty({ description: 'vendor_total − internal_total.', example: 150 })
  difference: number;
  @ApiProperty({
    description: 'Per status: `{ vendor, internal }` amounts.',
    type: 'object',
    additionalProperties: { $ref: '#/components/schemas/AmountPairDto' },
    example: {
      matched: { vendor: 59900, internal: 59900 },
      missing_internal: { vendor: 50, internal: 0 },
      charge_mismatch: { vendor: 50, internal: 0 },
      duplicate: { vendor: 50, internal: 0 },
      malformed: { vendor: 0, internal: 0 },
      not_billed: { vendor: 0, internal: 0 },
    },
  })
  by_status: Record<string, AmountPairDto>;
}

export class SettledDto {
  @ApiProperty({ description: 'Unknown calls this reconciliation settled as charged.', example: 1 })
  charged: number;
  @ApiProperty({ description: 'Unknown calls this reconciliation settled as not charged.', example: 2 })
  not_charged: number;
}

export class ReconciliationDto {
  @ApiProperty({ description: 'Reconciliation id.', format: 'uuid', example: '01a22f61-f251-745d-93bd-eaef04fae8f0' })
  id: string;
  @ApiProperty({ description: 'When it ran (UTC).', format: 'date-time', example: '2026-12-01T02:14:37.905Z' })
  created_at: string;
  @ApiProperty({
    description: 'SHA-256 of the uploaded file (the same statement uploaded twice has the same hash).',
    example: '96b7c88374836f092ae1e6b7c6c04cfb7b52bd72380b390af640acec5e866c02',
  })
  file_sha256: string;
  @ApiProperty({ description: 'Size of the uploaded file in bytes.', example: 89321 })
  file_bytes: number;
  @ApiProperty({ description: 'Data lines read (header excluded, malformed included).', example: 1240 })
  line_count: number;
  @ApiProperty({ type: ReconciliationPeriodDto, description: 'The period the statement was taken to cover.' })
  period: ReconciliationPeriodDto;
  @ApiProperty({ description: 'Currency the statement’s amounts are taken in (CURRENCY).', example: 'CNY' })
  currency: string;
  @ApiProperty({ type: ReconciliationCountsDto, description: 'Items per status.' })
  counts: ReconciliationCountsDto;
  @ApiProperty({ type: ReconciliationAmountsDto, description: 'Totals in minor units.' })
  amounts: ReconciliationAmountsDto;
  @ApiProperty({
    type: SettledDto,
    description: 'Unknown charges of ours this reconciliation settled (0 when re-run).',
  })
  settled: SettledDto;
}

export class ReconciliationItemDto {
  @ApiProperty({
    description: 'Position in the report (statement lines by line number, then ours); the keyset.',
    example: 1187,
  })
  seq: number;
  @ApiProperty({
    description: 'Line number in the file (header = 1); null for items that are ours only.',
    nullable: true,
    type: Number,
    example: 1187,
  })
  line_no: number | null;
  @ApiProperty({ description: 'Outcome for this item.', enum: ITEM_STATUSES })
  status: string;
  @ApiProperty({
    description: 'Vendor trace id (the line’s, or ours for items that are ours only).',
    nullable: true,
    type: String,
    example: 'f3457c23-da79-4d7a-ad7b-e94bc622f43f',
  })
  trace_id: string | null;
  @ApiProperty({
    description: 'When the vendor says the call was made.',
    nullable: true,
    type: String,
    format: 'date-time',
    example: '2026-11-30T09:15:02.503Z',
  })
  called_at: string | null;
  @ApiProperty({ description: 'Result code on the statement.', nullable: true, type: String, example: '0' })
  vendor_result: string | null;
  @ApiProperty({ description: 'Charged flag on the statement.', nullable: true, type: Boolean, example: true })
  vendor_charged: boolean | null;
  @ApiProperty({ description: 'Amount on the statement (minor units).', nullable: true, type: Number, example: 50 })
  vendor_amount: number | null;
  @ApiProperty({
    description: 'Our verification, when one was found.',
    nullable: true,
    type: String,
    format: 'uuid',
    example: '01a22bbc-7a65-7df5-8dc9-1a9a2b25f50a',
  })
  verification_id: string | null;
  @ApiProperty({
    description: '`trace_id`, or `time_window` for an unknown call that never learnt its trace id.',
    nullable: true,
    type: String,
    example: 'trace_id',
  })
  match_method: string | null;
  @ApiProperty({
    description: 'Our charge status before this reconciliation.',
    nullable: true,
    type: String,
    example: 'unknown',
  })
  internal_charge_status: string | null;
  @ApiProperty({ description: 'Our result code.', nullable: true, type: String, example: '0' })
  internal_result: string | null;
  @ApiProperty({
    description: 'Our amount after this reconciliation (minor units).',
    nullable: true,
    type: Number,
    example: 50,
  })
  internal_amount: number | null;
  @ApiProperty({
    description: '`charged` / `not_charged` when this reconciliation settled our unknown charge.',
    nullable: true,
    type: String,
    example: 'charged',
  })
  settlement: string | null;
  @ApiProperty({
    description: 'Why the line is malformed (never personal data).',
    nullable: true,
    type: String,
    example: 'amount: must be 0 when charged is false',
  })
  problem: string | null;
}

export class ReconciliationItemPageDto {
  @ApiProperty({ type: [ReconciliationItemDto], description: 'Items in report order.' })
  items: ReconciliationItemDto[];
  @ApiProperty({
    description: 'Cursor for the next page; null on the last page.',
    nullable: true,
    type: String,
    example: 'WzExODdd',
  })
  next_cursor: string | null;
}
