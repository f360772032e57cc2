import { CHECKPOINT_LOCK } from '../../src/audit/audit-checkpoints.service';
import { SEALER_LOCK } from '../../src/audit/audit-sealer.service';
import pg from 'pg';
import { AuditService } from '../../src/audit/audit.service';
import { AuditSealer } from '../../src/audit/audit-sealer.service';
import { chainedFields, EventSqlRow } from '../../src/audit/audit-rows';
import { eventHash } from '../../src/audit/canonical';
import { AuditContext } from '../../src/audit/audit-vocabulary';
import { TestApp } from '../support/test-app';

export const TEST_CONTEXT: AuditContext = {
  actor: { type: 'api_key', id: 'tester', role: 'compliance' },
  requestId: 'req-test',
  ip: '127.0.0.1',
};

export const auditOf = (t: TestApp) => t.app.get(AuditService);

/** Records `count` events in one transaction of their own, through the real service. */
export async function recordEvents(t: TestApp, count: number, tag = 'e'): Promise<string[]> {
  const audit = auditOf(t);
  return t.prisma.$transaction(
    async (tx) => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        ids.push(
          await audit.record(tx, TEST_CONTEXT, {
            action: 'verification.completed',
            target: { type: 'verification', id: `${tag}-${i}` },
            details: { result: '0', n: i },
          }),
        );
      }
      return ids;
    },
    { maxWait: 30_000, timeout: 30_000 },
  );
}

/**
 * Seeds `count` events set-based, with one INSERT … SELECT generate_series (one transaction),
 * shaped like real ones: a handful of actors and actions, a time spread, jsonb details. Then
 * ANALYZE, as after any bulk load: with the statistics of an empty table the planner reads the
 * sealer's keyset batches badly, and sealing 100,000 events takes twice as long.
 * Nothing is chained here: `sealAll` has the real sealer do that.
 */
export async function seedEvents(url: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO audit_events (id, occurred_at, actor_type, actor_id, actor_role, action, target_type, target_id,
                                 outcome, request_id, ip, details)
       SELECT gen_random_uuid(),
              now() - make_interval(secs => ($1::int - n) * 0.5),
              'api_key', 'key-' || (n % 50), 'client',
              (ARRAY['verification.created','verification.completed','verification.viewed','auth.failed','api_key.created'])[1 + n % 5],
              'verification', 'v-' || n,
              (ARRAY['success','success','success','failure','denied'])[1 + n % 5],
              'req-' || n, '10.0.' || (n % 250) || '.1',
              jsonb_build_object('n', n, 'result', (n % 8 - 7)::text, 'masked', '110101********' || lpad((n % 10000)::text, 4, '0'))
       FROM generate_series(1, $1::int) AS n`,
      [count],
    );
    await client.query(`ANALYZE audit_events`);
  } finally {
    await client.end();
  }
}

/**
 * Chains everything committed with the real sealer (its own code, hashes and advisory lock), in
 * batches of 10,000 rather than its periodic 1,000 (fewer round trips for a big fixture), then
 * `sealNow` as every caller does. Returns how many events this call chained.
 */
export async function sealAll(t: TestApp): Promise<number> {
  const bulk = await t.app.get(AuditSealer).sealAvailable(true, 10_000);
  return bulk + (await auditOf(t).sealNow());
}

/*
 * The advisory locks the sealer and the checkpoint signer take. An attacker session holds both
 * for the whole forgery: no chain entry can be appended and no checkpoint signed while the chain
 * is half rewritten, in this process, another instance or the CLI.
 */

/**
 * The attacker model: a superuser session with every trigger (append-only guards and foreign keys)
 * off, doing its work in one transaction that holds the sealer's and the signer's locks, so the
 * tampering is atomic with respect to them.
 */
export async function asAttacker<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL session_replication_role = replica`);
      await client.query(`SELECT pg_advisory_xact_lock($1::bigint), pg_advisory_xact_lock($2::bigint)`, [
        SEALER_LOCK,
        CHECKPOINT_LOCK,
      ]);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    await client.end();
  }
}

export async function chainRow(
  url: string,
  seq: number,
): Promise<{ event_id: string; prev_hash: string; hash: string }> {
  return asAttacker(url, async (c) => (await c.query(`SELECT * FROM audit_chain WHERE seq = $1`, [seq])).rows[0]);
}

/** Recomputes prev_hash and hash of every chain entry from `from` to the end, in one statement. */
async function rehashFrom(c: pg.Client, from: number): Promise<Map<number, string>> {
  let prev = (await c.query(`SELECT hash FROM audit_chain WHERE seq = $1`, [from - 1])).rows[0].hash as string;
  const rows = (
    await c.query(
      `SELECT c.seq, e.id::text, e.occurred_at, e.actor_type, e.actor_id, e.actor_role, e.action, e.target_type,
              e.target_id, e.outcome, e.request_id, e.ip, e.details, e.id_card_hmac, e.txid
       FROM audit_chain c JOIN audit_events e ON e.id = c.event_id WHERE c.seq >= $1 ORDER BY c.seq`,
      [from],
    )
  ).rows as (EventSqlRow & { seq: string })[];
  const seqs: string[] = [];
  const prevs: string[] = [];
  const hashes: string[] = [];
  for (const row of rows) {
    const hash = eventHash(prev, chainedFields(row));
    seqs.push(row.seq);
    prevs.push(prev);
    hashes.push(hash);
    prev = hash;
  }
  await c.query(
    `UPDATE audit_chain c SET prev_hash = u.prev_hash, hash = u.hash
     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(seq, prev_hash, hash) WHERE c.seq = u.seq`,
    [seqs, prevs, hashes],
  );
  return new Map(seqs.map((s, i) => [Number(s), hashes[i]]));
}

export interface ChainRewrite {
  /** The edited seq; every entry from it to the end of the chain was re-hashed. */
  from: number;
  /** The first signed checkpoint at or after `from`, as it was signed: where a verifier must catch the rewrite. */
  caughtBy: { seq: number; hash: string } | null;
  /** Puts the event back and re-hashes again (entries sealed meanwhile included): the signed chain verifies again. */
  restore(): Promise<void>;
}

/**
 * What a careful attacker does: edit the event at seq `from` (its outcome is flipped, so the edit
 * always changes it), then recompute every later hash so that linkage holds. Atomic with respect
 * to the sealer and the signer (see asAttacker), and refuses to report a forgery that changed nothing.
 */
export async function rewriteChainFrom(t: TestApp, from: number): Promise<ChainRewrite> {
  const url = t.db.adminUrl;
  const { eventId, original, caughtBy } = await asAttacker(url, async (c) => {
    const link = (await c.query(`SELECT event_id::text, hash FROM audit_chain WHERE seq = $1`, [from])).rows[0] as
      { event_id: string; hash: string } | undefined;
    if (!link) throw new Error(`rewriteChainFrom: no chain entry at seq ${from}`);
    // Read under the signer's lock: no checkpoint can be signed between this and the commit.
    const signed = (
      await c.query(`SELECT seq, hash FROM audit_checkpoints WHERE seq >= $1 ORDER BY seq LIMIT 1`, [from])
    ).rows[0] as { seq: string; hash: string } | undefined;
    const { outcome } = (await c.query(`SELECT outcome FROM audit_events WHERE id = $1`, [link.event_id])).rows[0];
    await c.query(`UPDATE audit_events SET outcome = $2 WHERE id = $1`, [
      link.event_id,
      outcome === 'denied' ? 'success' : 'denied',
    ]);
    const rewritten = await rehashFrom(c, from);
    if (rewritten.get(from) === link.hash) throw new Error(`rewriteChainFrom: the edit at seq ${from} changed nothing`);
    const caught = signed ? { seq: Number(signed.seq), hash: signed.hash } : null;
    if (caught && rewritten.get(caught.seq) === caught.hash) {
      throw new Error(`rewriteChainFrom: the chain still matches the checkpoint at seq ${caught.seq}`);
    }
    return { eventId: link.event_id, original: outcome as string, caughtBy: caught };
  });
  return {
    from,
    caughtBy,
    restore: () =>
      asAttacker(url, async (c) => {
        await c.query(`UPDATE audit_events SET outcome = $2 WHERE id = $1`, [eventId, original]);
        const restored = await rehashFrom(c, from);
        if (caughtBy && restored.get(caughtBy.seq) !== caughtBy.hash) {
          throw new Error(`rewriteChainFrom: restoring did not bring back the signed hash at seq ${caughtBy.seq}`);
        }
      }),
  };
}
