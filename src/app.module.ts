import { DynamicModule, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { BillingModule } from './billing/billing.module';
import { jsonBodyParser } from './common/body-parsers';
import { loggerParams } from './common/logging';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { ConsoleModule } from './console/console.module';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { VerificationModule } from './verification/verification.module';
import { UpstreamModule } from './upstream/upstream.module';

export interface AppModuleOptions {
  /** Where JSON log lines go (tests capture them); stdout by default. */
  logStream?: DestinationStream;
}

@Module({})
export class AppModule implements NestModule {
  constructor(private readonly config: AppConfig) {}

  /** Bodies are parsed after the request logger, so parse errors carry a request id and are logged. */
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(jsonBodyParser(this.config.bodyLimitBytes)).forRoutes('*path');
  }

  static forRoot(config: AppConfig, options: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot(loggerParams(config.logLevel, options.logStream)),
        DatabaseModule,
        AuditModule,
        AuthModule,
        HealthModule,
        UpstreamModule,
        VerificationModule,
        BillingModule,
        ConsoleModule,
      ],
    };
  }
}
