import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module';
import { VerificationModule } from '../verification/verification.module';
import { PricingModule } from './pricing/pricing.module';
import { ReconciliationReport } from './reconciliation/reconciliation-report';
import { ReconciliationService } from './reconciliation/reconciliation.service';
import { ReconciliationStore } from './reconciliation/reconciliation.store';
import { StatementLoader } from './reconciliation/statement-loader';
import { StatementStaging } from './reconciliation/statement-staging.store';
import { ReconciliationsController } from './reconciliation/reconciliations.controller';
import { UsageController } from './usage/usage.controller';
import { UsageService } from './usage/usage.service';

/**
 * Billing (SPEC §7): usage and reconciliation for finance. Reads verifications
 * through the `verification_charges` view and settles unknown charges through
 * the verification module's ChargeSettlementService; prices live in PricingModule.
 */
@Module({
  imports: [AuditModule, PricingModule, VerificationModule],
  controllers: [UsageController, ReconciliationsController],
  providers: [
    UsageService,
    ReconciliationService,
    ReconciliationStore,
    StatementStaging,
    StatementLoader,
    ReconciliationReport,
  ],
})
export class BillingModule {}
