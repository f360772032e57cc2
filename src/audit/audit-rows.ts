import { Prisma } from '../generated/prisma/client';
import type { AuditEventRow } from './audit-event-row';
import type { ChainedEventFields, JsonValue } from './canonical';
import { eventMac, UuidV7Source } from './event-authenticity';
import { GENESIS_PREV } from './checkpoint';
import type { AuditEventView, CheckpointView } from './export-format';

/*
 * Raw SQL over the audit tables (keyset pages, streaming, sealing): one column
 * list and one row mapper, so every reader sees an event the same way.
 */

export const EVENT_COLUMNS = Prisma.sql`e.id::text AS id, e.occurred_at, e.actor_type, e.actor_id, e.actor_role, e.action,
  e.target_type, e.target_id, e.outcome, e.request_id, e.ip, e.details, e.id_card_hmac, e.txid, e.mac`;

export interface EventSqlRow {
  id: string;
  occurred_at: Date;
  actor_type: string;
  actor_id: string | null;
  actor_role: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  request_id: string | null;
  ip: string | null;
  details: JsonValue;
  id_card_hmac: string | null;
  txid: bigint;
  /** Not chained (see chainedFields): checked on its own by the integrity walk (event-authenticity.ts). */
  mac: string | null;
}

export interface SealedEventSqlRow extends EventSqlRow {
  seq: bigint | null;
  prev_hash: string | null;
  hash: string | null;
}

export function chainedFields(r: EventSqlRow): ChainedEventFields {
  return {
    id: r.id,
    occurredAt: r.occurred_at,
    actorType: r.actor_type,
    actorId: r.actor_id,
    actorRole: r.actor_role,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    outcome: r.outcome,
    requestId: r.request_id,
    ip: r.ip,
    details: r.details,
    idCardHmac: r.id_card_hmac,
  };
}

export function eventView(r: SealedEventSqlRow): AuditEventView {
  return {
    id: r.id,
    seq: r.seq === null ? null : Number(r.seq),
    occurred_at: r.occurred_at.toISOString(),
    actor: { type: r.actor_type, id: r.actor_id, role: r.actor_role },
    action: r.action,
    target: { type: r.target_type, id: r.target_id },
    outcome: r.outcome,
    request_id: r.request_id,
    ip: r.ip,
    details: r.details,
    id_card_hmac: r.id_card_hmac,
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
}

/** Filters shared by the list, the search and the export. `from` is inclusive, `to` exclusive. */
export interface AuditEventFilters {
  from?: Date;
  to?: Date;
  actor?: string;
  action?: string;
  targetType?: string;
  targetId?: string;
  outcome?: string;
  idCardHmac?: string;
}

/** AND-ed conditions on `e` (audit_events); every one is backed by an index led by its column. */
export function filterConditions(f: AuditEventFilters): Prisma.Sql[] {
  const where: Prisma.Sql[] = [];
  if (f.from) where.push(Prisma.sql`e.occurred_at >= ${f.from}`);
  if (f.to) where.push(Prisma.sql`e.occurred_at < ${f.to}`);
  if (f.actor !== undefined) where.push(Prisma.sql`e.actor_id = ${f.actor}`);
  if (f.action !== undefined) where.push(Prisma.sql`e.action = ${f.action}`);
  if (f.targetType !== undefined) where.push(Prisma.sql`e.target_type = ${f.targetType}`);
  if (f.targetId !== undefined) where.push(Prisma.sql`e.target_id = ${f.targetId}`);
  if (f.outcome !== undefined) where.push(Prisma.sql`e.outcome = ${f.outcome}`);
  if (f.idCardHmac !== undefined) where.push(Prisma.sql`e.id_card_hmac = ${f.idCardHmac}`);
  return where;
}

export function whereClause(conditions: Prisma.Sql[]): Prisma.Sql {
  return conditions.length ? Prisma.sql`WHERE ${Prisma.join(conditions, ' AND ')}` : Prisma.empty;
}

const eventIds = new UuidV7Source();

/**
 * Prisma create data for a built row: an id made here (a UUIDv7, so the MAC covers it) and the
 * MAC under AUDIT_MAC_KEY. occurred_at is the database's (the audit_events_stamp_time trigger
 * stamps clock_timestamp(), whatever a caller sends), and txid too: neither can be covered.
 */
export function eventCreateData(
  row: AuditEventRow,
  macKey: Buffer,
  id: string = eventIds.next(),
): Omit<Prisma.AuditEventUncheckedCreateInput, 'details'> & { details: Prisma.InputJsonValue } {
  return {
    ...row,
    id,
    details: row.details as Prisma.InputJsonValue,
    mac: eventMac(macKey, { ...row, id }),
  };
}

export type CheckpointRow = Prisma.AuditCheckpointGetPayload<object>;

/** A checkpoint row as the API, the export and the witness comparison show it (format-2 fields). */
export function checkpointView(row: CheckpointRow): CheckpointView {
  return {
    seq: Number(row.seq),
    hash: row.hash,
    signed_at: row.signedAt.toISOString(),
    key_id: row.keyId,
    signature: row.signature,
    version: row.version,
    prev: row.version >= 2 ? (row.prevDigest ?? GENESIS_PREV) : null,
  };
}
