import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { chainedFields, EventSqlRow } from '../audit-rows';
import type { JsonValue } from '../canonical';
import type { WalkedEvent } from '../event-authenticity';
import { CopyTextRows } from './copy-text';

/*
 * The chain as the integrity walk reads it: each link of audit_chain with the event it
 * seals (null when the event is gone). Long ranges stream with COPY … TO STDOUT, which
 * costs the server and this process a fraction of row-by-row results; the same rows
 * are what the benchmark's floor reads (bench/audit.ts).
 */

export interface ChainLink {
  seq: number;
  prevHash: string;
  hash: string;
  /** occurredAt is an invalid Date when the stored time is not a finite one. */
  event: WalkedEvent | null;
}

/** COPY of links from..to with their events, in seq order. Both bounds must be safe integers. */
export function chainCopySql(from: number, to: number): string {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) throw new RangeError('chain range: not integers');
  // occurred_at as Unix milliseconds (the column has millisecond precision): no time zone or date style involved.
  return (
    'COPY (SELECT c.seq, c.prev_hash, c.hash, e.id, ' +
    'CASE WHEN isfinite(e.occurred_at) THEN (extract(epoch FROM e.occurred_at) * 1000)::bigint END, ' +
    'e.actor_type, e.actor_id, e.actor_role, e.action, e.target_type, e.target_id, e.outcome, e.request_id, ' +
    'e.ip, e.details, e.id_card_hmac, e.mac ' +
    'FROM audit_chain c LEFT JOIN audit_events e ON e.id = c.event_id ' +
    `WHERE c.seq >= ${from} AND c.seq <= ${to} ORDER BY c.seq) TO STDOUT`
  );
}

/** One row of chainCopySql's output. */
export function linkFromCopy(f: (string | null)[]): ChainLink {
  const id = f[3];
  return {
    seq: Number(f[0]),
    prevHash: f[1] as string,
    hash: f[2] as string,
    event:
      id === null
        ? null
        : {
            id,
            occurredAt: new Date(f[4] === null ? Number.NaN : Number(f[4])),
            actorType: f[5] as string,
            actorId: f[6],
            actorRole: f[7],
            action: f[8] as string,
            targetType: f[9],
            targetId: f[10],
            outcome: f[11] as string,
            requestId: f[12],
            ip: f[13],
            details: f[14] === null ? null : (JSON.parse(f[14]) as JsonValue),
            idCardHmac: f[15],
            mac: f[16],
          },
  };
}

export type LinkSqlRow = Partial<EventSqlRow> & { seq: bigint; prev_hash: string; link_hash: string };

/** An event read through Prisma, as the walk sees it. */
export function walkedFromSql(row: EventSqlRow): WalkedEvent {
  const at: unknown = row.occurred_at;
  return {
    ...chainedFields(row),
    occurredAt: at instanceof Date ? at : new Date(Number.NaN),
    mac: row.mac ?? null,
  };
}

/** A row of the same join read through Prisma (short ranges, inside the signer's transaction). */
export function linkFromSql(row: LinkSqlRow): ChainLink {
  return {
    seq: Number(row.seq),
    prevHash: row.prev_hash,
    hash: row.link_hash,
    event: row.id ? walkedFromSql(row as EventSqlRow) : null,
  };
}

/**
 * Streams links from..to over `client` in pieces of `segment` seqs, one COPY each (a
 * statement of bounded length: its snapshot does not hold back vacuum for the whole walk).
 * Yields the links of each chunk received. A caller that stops early ends the client:
 * pg then closes the socket under the running COPY, and the server stops sending.
 */
export async function* copyChainLinks(
  client: pg.Client,
  from: number,
  to: number,
  segment: number,
): AsyncGenerator<ChainLink[]> {
  for (let first = from; first <= to; first += segment) {
    const last = Math.min(to, first + segment - 1);
    const rows = new CopyTextRows();
    const stream = client.query(copyTo(chainCopySql(first, last)));
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const fields = rows.push(chunk);
      if (fields.length === 0) continue;
      const links = new Array<ChainLink>(fields.length);
      for (let i = 0; i < fields.length; i++) links[i] = linkFromCopy(fields[i]);
      yield links;
    }
    rows.end();
  }
}
