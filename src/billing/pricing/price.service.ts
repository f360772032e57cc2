import { Injectable } from '@nestjs/common';
import { AuditService } from '../../audit/audit.service';
import type { AuditContext } from '../../audit/audit-vocabulary';
import { decodeCursor, encodeCursor, Page } from '../../common/pagination';
import { ProblemException, validationProblem } from '../../common/problem';
import { AppConfig } from '../../config/app-config';
import { PrismaService } from '../../database/prisma.service';
import { Prisma } from '../../generated/prisma/client';
import { priceInForce, PriceVersion, validFromProblem } from './price-rules';

/** Prices are re-read at most this often; a new price made here is seen at once. */
const CACHE_MS = 5_000;

export interface NewPrice {
  amount: number;
  currency: string;
  validFrom: Date;
}

export interface PriceRecord extends PriceVersion {
  id: string;
  createdAt: Date;
}

/**
 * The price of a charged call over time (SPEC §7, issue 6): a table of prices
 * with validity starts, append-only; the configured PRICE_PER_CHARGED_CALL /
 * CURRENCY apply while the table is empty (or before its first price).
 */
@Injectable()
export class PriceService {
  private cache: { at: number; prices: PriceVersion[] } | null = null;

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly audit: AuditService,
  ) {}

  /** The configured default price. */
  fallback(): PriceVersion {
    return {
      id: null,
      amount: this.config.billing.pricePerChargedCall,
      currency: this.config.billing.currency,
      validFrom: new Date(0),
    };
  }

  /** The price in force at `at` (now by default): what a verification made then costs when charged. */
  async priceAt(at: Date = new Date()): Promise<PriceVersion> {
    return priceInForce(await this.versions(), at, this.fallback());
  }

  private async versions(): Promise<PriceVersion[]> {
    const now = Date.now();
    if (this.cache && now - this.cache.at < CACHE_MS) return this.cache.prices;
    const rows = await this.prisma.price.findMany({ orderBy: { validFrom: 'asc' } });
    const prices = rows.map((r) => ({ id: r.id, amount: r.amount, currency: r.currency, validFrom: r.validFrom }));
    this.cache = { at: now, prices };
    return prices;
  }

  async create(input: NewPrice, createdByKeyId: string | null, context: AuditContext): Promise<PriceRecord> {
    const problem = validFromProblem(input.validFrom, new Date());
    if (problem) throw validationProblem([{ field: 'valid_from', message: problem }]);
    try {
      const row = await this.prisma.$transaction(async (tx) => {
        const created = await tx.price.create({
          data: { amount: input.amount, currency: input.currency, validFrom: input.validFrom, createdByKeyId },
        });
        await this.audit.record(tx, context, {
          action: 'price.created',
          target: { type: 'price', id: created.id },
          details: { amount: created.amount, currency: created.currency, valid_from: created.validFrom.toISOString() },
        });
        return created;
      });
      this.cache = null;
      return row;
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
        throw new ProblemException('conflict', 'A price with that valid_from exists; prices are never changed.');
      }
      throw err;
    }
  }

  /** Newest valid_from first, keyset-paginated. */
  async list(cursor: string | undefined, limit: number): Promise<Page<PriceRecord>> {
    const after = cursor
      ? new Date(
          decodeCursor<[string]>(
            cursor,
            (v) => v.length === 1 && typeof v[0] === 'string' && !Number.isNaN(Date.parse(v[0])),
          )[0],
        )
      : undefined;
    const rows = await this.prisma.price.findMany({
      where: after ? { validFrom: { lt: after } } : {},
      orderBy: { validFrom: 'desc' },
      take: limit + 1,
    });
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return {
      items: page.map((r) => ({ ...r })),
      next_cursor: more ? encodeCursor([page[page.length - 1].validFrom.toISOString()]) : null,
    };
  }
}
