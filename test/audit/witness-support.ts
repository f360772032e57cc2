import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import pg from 'pg';
import { AuditService } from '../../src/audit/audit.service';
import { chainedFields, EventSqlRow } from '../../src/audit/audit-rows';
import { eventHash } from '../../src/audit/canonical';
import { WitnessDir } from '../../src/audit/witness/witness-dir';
import { WitnessRecord } from '../../src/audit/witness/witness-record';
import { ROOT } from '../support/processes';
import { TestApp } from '../support/test-app';
import { asAttacker } from './support';

/*
 * Issue 13 (witness): what the witness folder holds, attacks on the database that leave the
 * witness alone (the attacker has database rights, not the witness's), and the three verifiers.
 */

/** Every record in a witness folder, in the order written. */
export async function witnessRecords(dir: string): Promise<WitnessRecord[]> {
  const records: WitnessRecord[] = [];
  for await (const item of new WitnessDir(dir).items()) if ('record' in item) records.push(item.record);
  return records;
}

/** The seq at which a verifier must catch a chain changed from `seq` on: the first witness record at or above it. */
export function firstRecordFrom(records: readonly WitnessRecord[], seq: number): WitnessRecord | undefined {
  return records.filter((r) => r.seq >= seq).sort((a, b) => a.seq - b.seq)[0];
}

export function runVerifier(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'docs', 'verify-audit-export.mjs'), ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop() as string);

/** An NDJSON export as GET /v1/audit/events/export streams it (the same generator), to a file. */
export async function exportTo(t: TestApp, file: string, range: { fromSeq?: number; toSeq?: number } = {}) {
  const out = createWriteStream(file);
  for await (const chunk of t.app.get(AuditService).exportEvents(range, 'ndjson')) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

const EVENT_COLUMNS = `e.id::text AS id, e.occurred_at, e.actor_type, e.actor_id, e.actor_role, e.action, e.target_type,
  e.target_id, e.outcome, e.request_id, e.ip, e.details, e.id_card_hmac, e.txid`;

export interface Forgery {
  victim: number;
  /** Puts everything back as it was (events sealed meanwhile are sealed again, on the true chain). */
  restore(): Promise<void>;
}

/**
 * Attack (a) of issue 13, as a database superuser does it: deletes the event at `victim`, re-inserts
 * every later chain link one seq down with recomputed hashes (so the chain links and hashes are
 * consistent again), and deletes the signed checkpoints from `victim` on. Atomic with respect to
 * the sealer and the signer (asAttacker holds their locks): what they do before and after is theirs.
 */
export async function deleteAndRelink(t: TestApp, victim: number): Promise<Forgery> {
  const url = t.db.adminUrl;
  const saved = await asAttacker(url, async (c) => {
    const links = (
      await c.query(`SELECT row_to_json(l) AS j FROM audit_chain l WHERE seq >= $1 ORDER BY seq`, [victim])
    ).rows as { j: { seq: number; event_id: string } }[];
    if (links.length < 2) throw new Error(`deleteAndRelink: seq ${victim} is the head or beyond`);
    const eventId = links[0].j.event_id;
    const event = (await c.query(`SELECT row_to_json(e) AS j FROM audit_events e WHERE id = $1`, [eventId])).rows[0].j;
    const checkpoints = (await c.query(`SELECT row_to_json(k) AS j FROM audit_checkpoints k WHERE seq >= $1`, [victim]))
      .rows as { j: unknown }[];
    const rows = (
      await c.query(
        `SELECT c.seq, ${EVENT_COLUMNS} FROM audit_chain c JOIN audit_events e ON e.id = c.event_id
         WHERE c.seq > $1 ORDER BY c.seq`,
        [victim],
      )
    ).rows as (EventSqlRow & { seq: string })[];
    let prev = (await c.query(`SELECT hash FROM audit_chain WHERE seq = $1`, [victim - 1])).rows[0]?.hash as string;
    prev ??= '0'.repeat(64);
    await c.query(`DELETE FROM audit_chain WHERE seq >= $1`, [victim]);
    await c.query(`DELETE FROM audit_events WHERE id = $1`, [eventId]);
    await c.query(`DELETE FROM audit_checkpoints WHERE seq >= $1`, [victim]);
    const seqs: number[] = [];
    const ids: string[] = [];
    const prevs: string[] = [];
    const hashes: string[] = [];
    for (const row of rows) {
      const hash = eventHash(prev, chainedFields(row));
      seqs.push(Number(row.seq) - 1);
      ids.push(row.id);
      prevs.push(prev);
      hashes.push(hash);
      prev = hash;
    }
    await c.query(
      `INSERT INTO audit_chain (seq, event_id, prev_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[])`,
      [seqs, ids, prevs, hashes],
    );
    return { links: links.map((l) => l.j), event, checkpoints: checkpoints.map((k) => k.j) };
  });
  return {
    victim,
    restore: () =>
      asAttacker(url, async (c) => {
        await c.query(`DELETE FROM audit_chain WHERE seq >= $1`, [victim]);
        await c.query(`INSERT INTO audit_events SELECT * FROM json_populate_record(NULL::audit_events, $1::json)`, [
          JSON.stringify(saved.event),
        ]);
        await c.query(`INSERT INTO audit_chain SELECT * FROM json_populate_recordset(NULL::audit_chain, $1::json)`, [
          JSON.stringify(saved.links),
        ]);
        await c.query(`DELETE FROM audit_checkpoints WHERE seq >= $1`, [victim]);
        await c.query(
          `INSERT INTO audit_checkpoints SELECT * FROM json_populate_recordset(NULL::audit_checkpoints, $1::json)`,
          [JSON.stringify(saved.checkpoints)],
        );
      }),
  };
}

/** Attack (c): cuts every chain entry and event above `keep` (the newest ones). */
export async function cutTail(t: TestApp, keep: number): Promise<number> {
  return asAttacker(t.db.adminUrl, async (c: pg.Client) => {
    const ids = (await c.query(`SELECT event_id FROM audit_chain WHERE seq > $1`, [keep])).rows.map((r) => r.event_id);
    await c.query(`DELETE FROM audit_chain WHERE seq > $1`, [keep]);
    await c.query(`DELETE FROM audit_events WHERE id = ANY($1::uuid[])`, [ids]);
    return ids.length;
  });
}
