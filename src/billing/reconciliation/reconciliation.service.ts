import { performance } from 'node:perf_hooks';
import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AuditService } from '../../audit/audit.service';
import type { AuditContext } from '../../audit/audit-vocabulary';
import type { Principal } from '../../auth/roles';
import { AdmissionGate, AdmissionPermit, AdmissionRefused } from '../../common/admission-gate';
import { checkDateTime } from '../../common/date-time';
import { ProblemException, validationProblem } from '../../common/problem';
import { AppConfig } from '../../config/app-config';
import { PrismaService } from '../../database/prisma.service';
import { Transaction, tryLockForTransaction } from '../../database/transaction';
import { ChargeSettlementService } from '../../verification/charge-settlement.service';
import {
  addOursMissingFromStatement,
  allowLargeJoins,
  judgeLinesByTraceId,
  pairByTimeWindow,
  tallyItems,
  unmarkSettlements,
} from './matching-passes';
import { ReconciliationSummary, toSummary } from './reconciliation-report';
import { ReconciliationStore } from './reconciliation.store';
import { LoadedStatement, StatementLoader } from './statement-loader';
import { Period, PeriodSource, statementPeriod } from './statement-rules';
import { StatementStaging } from './statement-staging.store';
import type { StatementUpload } from './statement-upload';

export type { ReconciliationItemView, ReconciliationSummary } from './reconciliation-report';
export { ITEM_CSV_COLUMNS } from './reconciliation-report';
export { TIME_WINDOW_TOLERANCE_MS } from './matching-passes';

/** Matching must end well within AUDIT_ORDER_TOLERANCE_MS (5 min): its events are sealed behind everything it overlapped. */
const MATCH_TIMEOUT_MS = 4 * 60_000;
/**
 * Statements one instance reads at once. Each holds a database connection only while
 * rows flow into staging, but a third finance upload should wait its turn rather than compete.
 */
const CONCURRENT_UPLOADS = 2;
/** A statement waits this long for its turn before it is refused (429, retry later). */
const UPLOAD_QUEUE_WAIT_MS = 60_000;
/** How long a statement waits for another instance's matching to finish, retrying the lock. */
const MATCH_LOCK_WAIT_MS = 30 * 60_000;
/** A load older than this that never completed belongs to a process that died: removed. */
const ABANDONED_LOAD_MS = 2 * 60 * 60_000;
const MATCH_LOCK = 'idgate.billing.reconciliation';

interface MatchInput extends LoadedStatement {
  id: string;
  period: Period | null;
  periodSource: PeriodSource;
  context: AuditContext;
}

/** Milliseconds per named phase, for the log line of each reconciliation. */
class PhaseTimer {
  private last = performance.now();
  private readonly phases: Record<string, number> = {};

  mark(name: string): void {
    const now = performance.now();
    this.phases[name] = Math.round(now - this.last);
    this.last = now;
  }

  done(): Record<string, number> {
    return this.phases;
  }
}

/**
 * Reconciliation against the vendor's statement (SPEC §7, docs/billing.md): the
 * request's flow and its limits. The work is done by
 * - the loader (statement-loader.ts): the upload, as it streams, into the
 *   staging table (statement-staging.store.ts), line by line, malformed lines
 *   included; no transaction spans the upload;
 * - the matching passes (matching-passes.ts), in ONE transaction, one
 *   reconciliation at a time across all instances, with the settlements
 *   (ChargeSettlementService), the summary and `reconciliation.created`; the
 *   staged lines are removed after it commits;
 * - the report reader (reconciliation-report.ts) for the API.
 * A reconciliation is shown only once completed, so a half-done one is never visible.
 */
@Injectable()
export class ReconciliationService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ReconciliationService.name);
  private readonly uploads = new AdmissionGate({
    concurrency: CONCURRENT_UPLOADS,
    queue: 100,
    queueWaitMs: UPLOAD_QUEUE_WAIT_MS,
  });
  /** One matching at a time per instance, so waiting for the cluster-wide lock never holds a connection each. */
  private readonly matching = new AdmissionGate({ concurrency: 1, queue: 100, queueWaitMs: MATCH_LOCK_WAIT_MS });
  private sweepTimer: NodeJS.Timeout | undefined;
  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly audit: AuditService,
    private readonly settlements: ChargeSettlementService,
    private readonly staging: StatementStaging,
    private readonly store: ReconciliationStore,
    private readonly loader: StatementLoader,
  ) {}

  onApplicationBootstrap(): void {
    const sweep = () =>
      void this.discardAbandonedLoads().catch((err: unknown) =>
        this.logger.warn({ reason: (err as Error).name }, 'could not remove abandoned statement loads'),
      );
    sweep();
    this.sweepTimer = setInterval(sweep, 10 * 60_000);
    this.sweepTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweepTimer);
  }

  /** Loads left by a process that died before matching (or a failure that could not clean up). */
  async discardAbandonedLoads(now = new Date()): Promise<number> {
    const stale = await this.store.loadingSince(new Date(now.getTime() - ABANDONED_LOAD_MS));
    for (const id of stale) await this.discardLoad(id);
    await this.staging.removeOrphans();
    if (stale.length > 0) this.logger.warn({ count: stale.length }, 'abandoned statement loads removed');
    return stale.length;
  }

  async reconcile(
    upload: StatementUpload,
    explicit: { from?: string; to?: string },
    principal: Principal,
    context: AuditContext,
  ): Promise<ReconciliationSummary> {
    let permit: AdmissionPermit;
    try {
      permit = await this.uploads.enter();
    } catch (err) {
      upload.discard();
      if (!(err instanceof AdmissionRefused)) throw err;
      throw new ProblemException(
        'rate-limited',
        'Other statements are being reconciled on this instance; nothing was stored. Retry in a minute.',
        {},
        { 'Retry-After': '60' },
      );
    }
    try {
      return await this.reconcileAdmitted(upload, explicit, principal, context);
    } finally {
      permit.release();
    }
  }

  private async reconcileAdmitted(
    upload: StatementUpload,
    explicit: { from?: string; to?: string },
    principal: Principal,
    context: AuditContext,
  ): Promise<ReconciliationSummary> {
    let period: { from?: Date; to?: Date };
    try {
      period = explicitPeriod(explicit);
    } catch (err) {
      upload.discard();
      throw err;
    }
    // A refused header stores nothing.
    const statement = await this.loader.open(upload);
    let id: string;
    try {
      id = await this.store.createLoading(principal.keyId, this.config.billing.currency);
    } catch (err) {
      await statement.release();
      throw err;
    }

    const loadStarted = performance.now();
    let loaded: LoadedStatement;
    try {
      loaded = await statement.loadInto(id);
    } catch (err) {
      await this.discardLoad(id);
      if (err instanceof ProblemException) throw err;
      this.logger.warn({ reconciliation_id: id, reason: (err as Error).name }, 'statement upload failed');
      throw new ProblemException('bad-request', 'The statement upload could not be read to the end.');
    }
    this.logger.log(
      { reconciliation_id: id, lines: loaded.lineCount, load_ms: Math.round(performance.now() - loadStarted) },
      'statement loaded',
    );

    const { period: resolved, source } = statementPeriod(period, loaded.calledAt);
    let summary: ReconciliationSummary;
    try {
      summary = await this.matchInTurn({ ...loaded, id, period: resolved, periodSource: source, context });
    } catch (err) {
      // Nothing of a statement that could not be matched stays behind.
      await this.discardLoad(id);
      throw err;
    }
    this.dropStagedLines(id);
    return summary;
  }

  /**
   * The lines of a completed reconciliation are of no more use (its items hold them): deleted in a
   * short transaction of their own once the answer is on its way, not inside matching. Left behind
   * by a crash, the sweeper removes them.
   */
  private dropStagedLines(id: string): void {
    const work = this.prisma.$transaction((tx) => this.staging.remove(tx, id));
    void this.prisma
      .keepOpenFor(work)
      .catch((err: unknown) =>
        this.logger.warn({ reconciliation_id: id, reason: (err as Error).name }, 'could not remove staged lines'),
      );
  }

  /**
   * Matching runs one statement at a time across all instances (two statements must not
   * settle the same unknown call differently). Waiting for that turn holds no connection:
   * one matching at a time per instance, and the cluster-wide lock is tried, not waited on.
   */
  private async matchInTurn(input: MatchInput): Promise<ReconciliationSummary> {
    let permit: AdmissionPermit;
    try {
      permit = await this.matching.enter();
    } catch (err) {
      if (!(err instanceof AdmissionRefused)) throw err;
      throw new ProblemException(
        'rate-limited',
        'Too many statements are waiting to be matched; retry later.',
        {},
        { 'Retry-After': '60' },
      );
    }
    try {
      const giveUpAt = Date.now() + MATCH_LOCK_WAIT_MS;
      for (;;) {
        const result = await this.prisma.$transaction(
          async (tx) => ((await tryLockForTransaction(tx, MATCH_LOCK)) ? this.match(tx, input) : null),
          { timeout: MATCH_TIMEOUT_MS, maxWait: 30_000 },
        );
        if (result) return result;
        if (Date.now() > giveUpAt) {
          throw new ProblemException(
            'service-unavailable',
            'Another statement is still being matched; retry later.',
            {},
            { 'Retry-After': '60' },
          );
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      permit.release();
    }
  }

  /** Removes what a failed upload loaded, row and lines together. */
  private async discardLoad(id: string): Promise<void> {
    try {
      await this.prisma.$transaction(async (tx) => {
        await this.staging.remove(tx, id);
        await this.store.removeLoading(tx, id);
      });
    } catch (err) {
      this.logger.error({ reconciliation_id: id, reason: (err as Error).name }, 'could not discard a failed upload');
    }
  }

  /** The passes, the settlements, the summary and the audit event: all in the caller's transaction. */
  private async match(tx: Transaction, r: MatchInput): Promise<ReconciliationSummary> {
    const { id } = r;
    const phases = new PhaseTimer();
    await allowLargeJoins(tx);
    await this.staging.analyze(tx);
    phases.mark('analyze');
    await judgeLinesByTraceId(tx, id, r.repeatCandidates);
    phases.mark('pass1_trace_join');
    const paired = await pairByTimeWindow(tx, id);
    phases.mark('pass2_time_window');
    if (r.period) await addOursMissingFromStatement(tx, id, r.period, r.maxLineNo, paired);
    phases.mark('pass3_ours_missing');

    const tally = await tallyItems(tx, id);
    phases.mark('tally');
    // Settle what the statement settles, through the verification module (audited there, in this transaction).
    const settled = await this.settlements.settleUnknownCharges(tx, tally.wanted, r.context, {
      source: 'reconciliation',
      reconciliationId: id,
    });
    if (settled.length !== tally.wanted.length) {
      const done = new Set(settled.map((s) => s.verificationId));
      await unmarkSettlements(
        tx,
        id,
        tally.wanted.filter((w) => !done.has(w.verificationId)).map((w) => w.verificationId),
      );
    }
    phases.mark('settlements');
    const summary = { counts: tally.counts, amounts: tally.amounts };
    const settledCounts = {
      charged: settled.filter((s) => s.chargeStatus === 'charged').length,
      not_charged: settled.filter((s) => s.chargeStatus === 'not_charged').length,
    };
    const row = await this.store.complete(tx, id, {
      fileSha256: r.fileSha256,
      fileBytes: r.fileBytes,
      lineCount: r.lineCount,
      period: r.period,
      periodSource: r.periodSource,
      counts: summary.counts,
      amounts: summary.amounts,
      settled: settledCounts,
    });
    await this.audit.record(tx, r.context, {
      action: 'reconciliation.created',
      target: { type: 'reconciliation', id },
      details: {
        file_sha256: r.fileSha256,
        file_bytes: r.fileBytes,
        lines: r.lineCount,
        period_from: r.period?.from.toISOString() ?? null,
        period_to: r.period?.to.toISOString() ?? null,
        period_source: r.periodSource,
        counts: summary.counts,
        vendor_total: summary.amounts.vendor_total,
        internal_total: summary.amounts.internal_total,
        settled: settledCounts,
      },
    });
    phases.mark('summary_audit');
    this.logger.log({ reconciliation_id: id, lines: r.lineCount, phases_ms: phases.done() }, 'reconciliation matched');
    return toSummary(row);
  }
}

/** `from`/`to` as given (both or neither), as instants. */
function explicitPeriod(explicit: { from?: string; to?: string }): { from?: Date; to?: Date } {
  if (explicit.from === undefined && explicit.to === undefined) return {};
  const field = explicit.from === undefined ? 'from' : explicit.to === undefined ? 'to' : null;
  if (field) throw validationProblem([{ field, message: 'is required when the other period bound is given' }]);
  // Multipart form fields skip the DTO: the same date-time rule as every other date filter.
  const bound = (name: 'from' | 'to') => {
    const checked = checkDateTime(explicit[name]);
    if (!checked.ok) throw validationProblem([{ field: name, message: checked.problem }]);
    return checked.at;
  };
  const from = bound('from');
  const to = bound('to');
  if (from >= to) throw validationProblem([{ field: 'to', message: 'must be after from' }]);
  return { from, to };
}
