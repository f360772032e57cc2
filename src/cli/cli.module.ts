import { DynamicModule, Module, Type } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import pino from 'pino';
import { AuditModule } from '../audit/audit.module';
import { AuthModule } from '../auth/auth.module';
import { loggerParams } from '../common/logging';
import { AppConfig } from '../config/app-config';
import { ConfigModule } from '../config/config.module';
import { DatabaseModule } from '../database/database.module';

/**
 * The services the CLI drives; logs go to stderr so stdout stays for results. Modules only some
 * commands need (verification, for `pii`) come as `extra`, loaded by those commands alone.
 */
@Module({})
export class CliModule {
  static forRoot(config: AppConfig, extra: Type[] = []): DynamicModule {
    return {
      module: CliModule,
      imports: [
        // One job and out: no sealer, signer, sweeper or witness delivery in a CLI process.
        ConfigModule.forRoot({ ...config, backgroundWorkers: false }),
        // Only errors reach the CLI's stderr (warnings such as "sandbox mode" are for the server).
        LoggerModule.forRoot(
          loggerParams(['silent', 'fatal'].includes(config.logLevel) ? config.logLevel : 'error', pino.destination(2)),
        ),
        DatabaseModule,
        AuditModule,
        AuthModule,
        ...extra,
      ],
    };
  }
}
