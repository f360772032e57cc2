import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { UpstreamCircuit } from '../upstream/upstream-circuit';

export interface Check {
  status: 'up' | 'down';
  detail?: string;
}

const DB_CHECK_TIMEOUT_MS = 2000;

@Injectable()
export class HealthService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly upstreamCircuit: UpstreamCircuit,
  ) {}

  async readinessChecks(): Promise<Record<string, Check>> {
    return { database: await this.databaseCheck(), upstream: this.upstreamCheck() };
  }

  /** Down while the upstream circuit is open: verifications would get 503 at once. */
  private upstreamCheck(): Check {
    const { state, retryAfterSeconds } = this.upstreamCircuit.view();
    if (state === 'closed') return { status: 'up' };
    if (state === 'half_open') return { status: 'up', detail: 'circuit half-open: trial call in progress' };
    return { status: 'down', detail: `circuit ${state}: upstream calls refused for about ${retryAfterSeconds ?? 1} s` };
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
