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
  })
  from: string | null;

  @ApiProperty({
    description: 'End (exclusive, UTC); null when there is no period.',
    nullable: true,
    type: String,
    format: 'date-time',
  })
  to: string | null;

  @ApiProperty({
    description: '`explicit` (from/to given), `statement` (earliest to latest called_at) or `none` (no readable line).',
    enum: ['explicit', 'statement', 'none'],
  })
  source: string;
}

export class ReconciliationCountsDto {
  @ApiProperty({ description: 'On the bill and ours, agreeing (includes unknown calls the bill settled).' })
  matched: number;
  @ApiProperty({ description: 'On the bill, not ours.' })
  missing_internal: number;
  @ApiProperty({ description: 'Ours, charged, in the period, not on the bill.' })
  missing_vendor: number;
  @ApiProperty({ description: 'Charged on one side, not on the other.' })
  charge_mismatch: number;
  @ApiProperty({ description: 'Charged on both sides, different amounts.' })
  amount_mismatch: number;
  @ApiProperty({ description: 'Charged on both sides at the same amount, different result codes.' })
  result_mismatch: number;
  @ApiProperty({ description: 'Lines repeating the trace id of an earlier line (billed twice).' })
  duplicate: number;
  @ApiProperty({ description: 'Lines that could not be read (see each item’s `problem` and `line_no`).' })
  malformed: number;
  @ApiProperty({
    description: 'Unknown calls of ours in the period, absent from the bill: settled as not charged. Not a difference.',
  })
  not_billed: number;
  @ApiProperty({
    description:
      'Sum of every status that is a difference (all but matched and not_billed). 0: the statement reconciles.',
  })
  differences: number;
}

export class AmountPairDto {
  @ApiProperty({ description: 'Vendor side, minor units.' })
  vendor: number;
  @ApiProperty({ description: 'Our side (after settlement), minor units.' })
  internal: number;
}

export class ReconciliationAmountsDto {
  @ApiProperty({
    description: 'Sum of charged amounts on the statement (malformed lines excluded; duplicates included).',
  })
  vendor_total: number;
  @ApiProperty({ description: 'Sum of our amounts for the items (after settlement; duplicates counted once).' })
  internal_total: number;
  @ApiProperty({ description: 'vendor_total − internal_total.' })
  difference: number;
  @ApiProperty({
    description: 'Per status: `{ vendor, internal }` amounts.',
    type: 'object',
    additionalProperties: { $ref: '#/components/schemas/AmountPairDto' },
  })
  by_status: Record<string, AmountPairDto>;
}

export class SettledDto {
  @ApiProperty({ description: 'Unknown calls this reconciliation settled as charged.' })
  charged: number;
  @ApiProperty({ description: 'Unknown calls this reconciliation settled as not charged.' })
  not_charged: number;
}

export class ReconciliationDto {
  @ApiProperty({ description: 'Reconciliation id.', format: 'uuid' })
  id: string;
  @ApiProperty({ description: 'When it ran (UTC).', format: 'date-time' })
  created_at: string;
  @ApiProperty({ description: 'SHA-256 of the uploaded file (the same statement uploaded twice has the same hash).' })
  file_sha256: string;
  @ApiProperty({ description: 'Size of the uploaded file in bytes.' })
  file_bytes: number;
  @ApiProperty({ description: 'Data lines read (header excluded, malformed included).' })
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
  @ApiProperty({ description: 'Position in the report (statement lines by line number, then ours); the keyset.' })
  seq: number;
  @ApiProperty({
    description: 'Line number in the file (header = 1); null for items that are ours only.',
    nullable: true,
    type: Number,
  })
  line_no: number | null;
  @ApiProperty({ description: 'Outcome for this item.', enum: ITEM_STATUSES })
  status: string;
  @ApiProperty({
    description: 'Vendor trace id (the line’s, or ours for items that are ours only).',
    nullable: true,
    type: String,
  })
  trace_id: string | null;
  @ApiProperty({
    description: 'When the vendor says the call was made.',
    nullable: true,
    type: String,
    format: 'date-time',
  })
  called_at: string | null;
  @ApiProperty({ description: 'Result code on the statement.', nullable: true, type: String })
  vendor_result: string | null;
  @ApiProperty({ description: 'Charged flag on the statement.', nullable: true, type: Boolean })
  vendor_charged: boolean | null;
  @ApiProperty({ description: 'Amount on the statement (minor units).', nullable: true, type: Number })
  vendor_amount: number | null;
  @ApiProperty({ description: 'Our verification, when one was found.', nullable: true, type: String, format: 'uuid' })
  verification_id: string | null;
  @ApiProperty({
    description: '`trace_id`, or `time_window` for an unknown call that never learnt its trace id.',
    nullable: true,
    type: String,
  })
  match_method: string | null;
  @ApiProperty({ description: 'Our charge status before this reconciliation.', nullable: true, type: String })
  internal_charge_status: string | null;
  @ApiProperty({ description: 'Our result code.', nullable: true, type: String })
  internal_result: string | null;
  @ApiProperty({ description: 'Our amount after this reconciliation (minor units).', nullable: true, type: Number })
  internal_amount: number | null;
  @ApiProperty({
    description: '`charged` / `not_charged` when this reconciliation settled our unknown charge.',
    nullable: true,
    type: String,
  })
  settlement: string | null;
  @ApiProperty({ description: 'Why the line is malformed (never personal data).', nullable: true, type: String })
  problem: string | null;
}

export class ReconciliationItemPageDto {
  @ApiProperty({ type: [ReconciliationItemDto], description: 'Items in report order.' })
  items: ReconciliationItemDto[];
  @ApiProperty({ description: 'Cursor for the next page; null on the last page.', nullable: true, type: String })
  next_cursor: string | null;
}
