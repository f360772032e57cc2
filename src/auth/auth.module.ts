import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuditModule } from '../audit/audit.module';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { AuthGuard } from './auth.guard';
import { ClientsController } from './clients.controller';
import { ClientsService } from './clients.service';

@Module({
  imports: [AuditModule],
  controllers: [ApiKeysController, ClientsController],
  providers: [ApiKeysService, ClientsService, { provide: APP_GUARD, useClass: AuthGuard }],
  exports: [ApiKeysService, ClientsService],
})
export class AuthModule {}
