import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { AppConfig } from '../config/app-config';
import { PrismaClient } from '../generated/prisma/client';
import { poolConfigFromUrl } from './schema-engine';

/** The one Prisma client of the process, on the pg adapter, built from validated config. */
@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  constructor(config: AppConfig) {
    super({
      adapter: new PrismaPg(
        poolConfigFromUrl(config.databaseUrl, {
          max: config.databasePoolSize,
          application_name: 'idgate',
        }),
      ),
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
  }
}

/** The client handed to code running inside `prisma.$transaction(async (tx) => …)`. */
export type PrismaTransaction = Parameters<Parameters<PrismaService['$transaction']>[0]>[0];
