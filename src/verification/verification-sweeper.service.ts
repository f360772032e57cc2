import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { systemContext } from '../audit/audit-vocabulary';
import { loggableError } from '../common/problem.filter';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../database/prisma.service';
import { PiiMaintenanceService } from './pii-maintenance.service';
import { sweepDeadlineMs } from './verification-rules';
import { VerificationService } from './verification.service';
import { VerificationStore } from './verification.store';

const SWEEP_INTERVAL_MS = 15_000;
const SWEEP_BATCH = 500;

/**
 * Turns `pending` verifications that outlived any possible upstream call (the
 * process died, or shut down mid-call) into `unknown`, for reconciliation to
 * settle; forgets expired idempotency keys; and applies PII_RETENTION_DAYS. Runs at start and periodically;
 * safe with several instances (row locks, SKIP LOCKED).
 */
@Injectable()
export class VerificationSweeper implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(VerificationSweeper.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly prisma: PrismaService,
    private readonly audit: AuditService,
    private readonly store: VerificationStore,
    private readonly pii: PiiMaintenanceService,
    private readonly config: AppConfig,
    private readonly verifications: VerificationService,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.backgroundWorkers) return;
    const tick = () => {
      this.running = this.sweep().catch((err) => this.logger.error({ err: loggableError(err) }, 'sweep failed'));
    };
    tick();
    this.timer = setInterval(tick, SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  // Stops before the pool closes (the pool closes in onApplicationShutdown).
  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; returns how many pending verifications became unknown. */
  async sweep(now = new Date()): Promise<number> {
    const cutoff = new Date(now.getTime() - sweepDeadlineMs(this.config.upstream));
    let total = 0;
    for (;;) {
      // Answers this process still holds and is writing are not abandoned, however late.
      const settling = this.verifications.settlingIds();
      const swept = await this.prisma.$transaction(async (tx) => {
        const rows = await this.store.markAbandoned(tx, cutoff, settling, SWEEP_BATCH);
        await this.audit.recordMany(
          tx,
          systemContext('sweeper'),
          rows.map((row) => ({
            action: 'verification.unknown' as const,
            outcome: 'failure' as const,
            target: { type: 'verification', id: row.id },
            details: { reason: 'pending past the upstream deadline', charge_status: 'unknown' },
            idCardHmac: row.idCardHmac,
          })),
        );
        return rows.length;
      });
      total += swept;
      if (swept < SWEEP_BATCH) break;
    }
    if (total > 0) this.logger.warn({ count: total }, 'stale pending verifications marked unknown');
    await this.store.purgeExpiredKeysAllClients(now);
    if (this.config.pii.retentionDays !== undefined) {
      await this.pii.purgeOlderThan(this.config.pii.retentionDays, systemContext('retention'), now);
    }
    return total;
  }
}
