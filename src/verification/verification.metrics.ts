import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import { PrismaService } from '../database/prisma.service';

/**
 * Verification metrics in a registry of their own (merged into `/metrics`):
 * outcomes and charges as they happen, and the pending / unknown backlog read
 * from the database at scrape time (so every instance reports the shared truth).
 */
@Injectable()
export class VerificationMetrics {
  readonly registry = new Registry();
  readonly settled: Counter<'channel' | 'status' | 'result' | 'charge_status'>;
  readonly chargedAmount: Counter<'currency'>;

  constructor(prisma: PrismaService) {
    this.settled = new Counter({
      name: 'idgate_verifications_total',
      help: 'Verifications settled by this instance, by channel, status, result code and charge status',
      labelNames: ['channel', 'status', 'result', 'charge_status'],
      registers: [this.registry],
    });
    this.chargedAmount = new Counter({
      name: 'idgate_charged_amount_minor_total',
      help: 'Amount of charged verifications settled by this instance, in minor currency units',
      labelNames: ['currency'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'idgate_verifications_backlog',
      help: 'Verifications currently pending (upstream call in flight) or unknown (awaiting reconciliation)',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const rows = await prisma.verification.groupBy({
          by: ['status'],
          where: { status: { in: ['pending', 'unknown'] } },
          _count: { _all: true },
        });
        this.reset();
        for (const status of ['pending', 'unknown'] as const) {
          this.set({ status }, rows.find((r) => r.status === status)?._count._all ?? 0);
        }
      },
    });
  }

  recordSettled(v: {
    channel: string;
    status: string;
    result: string | null;
    chargeStatus: string;
    amount: number | null;
    currency: string;
  }): void {
    this.settled.inc({
      channel: v.channel,
      status: v.status,
      result: v.result ?? 'none',
      charge_status: v.chargeStatus,
    });
    if (v.chargeStatus === 'charged' && v.amount) this.chargedAmount.inc({ currency: v.currency }, v.amount);
  }
}
