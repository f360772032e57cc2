import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { AuditService } from '../../audit/audit.service';
import type { AuditContext } from '../../audit/audit-vocabulary';
import type { Principal } from '../../auth/roles';
import { AdmissionGate, AdmissionPermit, AdmissionRefused } from '../../common/admission-gate';
import { csvRows } from '../../common/csv-safety';
import { decodeCursor, encodeCursor, Page } from '../../common/pagination';
import { ProblemException, validationProblem } from '../../common/problem';
import { AppConfig } from '../../config/app-config';
import { PrismaService } from '../../database/prisma.service';
import { poolConfigFromUrl } from '../../database/schema-engine';
import { Prisma } from '../../generated/prisma/client';
import { ChargeSettlementService } from '../../verification/charge-settlement.service';
import { checkDateTime } from '../../common/date-time';
import {
  DIFFERENCE_STATUSES,
  isStatementHeader,
  ITEM_STATUSES,
  ItemStatus,
  ParsedLine,
  parseStatementLine,
  statementPeriod,
  STATEMENT_HEADER,
  unreadableLine,
} from './statement-rules';
import { StatementReader, StatementRecord, withoutControlCharacters } from './statement-reader';
import type { StatementUpload } from './statement-upload';

/** Lines per COPY while loading: each batch is its own short transaction. */
const LOAD_BATCH = 20_000;
/** Rows per query while exporting. */
const EXPORT_BATCH = 5000;
/**
 * How far a statement line's called_at may lie outside [created_at, completed_at]
 * of an unknown call of ours that never learnt its trace id, for the two to be
 * paired by time (clock skew between vendor and idgate). A line inside exactly
 * one call's own window wins over tolerance-only candidates; ambiguity pairs nothing.
 */
export const TIME_WINDOW_TOLERANCE_MS = 2000;
/** The matching pass (not the upload) runs in one transaction; bounded so it cannot hold locks forever. */
/** Matching must end well within AUDIT_ORDER_TOLERANCE_MS (5 min): its events are sealed behind everything it overlapped. */
const MATCH_TIMEOUT_MS = 4 * 60_000;
/**
 * Statements one instance reads at once. Each holds a database connection only while it
 * copies a batch, but a third finance upload should wait its turn rather than compete.
 */
const CONCURRENT_UPLOADS = 2;
/** A statement waits this long for its turn before it is refused (429, retry later). */
const UPLOAD_QUEUE_WAIT_MS = 60_000;
/** How long a statement waits for another instance's matching to finish, retrying the lock. */
const MATCH_LOCK_WAIT_MS = 30 * 60_000;
/** A load older than this that never completed belongs to a process that died: removed. */
const ABANDONED_LOAD_MS = 2 * 60 * 60_000;
const MATCH_LOCK = 'idgate.billing.reconciliation';
/** The longest statement line (characters); a longer one is reported as malformed and skipped unread. */
const MAX_RECORD_CHARS = 64 * 1024;

const NOT_A_STATEMENT = `is not a vendor statement: the first line must be exactly ${STATEMENT_HEADER}`;

export interface ReconciliationSummary {
  id: string;
  created_at: string;
  file_sha256: string;
  file_bytes: number;
  line_count: number;
  period: { from: string | null; to: string | null; source: string };
  currency: string;
  counts: Record<ItemStatus | 'differences', number>;
  amounts: {
    vendor_total: number;
    internal_total: number;
    difference: number;
    by_status: Record<string, { vendor: number; internal: number }>;
  };
  settled: { charged: number; not_charged: number };
}

export interface ReconciliationItemView {
  seq: number;
  line_no: number | null;
  status: ItemStatus;
  trace_id: string | null;
  called_at: string | null;
  vendor_result: string | null;
  vendor_charged: boolean | null;
  vendor_amount: number | null;
  verification_id: string | null;
  match_method: string | null;
  internal_charge_status: string | null;
  internal_result: string | null;
  internal_amount: number | null;
  settlement: string | null;
  problem: string | null;
}

export const ITEM_CSV_COLUMNS: (keyof ReconciliationItemView)[] = [
  'seq',
  'line_no',
  'status',
  'trace_id',
  'called_at',
  'vendor_result',
  'vendor_charged',
  'vendor_amount',
  'verification_id',
  'match_method',
  'internal_charge_status',
  'internal_result',
  'internal_amount',
  'settlement',
  'problem',
];

/** An item as the database returns it: the view's fields, before status narrowing and date formatting. */
type ItemRow = Omit<ReconciliationItemView, 'status' | 'called_at'> & { status: string; called_at: Date | null };

const ITEM_COLUMNS = Prisma.sql`seq, line_no, status, trace_id, called_at, vendor_result, vendor_charged, vendor_amount,
  verification_id::text AS verification_id, match_method, internal_charge_status, internal_result, internal_amount,
  settlement, problem`;

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

class LineBatch {
  lineNo: number[] = [];
  traceId: (string | null)[] = [];
  calledAt: (string | null)[] = [];
  result: (string | null)[] = [];
  charged: (boolean | null)[] = [];
  amount: (number | null)[] = [];
  problem: (string | null)[] = [];

  get size(): number {
    return this.lineNo.length;
  }

  /** COPY's CSV: text always quoted (so "" is an empty string), NULL as an empty unquoted field. */
  toCsv(id: string): string {
    const text = (v: string | null) => (v === null ? '' : `"${v.replace(/"/g, '""')}"`);
    const plain = (v: string | number | boolean | null) => (v === null ? '' : String(v));
    let out = '';
    for (let i = 0; i < this.lineNo.length; i++) {
      out +=
        `${id},${this.lineNo[i]},${text(this.traceId[i])},${plain(this.calledAt[i])},${text(this.result[i])},` +
        `${plain(this.charged[i])},${plain(this.amount[i])},${text(this.problem[i])}\n`;
    }
    return out;
  }

  add(parsed: ParsedLine, raw: readonly string[] = []): void {
    if (parsed.ok) {
      const l = parsed.line;
      this.push(l.lineNo, l.traceId, l.calledAt.toISOString(), l.result, l.charged, l.amount, null);
    } else {
      // A malformed line keeps its trace id as sent (truncated, control characters dropped) so finance can find it.
      const trace = withoutControlCharacters(raw[0] ?? '')
        .trim()
        .slice(0, 128);
      this.push(parsed.lineNo, trace || null, null, null, null, null, parsed.problem.slice(0, 300));
    }
  }

  private push(
    lineNo: number,
    traceId: string | null,
    calledAt: string | null,
    result: string | null,
    charged: boolean | null,
    amount: number | null,
    problem: string | null,
  ): void {
    this.lineNo.push(lineNo);
    this.traceId.push(traceId);
    this.calledAt.push(calledAt);
    this.result.push(result);
    this.charged.push(charged);
    this.amount.push(amount);
    this.problem.push(problem);
  }
}

/**
 * Reconciliation against the vendor's statement (SPEC §7, issue 6).
 *
 * 1. Load: the upload is streamed through StatementReader (statement-reader.ts:
 *    a line it cannot read is stored as malformed with its line number, and
 *    reading goes on) into `reconciliation_lines` with one COPY per 20,000
 *    lines on a connection of its own; each COPY is a short transaction, so no
 *    transaction spans the upload and the audit sealer's watermark is not held
 *    back by a slow client. A refused header stores nothing; a failed upload
 *    (the client went away) removes what it loaded.
 * 2. Match, in ONE transaction (serialised with other reconciliations): one
 *    set-based pass joins the lines to `verification_charges` by trace id;
 *    a second, small pass pairs lines nobody claimed with our `unknown` calls
 *    that never learnt their trace id, by time; a third adds ours that the bill
 *    lacks. Unknown charges the statement settles are settled through the
 *    verification module (ChargeSettlementService, one audit event each), the
 *    summary is stored and `reconciliation.created` is audited, all together.
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
    const before = new Date(now.getTime() - ABANDONED_LOAD_MS);
    const stale = await this.prisma.reconciliation.findMany({
      where: { state: 'loading', createdAt: { lt: before } },
      select: { id: true },
    });
    for (const { id } of stale) await this.discardLoad(id);
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

    const hash = createHash('sha256');
    let bytes = 0;
    const decoder = new StringDecoder('utf8');
    const reader = new StatementReader({
      maxRecordChars: MAX_RECORD_CHARS,
      // A quoted field spanning lines is kept only when it makes a good line; otherwise its quote was unbalanced.
      acceptSpanning: (fields) => parseStatementLine(fields, 0).ok,
    });
    // Records of the chunk just read (bounded by one chunk): the stream is read only as they are stored.
    const ready: StatementRecord[] = [];
    const emit = (record: StatementRecord) => void ready.push(record);
    // Not destroyed on return: after a refusal the rest of the request is drained, so the client gets the answer.
    const chunks = upload.stream.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer | string>;
    let finished = false;
    const fill = async (): Promise<void> => {
      while (ready.length === 0 && !finished) {
        const next = await chunks.next();
        if (next.done) {
          reader.push(decoder.end(), emit);
          reader.end(emit);
          finished = true;
          return;
        }
        const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
        hash.update(chunk);
        bytes += chunk.length;
        reader.push(decoder.write(chunk), emit);
      }
    };
    const release = async () => {
      await chunks.return?.().catch(() => undefined);
      upload.discard();
    };

    const first = await fill().then(
      () => ready.shift(),
      () => undefined,
    );
    const headerOk = first?.kind === 'record' && first.lineNo === 1 && isStatementHeader(first.fields);
    if (!headerOk) {
      await release();
      throw validationProblem([{ field: 'file', message: NOT_A_STATEMENT }]);
    }

    const currency = this.config.billing.currency;
    const created = await this.prisma.reconciliation.create({
      data: {
        createdByKeyId: principal.keyId,
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
    const id = created.id;

    const loadStarted = performance.now();
    let lineCount = 0;
    let maxLineNo = 1;
    let minCalledAt: Date | null = null;
    let maxCalledAt: Date | null = null;
    try {
      let batch = new LineBatch();
      const flush = async () => {
        if (batch.size === 0) return;
        lineCount += batch.size;
        maxLineNo = Math.max(maxLineNo, batch.lineNo[batch.size - 1]);
        await this.insertLines(id, batch);
        batch = new LineBatch();
      };
      for (;;) {
        await fill();
        if (ready.length === 0) break;
        for (const record of ready.splice(0)) {
          if (record.kind === 'unreadable') {
            batch.add(unreadableLine(record.lineNo, record.problem), [record.firstField]);
          } else {
            const parsed = parseStatementLine(record.fields, record.lineNo);
            if (parsed.ok) {
              const at = parsed.line.calledAt;
              if (!minCalledAt || at < minCalledAt) minCalledAt = at;
              if (!maxCalledAt || at > maxCalledAt) maxCalledAt = at;
            }
            batch.add(parsed, record.fields);
          }
          if (batch.size >= LOAD_BATCH) await flush();
        }
      }
      await flush();
    } catch (err) {
      await release();
      await this.discardLoad(id);
      if (err instanceof ProblemException) throw err;
      this.logger.warn({ reconciliation_id: id, reason: (err as Error).name }, 'statement upload failed');
      throw new ProblemException('bad-request', 'The statement upload could not be read to the end.');
    }

    this.logger.log(
      { reconciliation_id: id, lines: lineCount, load_ms: Math.round(performance.now() - loadStarted) },
      'statement loaded',
    );
    const { period: resolved, source } = statementPeriod(period, { min: minCalledAt, max: maxCalledAt });
    const matchInput = {
      id,
      fileSha256: hash.digest('hex'),
      fileBytes: bytes,
      lineCount,
      maxLineNo,
      period: resolved,
      periodSource: source,
      context,
    };
    try {
      return await this.matchInTurn(matchInput);
    } catch (err) {
      // Nothing of a statement that could not be matched stays behind.
      await this.discardLoad(id);
      throw err;
    }
  }

  /**
   * Matching runs one statement at a time across all instances (two statements must not
   * settle the same unknown call differently). Waiting for that turn holds no connection:
   * one matching at a time per instance, and the cluster-wide lock is tried, not waited on.
   */
  private async matchInTurn(input: Parameters<ReconciliationService['match']>[1]): Promise<ReconciliationSummary> {
    let permit: AdmissionPermit;
    try {
      permit = await this.matching.enter();
    } catch (err) {
      if (!(err instanceof AdmissionRefused)) throw err;
      throw new ProblemException(
        'rate-limited',
        'Too many statements are waiting to be matched; retry later.',
        {},
        {
          'Retry-After': '60',
        },
      );
    }
    try {
      const giveUpAt = Date.now() + MATCH_LOCK_WAIT_MS;
      for (;;) {
        const result = await this.prisma.$transaction(
          async (tx) => {
            const [{ locked }] = await tx.$queryRaw<Array<{ locked: boolean }>>`
              SELECT pg_try_advisory_xact_lock(hashtext(${MATCH_LOCK})) AS locked`;
            return locked ? this.match(tx, input) : null;
          },
          { timeout: MATCH_TIMEOUT_MS, maxWait: 30_000 },
        );
        if (result) return result;
        if (Date.now() > giveUpAt) {
          throw new ProblemException(
            'service-unavailable',
            'Another statement is still being matched; retry later.',
            {},
            {
              'Retry-After': '60',
            },
          );
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      permit.release();
    }
  }

  /** Removes what a failed upload loaded (lines first: there is no cascading foreign key). */
  private async discardLoad(id: string): Promise<void> {
    try {
      await this.prisma.$transaction([
        this.prisma.$executeRaw`DELETE FROM reconciliation_lines WHERE reconciliation_id = ${id}::uuid`,
        this.prisma.$executeRaw`DELETE FROM reconciliations WHERE id = ${id}::uuid AND state = 'loading'`,
      ]);
    } catch (err) {
      this.logger.error({ reconciliation_id: id, reason: (err as Error).name }, 'could not discard a failed upload');
    }
  }

  /**
   * One COPY per batch, each a short transaction on a connection of its own, held only for
   * that COPY: a slow upload (a trickle of bytes) holds no connection while it waits.
   */
  private async insertLines(id: string, b: LineBatch): Promise<void> {
    const loader = new pg.Client(
      poolConfigFromUrl(this.config.databaseUrl, { application_name: 'idgate-reconciliation' }),
    );
    try {
      await loader.connect();
      await pipeline(
        Readable.from([b.toCsv(id)]),
        loader.query(
          copyFrom(
            'COPY reconciliation_lines (reconciliation_id, line_no, trace_id, called_at, result, charged, amount, problem) ' +
              'FROM STDIN WITH (FORMAT csv)',
          ),
        ),
      );
    } finally {
      await loader.end().catch(() => undefined);
    }
  }

  private async match(
    tx: Prisma.TransactionClient,
    r: {
      id: string;
      fileSha256: string;
      fileBytes: number;
      lineCount: number;
      maxLineNo: number;
      period: { from: Date; to: Date } | null;
      periodSource: string;
      context: AuditContext;
    },
  ): Promise<ReconciliationSummary> {
    const { id } = r;
    const phases = new PhaseTimer();
    // The caller holds the cluster-wide matching lock (matchInTurn).
    // Fresh statistics for the rows just loaded, so the planner hash-joins a large statement instead of looping.
    await tx.$executeRaw`ANALYZE reconciliation_lines`;
    const tolerance = Prisma.sql`(${TIME_WINDOW_TOLERANCE_MS}::int * interval '1 millisecond')`;

    // Pass 1: every line, joined to ours by trace id, judged (statement-rules.ts classifyLine, in SQL).
    await tx.$executeRaw`
      WITH dups AS (
        SELECT trace_id, min(line_no) AS first_line
        FROM reconciliation_lines
        WHERE reconciliation_id = ${id}::uuid AND problem IS NULL
        GROUP BY trace_id HAVING count(*) > 1
      ),
      j AS (
        SELECT l.*, v.id AS v_id, v.status AS v_status, v.charge_status AS v_charge_status, v.result AS v_result,
               v.unit_price AS v_unit_price, v.amount AS v_amount,
               (d.first_line IS NOT NULL AND l.line_no > d.first_line) AS is_dup
        FROM reconciliation_lines l
        LEFT JOIN dups d ON d.trace_id = l.trace_id
        LEFT JOIN verification_charges v ON l.problem IS NULL AND v.upstream_trace_id = l.trace_id
        WHERE l.reconciliation_id = ${id}::uuid
      ),
      judged AS (
        SELECT j.*,
          (j.problem IS NULL AND NOT j.is_dup AND j.v_status = 'unknown' AND j.v_charge_status = 'unknown') AS settles,
          CASE
            WHEN j.problem IS NOT NULL THEN 'malformed'
            WHEN j.is_dup THEN 'duplicate'
            WHEN j.v_id IS NULL THEN 'missing_internal'
            WHEN j.v_charge_status = 'unknown' AND j.v_status <> 'unknown' THEN 'matched'
            WHEN j.v_charge_status = 'unknown' THEN
              CASE WHEN j.amount <> (CASE WHEN j.charged THEN j.v_unit_price ELSE 0 END) THEN 'amount_mismatch' ELSE 'matched' END
            WHEN j.charged <> (j.v_charge_status = 'charged') THEN 'charge_mismatch'
            WHEN j.amount <> COALESCE(j.v_amount, 0) THEN 'amount_mismatch'
            WHEN j.v_result IS NOT NULL AND j.result <> j.v_result THEN 'result_mismatch'
            ELSE 'matched'
          END AS status
        FROM j
      )
      INSERT INTO reconciliation_items (reconciliation_id, seq, line_no, status, trace_id, called_at, vendor_result,
        vendor_charged, vendor_amount, verification_id, match_method, internal_charge_status, internal_result,
        internal_amount, settlement, problem)
      SELECT ${id}::uuid, line_no, line_no, status, trace_id, called_at, result, charged, amount,
             v_id, CASE WHEN v_id IS NOT NULL THEN 'trace_id' END, v_charge_status, v_result,
             CASE WHEN is_dup THEN NULL
                  WHEN settles THEN (CASE WHEN charged THEN v_unit_price ELSE 0 END)
                  ELSE v_amount END,
             CASE WHEN settles THEN (CASE WHEN charged THEN 'charged' ELSE 'not_charged' END) END,
             problem
      FROM judged`;

    phases.mark('pass1_trace_join');
    // Pass 2: lines nobody claimed, paired by time with unknown calls of ours that never learnt a trace id.
    const [{ pending }] = await tx.$queryRaw<Array<{ pending: boolean }>>`
      SELECT EXISTS (
        SELECT 1 FROM verification_charges
        WHERE status = 'unknown' AND charge_status = 'unknown' AND upstream_trace_id IS NULL
      ) AS pending`;
    if (pending) {
      await tx.$executeRaw`
        WITH cand AS (
          SELECT i.seq, v.id AS verification_id, v.unit_price,
                 (i.called_at >= v.created_at AND i.called_at <= COALESCE(v.completed_at, v.created_at)) AS exact
          FROM reconciliation_items i
          JOIN verification_charges v
            ON v.status = 'unknown' AND v.charge_status = 'unknown' AND v.upstream_trace_id IS NULL
           AND i.called_at >= v.created_at - ${tolerance}
           AND i.called_at <= COALESCE(v.completed_at, v.created_at) + ${tolerance}
          WHERE i.reconciliation_id = ${id}::uuid AND i.status = 'missing_internal'
        ),
        ranked AS (
          SELECT cand.*,
                 count(*) FILTER (WHERE exact) OVER (PARTITION BY seq) AS n_exact,
                 count(*) OVER (PARTITION BY seq) AS n_all
          FROM cand
        ),
        chosen AS (
          SELECT * FROM ranked WHERE (n_exact = 1 AND exact) OR (n_exact = 0 AND n_all = 1)
        ),
        -- A call claimed by one line inside its own window keeps that line; otherwise only a sole claimant pairs.
        claims AS (
          SELECT chosen.*,
                 count(*) FILTER (WHERE exact) OVER (PARTITION BY verification_id) AS v_exact,
                 count(*) OVER (PARTITION BY verification_id) AS v_all
          FROM chosen
        ),
        paired AS (
          SELECT * FROM claims WHERE (v_exact = 1 AND exact) OR (v_exact = 0 AND v_all = 1)
        )
        UPDATE reconciliation_items i
        SET verification_id = p.verification_id,
            match_method = 'time_window',
            internal_charge_status = 'unknown',
            internal_result = NULL,
            status = CASE WHEN i.vendor_amount <> (CASE WHEN i.vendor_charged THEN p.unit_price ELSE 0 END)
                          THEN 'amount_mismatch' ELSE 'matched' END,
            internal_amount = CASE WHEN i.vendor_charged THEN p.unit_price ELSE 0 END,
            settlement = CASE WHEN i.vendor_charged THEN 'charged' ELSE 'not_charged' END
        FROM paired p
        WHERE i.reconciliation_id = ${id}::uuid AND i.seq = p.seq`;
    }
    await tx.$executeRaw`ANALYZE reconciliation_items`;
    phases.mark('pass2_time_window');

    // Pass 3: ours in the period that the bill lacks: charged → missing_vendor; unknown → not_billed (settled not charged).
    if (r.period) {
      await tx.$executeRaw`
        INSERT INTO reconciliation_items (reconciliation_id, seq, line_no, status, trace_id, called_at, vendor_result,
          vendor_charged, vendor_amount, verification_id, match_method, internal_charge_status, internal_result,
          internal_amount, settlement, problem)
        SELECT ${id}::uuid, ${r.maxLineNo}::int + (row_number() OVER (ORDER BY v.created_at, v.id))::int, NULL,
               CASE WHEN v.charge_status = 'charged' THEN 'missing_vendor' ELSE 'not_billed' END,
               v.upstream_trace_id, NULL, NULL, NULL, NULL, v.id, NULL, v.charge_status, v.result,
               CASE WHEN v.charge_status = 'charged' THEN v.amount ELSE 0 END,
               CASE WHEN v.charge_status = 'unknown' THEN 'not_charged' END,
               NULL
        FROM verification_charges v
        WHERE v.created_at >= ${r.period.from} AND v.created_at < ${r.period.to}
          AND (
            v.charge_status = 'charged'
            -- Unknown calls, and those an earlier statement already settled as not charged (same answer on a re-run).
            OR (
              v.status = 'unknown' AND v.charge_status IN ('unknown', 'not_charged')
              AND COALESCE(v.completed_at, v.created_at) < ${r.period.to}
              -- An unclaimed line that could be this call (ambiguous pairing) forbids "not charged".
              AND (v.upstream_trace_id IS NOT NULL OR v.charge_status = 'not_charged' OR NOT EXISTS (
                SELECT 1 FROM reconciliation_items a
                WHERE a.reconciliation_id = ${id}::uuid AND a.status = 'missing_internal'
                  AND a.called_at >= v.created_at - ${tolerance}
                  AND a.called_at <= COALESCE(v.completed_at, v.created_at) + ${tolerance}))
            )
          )
          AND NOT EXISTS (
            SELECT 1 FROM reconciliation_items i WHERE i.reconciliation_id = ${id}::uuid AND i.verification_id = v.id
          )`;
    }
    phases.mark('pass3_ours_not_billed');

    // Settle what the statement settles, through the verification module (audited there, in this transaction).
    const wanted = await tx.$queryRaw<
      Array<{ verification_id: string; settlement: string; trace_id: string | null; match_method: string | null }>
    >`
      SELECT verification_id::text AS verification_id, settlement, trace_id, match_method
      FROM reconciliation_items
      WHERE reconciliation_id = ${id}::uuid AND settlement IS NOT NULL`;
    const settled = await this.settlements.settleUnknownCharges(
      tx,
      wanted.map((w) => ({
        verificationId: w.verification_id,
        charged: w.settlement === 'charged',
        traceId: w.match_method === 'time_window' ? w.trace_id : null,
      })),
      r.context,
      { source: 'reconciliation', reconciliationId: id },
    );
    if (settled.length !== wanted.length) {
      // Settled meanwhile by a late answer: the report must not claim this reconciliation settled them.
      const done = new Set(settled.map((s) => s.verificationId));
      const notDone = wanted.filter((w) => !done.has(w.verification_id)).map((w) => w.verification_id);
      await tx.$executeRaw`
        UPDATE reconciliation_items SET settlement = NULL
        WHERE reconciliation_id = ${id}::uuid AND verification_id = ANY(${notDone}::uuid[])`;
    }

    phases.mark('settlements');
    const summary = await this.computeSummary(tx, id);
    const settledCounts = {
      charged: settled.filter((s) => s.chargeStatus === 'charged').length,
      not_charged: settled.filter((s) => s.chargeStatus === 'not_charged').length,
    };
    const row = await tx.reconciliation.update({
      where: { id },
      data: {
        fileSha256: r.fileSha256,
        fileBytes: r.fileBytes,
        lineCount: r.lineCount,
        periodFrom: r.period?.from ?? null,
        periodTo: r.period?.to ?? null,
        periodSource: r.periodSource,
        counts: summary.counts,
        amounts: summary.amounts,
        settled: settledCounts,
        state: 'completed',
      },
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

  private async computeSummary(
    tx: Prisma.TransactionClient,
    id: string,
  ): Promise<Pick<ReconciliationSummary, 'counts' | 'amounts'>> {
    const rows = await tx.$queryRaw<Array<{ status: ItemStatus; n: bigint; vendor: bigint; internal: bigint }>>`
      SELECT status, count(*)::bigint AS n,
             COALESCE(sum(vendor_amount) FILTER (WHERE vendor_charged), 0)::bigint AS vendor,
             COALESCE(sum(internal_amount), 0)::bigint AS internal
      FROM reconciliation_items WHERE reconciliation_id = ${id}::uuid
      GROUP BY status`;
    const counts = Object.fromEntries([...ITEM_STATUSES, 'differences'].map((s) => [s, 0])) as Record<
      ItemStatus | 'differences',
      number
    >;
    const byStatus: Record<string, { vendor: number; internal: number }> = {};
    let vendorTotal = 0;
    let internalTotal = 0;
    for (const row of rows) {
      counts[row.status] = Number(row.n);
      if (DIFFERENCE_STATUSES.includes(row.status)) counts.differences += Number(row.n);
      byStatus[row.status] = { vendor: Number(row.vendor), internal: Number(row.internal) };
      vendorTotal += Number(row.vendor);
      internalTotal += Number(row.internal);
    }
    return {
      counts,
      amounts: {
        vendor_total: vendorTotal,
        internal_total: internalTotal,
        difference: vendorTotal - internalTotal,
        by_status: byStatus,
      },
    };
  }

  async summary(id: string): Promise<ReconciliationSummary> {
    const row = await this.prisma.reconciliation.findFirst({ where: { id, state: 'completed' } });
    if (!row) throw new ProblemException('not-found', 'No such reconciliation.');
    return toSummary(row);
  }

  /** Items in report order (statement lines by line number, then ours), keyset on seq. */
  async items(
    id: string,
    status: ItemStatus | undefined,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<ReconciliationItemView>> {
    await this.summary(id);
    const after = cursor
      ? decodeCursor<[number]>(cursor, (v) => v.length === 1 && Number.isInteger(v[0]) && (v[0] as number) >= 0)[0]
      : -1;
    const rows = await this.prisma.$queryRaw<ItemRow[]>`
      SELECT ${ITEM_COLUMNS} FROM reconciliation_items
      WHERE reconciliation_id = ${id}::uuid AND seq > ${after}::int
        ${status ? Prisma.sql`AND status = ${status}` : Prisma.empty}
      ORDER BY seq
      LIMIT ${limit + 1}`;
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { items: page.map(itemView), next_cursor: more ? encodeCursor([page[page.length - 1].seq]) : null };
  }

  /** The whole report as CSV, read in keyset batches: memory stays flat for any size. */
  async *exportCsv(id: string, status?: ItemStatus): AsyncGenerator<string> {
    await this.summary(id);
    yield csvRows([ITEM_CSV_COLUMNS]);
    let after = -1;
    for (;;) {
      const rows = await this.prisma.$queryRaw<ItemRow[]>`
        SELECT ${ITEM_COLUMNS} FROM reconciliation_items
        WHERE reconciliation_id = ${id}::uuid AND seq > ${after}::int
          ${status ? Prisma.sql`AND status = ${status}` : Prisma.empty}
        ORDER BY seq
        LIMIT ${EXPORT_BATCH}`;
      if (rows.length === 0) return;
      after = rows[rows.length - 1].seq;
      yield csvRows(rows.map((r) => ITEM_CSV_COLUMNS.map((c) => csvValue(itemView(r)[c]))));
      if (rows.length < EXPORT_BATCH) return;
    }
  }
}

function csvValue(value: unknown): string | number {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return value as string | number;
}

function itemView(r: ItemRow): ReconciliationItemView {
  return {
    seq: r.seq,
    line_no: r.line_no,
    status: r.status as ItemStatus,
    trace_id: r.trace_id,
    called_at: r.called_at ? r.called_at.toISOString() : null,
    vendor_result: r.vendor_result,
    vendor_charged: r.vendor_charged,
    vendor_amount: r.vendor_amount,
    verification_id: r.verification_id,
    match_method: r.match_method,
    internal_charge_status: r.internal_charge_status,
    internal_result: r.internal_result,
    internal_amount: r.internal_amount,
    settlement: r.settlement,
    problem: r.problem,
  };
}

function toSummary(row: {
  id: string;
  createdAt: Date;
  fileSha256: string;
  fileBytes: bigint;
  lineCount: number;
  periodFrom: Date | null;
  periodTo: Date | null;
  periodSource: string;
  currency: string;
  counts: unknown;
  amounts: unknown;
  settled: unknown;
}): ReconciliationSummary {
  return {
    id: row.id,
    created_at: row.createdAt.toISOString(),
    file_sha256: row.fileSha256,
    file_bytes: Number(row.fileBytes),
    line_count: row.lineCount,
    period: {
      from: row.periodFrom?.toISOString() ?? null,
      to: row.periodTo?.toISOString() ?? null,
      source: row.periodSource,
    },
    currency: row.currency,
    counts: row.counts as ReconciliationSummary['counts'],
    amounts: row.amounts as ReconciliationSummary['amounts'],
    settled: row.settled as ReconciliationSummary['settled'],
  };
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
