import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';
import { IsDateTime } from '../../../common/date-time';
import { IsInteger } from '../../../common/integer';
import type { PriceVersion } from '../price-rules';

export class CreatePriceDto {
  @ApiProperty({
    description: 'Price of one charged call, in minor units of `currency` (fen for CNY).',
    example: 60,
    minimum: 0,
    maximum: 100_000_000,
  })
  @IsInteger({ min: 0, max: 100_000_000 })
  amount: number;

  @ApiProperty({ description: 'ISO 4217 currency code.', example: 'CNY' })
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'must be an ISO 4217 code such as CNY' })
  currency: string;

  @ApiProperty({
    description:
      'When the price starts to apply (ISO 8601 date-time). Now or later: at most one minute in the past (clock skew), since price history is immutable.',
    example: '2027-01-01T00:00:00+08:00',
    format: 'date-time',
  })
  @IsDateTime()
  valid_from: string;
}

export class PriceDto {
  @ApiProperty({
    description: 'Price id; null for the configured default (PRICE_PER_CHARGED_CALL).',
    nullable: true,
    type: String,
    format: 'uuid',
    example: '01a20c3f-6ab8-795f-a32a-344ff94eb941',
  })
  id: string | null;

  @ApiProperty({ description: 'Price of one charged call, in minor units of `currency`.', example: 50 })
  amount: number;

  @ApiProperty({ description: 'ISO 4217 currency code.', example: 'CNY' })
  currency: string;

  @ApiProperty({
    description: 'When the price starts to apply (UTC).',
    format: 'date-time',
    example: '2026-11-25T16:00:00.000Z',
  })
  valid_from: string;

  static from(p: PriceVersion): PriceDto {
    return { id: p.id, amount: p.amount, currency: p.currency, valid_from: p.validFrom.toISOString() };
  }
}

export class PricePageDto {
  @ApiProperty({ type: [PriceDto], description: 'Prices in the table, latest valid_from first.' })
  items: PriceDto[];

  @ApiProperty({
    description: 'The price in force now (the configured default while the table has none in force).',
    type: PriceDto,
  })
  current: PriceDto;

  @ApiProperty({
    description: 'Cursor for the next page; null on the last page.',
    nullable: true,
    type: String,
    example: 'WyIyMDI2LTExLTI1VDE2OjAwOjAwLjAwMFoiXQ',
  })
  next_cursor: string | null;
}
