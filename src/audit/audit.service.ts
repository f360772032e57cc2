import { Injectable, Logger } from '@nestjs/common';
import { decodeCursor, encodeCursor, Page } from '../common/pagination';
import { loggableError } from '../common/problem.filter';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import { AuditCheckpoints, PublicKeyInfo } from './audit-checkpoints.service';
import { AuditEventInput, buildEventRow } from './audit-event-row';
import { AuditIntegrity, IntegrityReport } from './audit-integrity.service';
import {
  AuditEventFilters,
  EVENT_COLUMNS,
  eventCreateData,
  eventView,
  filterConditions,
  SealedEventSqlRow,
  whereClause,
} from './audit-rows';
import { AuditSealer } from './audit-sealer.service';
import { AuditAction, AuditContext } from './audit-vocabulary';
import {
  auditCsvHeader,
  auditCsvLines,
  AuditEventView,
  CheckpointView,
  EXPORT_FORMAT,
  EXPORT_VERSION,
} from './export-format';
import { normalizeIdCardNumber } from '../domain/id-card-number';
import { idCardHmac } from './id-card-hmac';
import type { Transaction } from '../database/transaction';

export type ExportFormat = 'ndjson' | 'csv';

export interface ExportRange extends AuditEventFilters {
  fromSeq?: number;
  toSeq?: number;
}

const EXPORT_BATCH = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The audit trail (SPEC §5): the one way other modules record events, and how
 * compliance reads, exports and verifies them.
 */
@Injectable()
export class AuditService {
  private readonly logger = new Logger(AuditService.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly sealer: AuditSealer,
    private readonly checkpoints: AuditCheckpoints,
    private readonly integrity: AuditIntegrity,
  ) {}

  /**
   * Records an event in the caller's transaction, so the event and the change
   * it describes commit or roll back together. Returns the event id. Throws
   * (failing the transaction) when details carry PII or the action is unknown.
   */
  async record(tx: Transaction, context: AuditContext, event: AuditEventInput): Promise<string> {
    const row = await tx.auditEvent.create({
      data: eventCreateData(buildEventRow(context, event), this.config.audit.macKey),
      select: { id: true },
    });
    return row.id;
  }

  /**
   * Records several events in the caller's transaction with one statement (a batch of rows
   * changed together: a sweep, a statement's settlements, a page read in full), each built
   * and checked as record() builds it. Their ids increase in the order given.
   */
  async recordMany(tx: Transaction, context: AuditContext, events: AuditEventInput[]): Promise<void> {
    const macKey = this.config.audit.macKey;
    // 1,000 rows of 13 values per statement: well inside PostgreSQL's 65,535 bind parameters.
    for (let i = 0; i < events.length; i += 1000) {
      const data = events.slice(i, i + 1000).map((e) => eventCreateData(buildEventRow(context, e), macKey));
      await tx.auditEvent.createMany({ data });
    }
  }

  /**
   * The same event as a SQL statement, for a store that writes its change and the event in
   * one round trip (a data-modifying CTE: `WITH v AS (…), e AS (${event}) …`). Built and
   * checked exactly as record() builds it. With `onlyIfRowsIn`, the event is written only when
   * that CTE of the same statement returned a row (nothing changed, nothing to audit).
   */
  eventStatement(context: AuditContext, event: AuditEventInput, onlyIfRowsIn?: string): Prisma.Sql {
    const e = eventCreateData(buildEventRow(context, event), this.config.audit.macKey);
    if (onlyIfRowsIn !== undefined && !/^[a-z_]+$/.test(onlyIfRowsIn)) throw new Error('not a CTE name');
    const guard =
      onlyIfRowsIn === undefined ? Prisma.empty : Prisma.sql`WHERE EXISTS (SELECT 1 FROM ${Prisma.raw(onlyIfRowsIn)})`;
    return Prisma.sql`
      INSERT INTO audit_events (id, actor_type, actor_id, actor_role, action, target_type, target_id, outcome,
                                request_id, ip, details, id_card_hmac, mac)
      SELECT ${e.id}::uuid, ${e.actorType}::text, ${e.actorId ?? null}::text, ${e.actorRole ?? null}::text,
             ${e.action}::text, ${e.targetType ?? null}::text, ${e.targetId ?? null}::text, ${e.outcome}::text,
             ${e.requestId ?? null}::text, ${e.ip ?? null}::text, ${JSON.stringify(e.details)}::jsonb,
             ${e.idCardHmac ?? null}::text, ${e.mac ?? null}::text
      ${guard}`;
  }

  /** For events with no business transaction (authentication failures, denials): a small transaction of its own. */
  async recordStandalone(context: AuditContext, event: AuditEventInput): Promise<string> {
    // A refused request must still be recorded under load: wait for a connection longer than Prisma's 2 s default.
    return this.prisma.$transaction((tx) => this.record(tx, context, event), { maxWait: 10_000 });
  }

  /** Like recordStandalone, but a failure to record is logged rather than thrown (the request is refused anyway). */
  async recordBestEffort(context: AuditContext, event: AuditEventInput): Promise<void> {
    try {
      await this.recordStandalone(context, event);
    } catch (err) {
      this.logger.error({ err: loggableError(err), action: event.action }, 'could not record an audit event');
    }
  }

  /** Whether the trail holds an event of this action (one-off facts recorded as events, e.g. a backfill). */
  async hasEvent(tx: Transaction, action: AuditAction): Promise<boolean> {
    const found = await tx.auditEvent.findFirst({ where: { action }, select: { id: true } });
    return found !== null;
  }

  /** Whether the trail holds an event of this action about this target (a key's revocation, say). */
  async hasEventAbout(action: AuditAction, target: { type: string; id: string }): Promise<boolean> {
    const found = await this.prisma.auditEvent.findFirst({
      where: { action, targetType: target.type, targetId: target.id },
      select: { id: true },
    });
    return found !== null;
  }

  /** The HMAC under which events about this ID number are found. */
  idCardHmac(idCard: string): string {
    return idCardHmac(this.config.pii.hmacKey, normalizeIdCardNumber(idCard));
  }

  /** Newest first, keyset-paginated on (occurred_at, id). Unsealed events show seq, hash and prev_hash null. */
  async listEvents(
    filters: AuditEventFilters,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<AuditEventView>> {
    const conditions = filterConditions(filters);
    if (cursor !== undefined) {
      const [at, id] = decodeCursor<[string, string]>(
        cursor,
        (v) =>
          v.length === 2 &&
          typeof v[0] === 'string' &&
          !Number.isNaN(Date.parse(v[0])) &&
          typeof v[1] === 'string' &&
          UUID.test(v[1]),
      );
      conditions.push(Prisma.sql`(e.occurred_at, e.id) < (${new Date(at)}::timestamptz, ${id}::uuid)`);
    }
    const rows = await this.prisma.$queryRaw<SealedEventSqlRow[]>`
      SELECT ${EVENT_COLUMNS}, c.seq, c.prev_hash, c.hash
      FROM audit_events e LEFT JOIN audit_chain c ON c.event_id = e.id
      ${whereClause(conditions)}
      ORDER BY e.occurred_at DESC, e.id DESC
      LIMIT ${limit + 1}`;
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    return {
      items: page.map(eventView),
      next_cursor: more ? encodeCursor([last.occurred_at.toISOString(), last.id]) : null,
    };
  }

  /**
   * Streams events in chain order (sealed by seq, then those not sealed yet),
   * as NDJSON with the header, interleaved checkpoints and end line of
   * docs/audit.md, or as CSV. Reads in keyset batches on (txid, id): memory
   * stays flat however large the range, and no long transaction is held.
   */
  async *exportEvents(range: ExportRange, format: ExportFormat): AsyncGenerator<string> {
    const conditions = filterConditions(range);
    if (range.fromSeq !== undefined) conditions.push(Prisma.sql`c.seq >= ${range.fromSeq}::bigint`);
    if (range.toSeq !== undefined) conditions.push(Prisma.sql`c.seq <= ${range.toSeq}::bigint`);
    // Chain order is (txid, id) order, so a seq range is also a (txid, id) range: start the keyset there.
    let position = range.fromSeq !== undefined ? await this.positionBefore(range.fromSeq) : null;
    const stop = range.toSeq !== undefined ? await this.positionOf(range.toSeq) : null;
    if (stop) conditions.push(Prisma.sql`(e.txid, e.id) <= (${stop.txid}::bigint, ${stop.id}::uuid)`);

    let events = 0;
    let checkpointCount = 0;
    if (format === 'ndjson') {
      yield (
        JSON.stringify({
          type: 'header',
          format: EXPORT_FORMAT,
          version: EXPORT_VERSION,
          exported_at: new Date().toISOString(),
          filters: exportFilterSummary(range),
          complete: isComplete(range),
          canonical:
            'hash = sha256_hex(prev_hash + "\\n" + canonical_json(event)); see docs/audit.md. Genesis prev_hash: 64 zeros.',
          public_key: this.publicKey(),
        }) + '\n'
      );
    } else {
      yield auditCsvHeader();
    }
    for (;;) {
      const keyset = position ? [Prisma.sql`(e.txid, e.id) > (${position.txid}::bigint, ${position.id}::uuid)`] : [];
      // Each event's link by its unique event_id: a batch is a thousand index lookups whatever the
      // statistics say (after a bulk load, a chain the planner thought empty got a nested loop over
      // a sequential scan of it, a whole scan per event).
      const rows = await this.prisma.$queryRaw<SealedEventSqlRow[]>`
        SELECT ${EVENT_COLUMNS}, c.seq, c.prev_hash, c.hash
        FROM audit_events e
        LEFT JOIN LATERAL (
          SELECT l.seq, l.prev_hash, l.hash FROM audit_chain l WHERE l.event_id = e.id
        ) c ON true
        ${whereClause([...conditions, ...keyset])}
        ORDER BY e.txid, e.id
        LIMIT ${EXPORT_BATCH}`;
      if (rows.length === 0) break;
      const last = rows[rows.length - 1];
      position = { txid: last.txid, id: last.id };
      events += rows.length;
      if (format === 'csv') {
        yield auditCsvLines(rows.map(eventView));
      } else {
        const sealed = rows.filter((r) => r.seq !== null).map((r) => Number(r.seq));
        const signed = sealed.length
          ? new Map((await this.checkpoints.between(Math.min(...sealed), Math.max(...sealed))).map((c) => [c.seq, c]))
          : new Map<number, CheckpointView>();
        let chunk = '';
        for (const row of rows) {
          const view = eventView(row);
          chunk += JSON.stringify({ type: 'event', ...view }) + '\n';
          const checkpoint = view.seq !== null ? signed.get(view.seq) : undefined;
          if (checkpoint) {
            chunk += JSON.stringify({ type: 'checkpoint', ...checkpoint }) + '\n';
            checkpointCount++;
          }
        }
        yield chunk;
      }
      if (rows.length < EXPORT_BATCH) break;
    }
    if (format === 'ndjson') yield JSON.stringify({ type: 'end', events, checkpoints: checkpointCount }) + '\n';
  }

  private async positionOf(seq: number): Promise<{ txid: bigint; id: string } | null> {
    const [row] = await this.prisma.$queryRaw<{ txid: bigint; id: string }[]>`
      SELECT e.txid, e.id::text AS id FROM audit_chain c JOIN audit_events e ON e.id = c.event_id WHERE c.seq = ${seq}::bigint`;
    return row ?? null;
  }

  private async positionBefore(seq: number): Promise<{ txid: bigint; id: string } | null> {
    return seq > 1 ? this.positionOf(seq - 1) : null;
  }

  verifyChain(range: { fromSeq?: number; toSeq?: number } = {}): Promise<IntegrityReport> {
    return this.integrity.verifyChain(range);
  }

  /** Seals every event committed before the call (see AuditSealer.sealNow). */
  sealNow(): Promise<number> {
    return this.sealer.sealNow();
  }

  /** Seals what is committed, then signs the head. */
  async signCheckpoint(context: AuditContext): Promise<{ checkpoint: CheckpointView; created: boolean } | null> {
    await this.sealer.sealNow();
    return this.checkpoints.signHead(context);
  }

  listCheckpoints(cursor: string | undefined, limit: number): Promise<Page<CheckpointView>> {
    return this.checkpoints.list(cursor, limit);
  }

  publicKey(): PublicKeyInfo {
    return this.checkpoints.publicKey();
  }
}

/** No content filter: the export holds every event of its seq range, so a missing seq is a fault. */
function isComplete(range: ExportRange): boolean {
  const { fromSeq: _from, toSeq: _to, ...content } = range;
  return Object.values(content).every((v) => v === undefined);
}

/** The filters an export ran with, for its header (never an ID number: only whether one was searched). */
export function exportFilterSummary(range: ExportRange): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (range.from) out.from = range.from.toISOString();
  if (range.to) out.to = range.to.toISOString();
  if (range.actor !== undefined) out.actor = range.actor;
  if (range.action !== undefined) out.action = range.action;
  if (range.targetType !== undefined) out.target_type = range.targetType;
  if (range.targetId !== undefined) out.target_id = range.targetId;
  if (range.outcome !== undefined) out.outcome = range.outcome;
  if (range.fromSeq !== undefined) out.from_seq = range.fromSeq;
  if (range.toSeq !== undefined) out.to_seq = range.toSeq;
  return out;
}
