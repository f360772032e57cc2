import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { IsInteger } from './integer';
import { validationProblem } from './problem';

/** `{ items, next_cursor }`: the shape of every list endpoint. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export class PageQueryDto {
  @ApiPropertyOptional({
    description: 'Opaque cursor from the previous page’s `next_cursor`.',
    example: 'WyIwMWEyMmJiYy03YTY1LTdkZjUtOGRjOS0xYTlhMmIyNWY1MGEiXQ',
  })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;

  @ApiPropertyOptional({ description: 'Page size.', minimum: 1, maximum: 200, default: 50, example: 50 })
  @IsOptional()
  @IsInteger({ min: 1, max: 200, fromString: true })
  limit?: number;
}

/** Cursors are opaque to clients: base64url of a JSON array of the keyset values. */
export function encodeCursor(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values), 'utf8').toString('base64url');
}

export function decodeCursor<T extends unknown[]>(cursor: string, check: (v: unknown[]) => boolean): T {
  try {
    const values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(values) && check(values)) return values as T;
  } catch {
    // fall through to the field error
  }
  throw validationProblem([{ field: 'cursor', message: 'is not a cursor this endpoint issued' }]);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** For lists ordered by a time-ordered UUIDv7 id, newest first. */
export function decodeIdCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  return decodeCursor<[string]>(cursor, (v) => v.length === 1 && typeof v[0] === 'string' && UUID.test(v[0]))[0];
}

/** Takes `limit + 1` rows and turns them into a page. */
export function toPage<R, T>(rows: R[], limit: number, toItem: (r: R) => T, keyOf: (r: R) => unknown[]): Page<T> {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  return {
    items: pageRows.map(toItem),
    next_cursor: more ? encodeCursor(keyOf(pageRows[pageRows.length - 1])) : null,
  };
}
