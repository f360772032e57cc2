import { Module } from '@nestjs/common';
import { AuditModule } from '../../audit/audit.module';
import { PriceService } from './price.service';
import { PricesController } from './prices.controller';

/** Prices over time; imported by the verification module (price of a new call) without a cycle. */
@Module({
  imports: [AuditModule],
  controllers: [PricesController],
  providers: [PriceService],
  exports: [PriceService],
})
export class PricingModule {}
