import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuditModule } from '../audit/audit.module';
import { ApiKeyRequestsController } from './api-key-requests.controller';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { ApprovalsService } from './approvals.service';
import { AuthFailureLimiter } from './auth-failure-limiter';
import { AuthFailures } from './auth-failures.service';
import { AuthGuard } from './auth.guard';
import { ClientsController } from './clients.controller';
import { ClientsService } from './clients.service';
import { MeController } from './me.controller';
import { KeyRateLimiter, RateLimitGuard } from './rate-limit.guard';
import { RateLimitStore } from './rate-limit-store';

@Module({
  imports: [AuditModule],
  controllers: [ApiKeysController, ApiKeyRequestsController, ClientsController, MeController],
  // Guard order matters: authenticate first, then count the request against its key.
  providers: [
    ApiKeysService,
    ApprovalsService,
    ClientsService,
    RateLimitStore,
    KeyRateLimiter,
    AuthFailureLimiter,
    AuthFailures,
    { provide: APP_GUARD, useClass: AuthGuard },
    { provide: APP_GUARD, useClass: RateLimitGuard },
  ],
  exports: [ApiKeysService, ApprovalsService, ClientsService, AuthFailures],
})
export class AuthModule {}
