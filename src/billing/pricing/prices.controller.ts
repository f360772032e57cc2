import { Body, Controller, Get, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { BODY_PROBLEMS, PAGE_QUERY_PROBLEM } from '../../common/api-problems';
import { CurrentAuditContext } from '../../audit/audit-context.decorator';
import type { AuditContext } from '../../audit/audit-vocabulary';
import { Authenticated, CurrentPrincipal } from '../../auth/authenticated.decorator';
import type { Principal } from '../../auth/roles';
import { PageQueryDto } from '../../common/pagination';
import { CreatePriceDto, PriceDto, PricePageDto } from './dto/price.dto';
import { PriceService } from './price.service';

@ApiTags('billing')
@Controller('v1/billing/prices')
export class PricesController {
  constructor(private readonly prices: PriceService) {}

  @Post()
  @Authenticated({
    roles: ['admin'],
    summary: 'Add a price with a validity start',
    description:
      'Verifications made from `valid_from` on cost `amount` when charged; earlier ones keep their price. Prices are never changed or deleted: to change a price, add one.',
    errors: {
      ...BODY_PROBLEMS,
      400: {
        description: 'A field is missing or malformed, or `valid_from` is in the past.',
        errors: [
          {
            field: 'valid_from',
            message: 'must not be in the past: price history is immutable, add a price that starts now or later',
          },
        ],
      },
      409: {
        description: 'A price with that valid_from exists.',
        detail: 'A price with that valid_from exists; prices are never changed.',
      },
    },
  })
  @ApiCreatedResponse({ type: PriceDto })
  async create(
    @Body() body: CreatePriceDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<PriceDto> {
    const created = await this.prices.create(
      { amount: body.amount, currency: body.currency, validFrom: new Date(body.valid_from) },
      principal.keyId,
      context,
    );
    return PriceDto.from(created);
  }

  @Get()
  @Authenticated({
    roles: ['admin', 'finance'],
    summary: 'List prices and the price in force now',
    errors: { 400: PAGE_QUERY_PROBLEM },
  })
  @ApiOkResponse({ type: PricePageDto })
  async list(@Query() query: PageQueryDto): Promise<PricePageDto> {
    const [page, current] = await Promise.all([
      this.prices.list(query.cursor, query.limit ?? 50),
      this.prices.priceAt(new Date()),
    ]);
    return { items: page.items.map(PriceDto.from), current: PriceDto.from(current), next_cursor: page.next_cursor };
  }
}
