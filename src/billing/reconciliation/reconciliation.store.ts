import { Injectable } from '@nestjs/common';
import { PrismaService } from '../../database/prisma.service';
import type { Transaction } from '../../database/transaction';
import type { ReconciliationRow, ReconciliationSummary } from './reconciliation-report';
import type { Period, PeriodSource } from './statement-rules';

/**
 * The store of `reconciliations`: the only code that writes its rows. A row is
 * `loading` while its statement streams into staging (never shown), and becomes
 * `completed`, with its summary, in the transaction that matched it.
 */
@Injectable()
export class ReconciliationStore {
  constructor(private readonly prisma: PrismaService) {}

  /** A load about to start: the row the staged lines belong to. */
  async createLoading(createdByKeyId: string | null, currency: string): Promise<string> {
    const created = await this.prisma.reconciliation.create({
      data: {
        createdByKeyId,
        fileSha256: '0'.repeat(64),
        fileBytes: 0,
        lineCount: 0,
        periodSource: 'none',
        currency,
        counts: {},
        amounts: {},
        settled: {},
        state: 'loading',
      },
      select: { id: true },
    });
    return created.id;
  }

  async complete(
    tx: Transaction,
    id: string,
    outcome: {
      fileSha256: string;
      fileBytes: number;
      lineCount: number;
      period: Period | null;
      periodSource: PeriodSource;
      counts: ReconciliationSummary['counts'];
      amounts: ReconciliationSummary['amounts'];
      settled: ReconciliationSummary['settled'];
    },
  ): Promise<ReconciliationRow> {
    return tx.reconciliation.update({
      where: { id },
      data: {
        fileSha256: outcome.fileSha256,
        fileBytes: outcome.fileBytes,
        lineCount: outcome.lineCount,
        periodFrom: outcome.period?.from ?? null,
        periodTo: outcome.period?.to ?? null,
        periodSource: outcome.periodSource,
        counts: outcome.counts,
        amounts: outcome.amounts,
        settled: outcome.settled,
        state: 'completed',
      },
    });
  }

  /** Removes a load that will not complete (a completed reconciliation is never removed). */
  async removeLoading(tx: Transaction, id: string): Promise<void> {
    await tx.$executeRaw`DELETE FROM reconciliations WHERE id = ${id}::uuid AND state = 'loading'`;
  }

  /** Loads started before `before` that never completed: their process died. */
  async loadingSince(before: Date): Promise<string[]> {
    const stale = await this.prisma.reconciliation.findMany({
      where: { state: 'loading', createdAt: { lt: before } },
      select: { id: true },
    });
    return stale.map((r) => r.id);
  }
}
