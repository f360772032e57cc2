import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';

export interface Check {
  status: 'up' | 'down';
  detail?: string;
}

const DB_CHECK_TIMEOUT_MS = 2000;

@Injectable()
export class HealthService {
  constructor(private readonly prisma: PrismaService) {}

  async readinessChecks(): Promise<Record<string, Check>> {
    return { database: await this.databaseCheck() };
  }

  private async databaseCheck(): Promise<Check> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.prisma.$queryRaw`SELECT 1`,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), DB_CHECK_TIMEOUT_MS);
        }),
      ]);
      return { status: 'up' };
    } catch (err) {
      return { status: 'down', detail: (err as Error).message === 'timeout' ? 'no answer within 2 s' : 'query failed' };
    } finally {
      clearTimeout(timer);
    }
  }
}
