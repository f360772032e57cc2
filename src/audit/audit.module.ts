import { Module } from '@nestjs/common';
import { AuditCheckpoints } from './audit-checkpoints.service';
import { AuditController } from './audit.controller';
import { AuditIntegrity } from './audit-integrity.service';
import { AuditSealer } from './audit-sealer.service';
import { AuditService } from './audit.service';

/** The audit trail. Other modules use AuditService only (record in their own transaction). */
@Module({
  controllers: [AuditController],
  providers: [AuditService, AuditSealer, AuditCheckpoints, AuditIntegrity],
  exports: [AuditService],
})
export class AuditModule {}
