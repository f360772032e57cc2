import { Body, Controller, Get, Post, Query } from '@nestjs/common';
import { ApiConflictResponse, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
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
  })
  @ApiCreatedResponse({ type: PriceDto })
  @ApiConflictResponse({ description: 'A price with that valid_from exists.' })
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
  @Authenticated({ roles: ['admin', 'finance'], summary: 'List prices and the price in force now' })
  @ApiOkResponse({ type: PricePageDto })
  async list(@Query() query: PageQueryDto): Promise<PricePageDto> {
    const [page, current] = await Promise.all([
      this.prices.list(query.cursor, query.limit ?? 50),
      this.prices.priceAt(new Date()),
    ]);
    return { items: page.items.map(PriceDto.from), current: PriceDto.from(current), next_cursor: page.next_cursor };
  }
}
