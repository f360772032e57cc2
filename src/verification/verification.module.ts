import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module';
import { AuthModule } from '../auth/auth.module';
import { UpstreamModule } from '../upstream/upstream.module';
import { PricingModule } from '../billing/pricing/pricing.module';
import { ChargeSettlementService } from './charge-settlement.service';
import { ClientPolicyController } from './client-policy.controller';
import { ClientPolicyService } from './client-policy.service';
import { DropInController } from './drop-in.controller';
import { ImageUrlPortsSetting } from './image-url-ports';
import { PiiMaintenanceService } from './pii-maintenance.service';
import { PiiVault } from './pii-vault.service';
import { SubmissionService } from './submission.service';
import { VerificationReadsService } from './verification-reads.service';
import { VerificationSweeper } from './verification-sweeper.service';
import { VerificationService } from './verification.service';
import { VerificationStore } from './verification.store';
import { VerificationMetrics } from './verification.metrics';
import { VerificationsController } from './verifications.controller';

@Module({
  imports: [AuditModule, AuthModule, UpstreamModule, PricingModule],
  controllers: [VerificationsController, DropInController, ClientPolicyController],
  providers: [
    VerificationService,
    VerificationReadsService,
    VerificationStore,
    SubmissionService,
    ClientPolicyService,
    PiiVault,
    PiiMaintenanceService,
    VerificationSweeper,
    ChargeSettlementService,
    VerificationMetrics,
    ImageUrlPortsSetting,
  ],
  exports: [
    VerificationMetrics,
    VerificationService,
    VerificationReadsService,
    VerificationSweeper,
    PiiVault,
    PiiMaintenanceService,
    ChargeSettlementService,
  ],
})
export class VerificationModule {}
