import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';

/** What a PostgreSQL `integer` (int4) column holds: a larger value is a database error, not a 400. */
export const INT4_MIN = -2_147_483_648;
export const INT4_MAX = 2_147_483_647;

/** Decimal integer text, as a query string carries numbers. */
const INTEGER_TEXT = /^-?\d{1,20}$/;

/**
 * An integer input, bounded (by default to int4, what the column holds).
 * The type is checked before the range, so that "abc" says "must be an integer",
 * not a range. `fromString`: accept decimal text (query strings carry only text);
 * anything else (`1e3`, `0x10`, `''`, `true`) stays as sent and is refused as not
 * an integer, where `@Type(() => Number)` would have read `''` as 0 and `true` as 1.
 */
export function IsInteger(options: { min?: number; max?: number; fromString?: boolean } = {}): PropertyDecorator {
  const { min = INT4_MIN, max = INT4_MAX, fromString = false } = options;
  const decorators: PropertyDecorator[] = [
    IsInt({ message: 'must be an integer' }),
    Min(min, { message: `must not be less than ${min}` }),
    Max(max, { message: `must not be greater than ${max}` }),
  ];
  if (fromString) {
    decorators.unshift(
      Transform(({ value }: { value: unknown }) =>
        typeof value === 'string' && INTEGER_TEXT.test(value) ? Number(value) : value,
      ),
    );
  }
  return applyDecorators(...decorators);
}
