import { Module } from '@nestjs/common';
import { AuditCheckpoints } from './audit-checkpoints.service';
import { AuditController } from './audit.controller';
import { AuditIntegrity } from './audit-integrity.service';
import { AuditSealer } from './audit-sealer.service';
import { AuditService } from './audit.service';
import { AuditEventAuthenticity } from './event-authenticity.service';
import { PiiSearchBudget } from './pii-search-budget.service';
import { AuditSealingWatch } from './sealing-watch.service';
import { SecurityAlerts } from './security-alerts.service';
import { AuditWitness } from './witness/audit-witness.service';
import { AuditWitnessWriter } from './witness/witness-writer.service';

/** The audit trail. Other modules use AuditService (record in their own transaction) and SecurityAlerts. */
@Module({
  controllers: [AuditController],
  providers: [
    AuditService,
    AuditSealer,
    AuditCheckpoints,
    AuditIntegrity,
    AuditEventAuthenticity,
    SecurityAlerts,
    PiiSearchBudget,
    AuditWitness,
    AuditWitnessWriter,
    AuditSealingWatch,
  ],
  exports: [AuditService, SecurityAlerts, PiiSearchBudget],
})
export class AuditModule {}
