import { Injectable } from '@nestjs/common';
import { validationProblem } from '../../common/problem';
import { PrismaService } from '../../database/prisma.service';
import { Prisma } from '../../generated/prisma/client';
import { Bound, defaultPeriod, isTimeZone, parseBound, UsageGroup } from './usage-rules';

export interface UsageQuery {
  from?: string;
  to?: string;
  groupBy: UsageGroup;
  tz: string;
}

export interface UsageRow {
  key: string;
  calls: number;
  charged_calls: number;
  unknown_calls: number;
  /** Charged amount, minor units (unknown calls excluded). */
  amount: number;
  /** What the unknown calls would cost if all were charged (minor units). */
  unknown_amount: number;
  currency: string;
}

export interface UsageReport {
  from: string;
  to: string;
  tz: string;
  group_by: UsageGroup;
  items: UsageRow[];
  /** One line per currency (normally one). */
  totals: Omit<UsageRow, 'key'>[];
}

/** Grouping keys: fixed SQL, never caller text. */
const KEYS: Record<UsageGroup, Prisma.Sql> = {
  day: Prisma.sql`to_char(date_trunc('day', v.created_at AT TIME ZONE tz.name), 'YYYY-MM-DD')`,
  client: Prisma.sql`v.client_id::text`,
  result: Prisma.sql`COALESCE(v.result, v.status)`,
};

/**
 * Usage for finance (SPEC §7): calls, charged calls and amounts per day, client
 * or result, computed in PostgreSQL over the verification module's
 * `verification_charges` view. Day boundaries follow `tz`.
 */
@Injectable()
export class UsageService {
  constructor(private readonly prisma: PrismaService) {}

  async usage(query: UsageQuery, now = new Date()): Promise<UsageReport> {
    if (!isTimeZone(query.tz))
      throw validationProblem([{ field: 'tz', message: 'must be an IANA time zone such as Asia/Shanghai' }]);
    const defaults = defaultPeriod(now);
    const from = query.from === undefined ? defaults.from : parseBound(query.from);
    if (!from)
      throw validationProblem([
        { field: 'from', message: 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time with a zone' },
      ]);
    const to = query.to === undefined ? defaults.to : parseBound(query.to);
    if (!to)
      throw validationProblem([
        { field: 'to', message: 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time with a zone' },
      ]);

    const [period] = await this.prisma.$queryRaw<Array<{ from_at: Date; to_at: Date }>>`
      WITH tz AS (SELECT ${query.tz}::text AS name) SELECT ${boundSql(from)} AS from_at, ${boundSql(to)} AS to_at FROM tz`;
    if (period.from_at.getTime() >= period.to_at.getTime()) {
      throw validationProblem([{ field: 'to', message: 'must be after from' }]);
    }
    const rows = await this.prisma.$queryRaw<
      Array<{
        key: string | null;
        calls: bigint;
        charged_calls: bigint;
        unknown_calls: bigint;
        amount: bigint;
        unknown_amount: bigint;
        currency: string;
      }>
    >`
      WITH tz AS (SELECT ${query.tz}::text AS name)
      SELECT ${KEYS[query.groupBy]} AS key,
             count(*)::bigint AS calls,
             count(*) FILTER (WHERE v.charge_status = 'charged')::bigint AS charged_calls,
             count(*) FILTER (WHERE v.charge_status = 'unknown')::bigint AS unknown_calls,
             COALESCE(sum(v.amount), 0)::bigint AS amount,
             COALESCE(sum(v.unit_price) FILTER (WHERE v.charge_status = 'unknown'), 0)::bigint AS unknown_amount,
             v.currency
      FROM tz, verification_charges v
      WHERE v.created_at >= ${period.from_at} AND v.created_at < ${period.to_at}
      GROUP BY 1, v.currency
      ORDER BY 1, v.currency`;
    const items: UsageRow[] = rows.map((r) => ({
      key: r.key ?? '',
      calls: Number(r.calls),
      charged_calls: Number(r.charged_calls),
      unknown_calls: Number(r.unknown_calls),
      amount: Number(r.amount),
      unknown_amount: Number(r.unknown_amount),
      currency: r.currency,
    }));
    const totals = new Map<string, Omit<UsageRow, 'key'>>();
    for (const item of items) {
      const t = totals.get(item.currency) ?? {
        calls: 0,
        charged_calls: 0,
        unknown_calls: 0,
        amount: 0,
        unknown_amount: 0,
        currency: item.currency,
      };
      t.calls += item.calls;
      t.charged_calls += item.charged_calls;
      t.unknown_calls += item.unknown_calls;
      t.amount += item.amount;
      t.unknown_amount += item.unknown_amount;
      totals.set(item.currency, t);
    }
    return {
      from: period.from_at.toISOString(),
      to: period.to_at.toISOString(),
      tz: query.tz,
      group_by: query.groupBy,
      items,
      totals: [...totals.values()],
    };
  }
}

/** A bound as SQL: a calendar date is midnight in the report's zone (`tz.name`), an instant is itself. */
function boundSql(bound: Bound): Prisma.Sql {
  return bound.kind === 'date'
    ? Prisma.sql`(${bound.date}::date::timestamp AT TIME ZONE tz.name)`
    : Prisma.sql`${bound.at.toISOString()}::timestamptz`;
}
