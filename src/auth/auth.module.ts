import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuditModule } from '../audit/audit.module';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { AuthGuard } from './auth.guard';
import { ClientsController } from './clients.controller';
import { ClientsService } from './clients.service';
import { MeController } from './me.controller';
import { RateLimitGuard } from './rate-limit.guard';

@Module({
  imports: [AuditModule],
  controllers: [ApiKeysController, ClientsController, MeController],
  // Guard order matters: authenticate first, then count the request against its key.
  providers: [
    ApiKeysService,
    ClientsService,
    { provide: APP_GUARD, useClass: AuthGuard },
    { provide: APP_GUARD, useClass: RateLimitGuard },
  ],
  exports: [ApiKeysService, ClientsService],
})
export class AuthModule {}
