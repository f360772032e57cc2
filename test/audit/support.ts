import { randomBytes } from 'node:crypto';
import { CHECKPOINT_LOCK } from '../../src/audit/audit-checkpoints.service';
import { SEALER_LOCK } from '../../src/audit/audit-sealer.service';
import pg from 'pg';
import { AuditService } from '../../src/audit/audit.service';
import { AuditSealer } from '../../src/audit/audit-sealer.service';
import { chainedFields, EventSqlRow } from '../../src/audit/audit-rows';
import { eventHash } from '../../src/audit/canonical';
import { AuditContext } from '../../src/audit/audit-vocabulary';
import { eventMac, MacFields, UuidV7Source } from '../../src/audit/event-authenticity';
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

/*
 * Issue 13 point 5: events carry a MAC under AUDIT_MAC_KEY, which no database user has. What an
 * attacker can and cannot do about it, and fixtures shaped like what idgate itself writes.
 */

/**
 * Attack (b)'s intruder: a login role of its own, with a password, that may only INSERT into and
 * SELECT from audit_events (the rights idgate's runtime role has on it): no superuser, no trigger
 * bypass. `fn` gets a connection as that role; the role is dropped afterwards.
 */
export async function asInsertOnlyRole<T>(t: TestApp, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const role = `idgate_intruder_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(16).toString('hex');
  const admin = new pg.Client({ connectionString: t.db.adminUrl });
  await admin.connect();
  try {
    await admin.query(
      `CREATE ROLE ${role} LOGIN PASSWORD '${password}' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS`,
    );
    await admin.query(`GRANT CONNECT ON DATABASE "${t.db.name}" TO ${role}`);
    await admin.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await admin.query(`GRANT INSERT, SELECT ON audit_events TO ${role}`);
    const url = new URL(t.db.adminUrl);
    url.username = role;
    url.password = password;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      const [{ rolsuper }] = (await client.query(`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`)).rows;
      if (rolsuper) throw new Error('asInsertOnlyRole: the intruder must not be a superuser');
      return await fn(client);
    } finally {
      await client.end();
    }
  } finally {
    await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
    await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await admin.end();
  }
}

/**
 * Like seedEvents (same actors, actions, outcomes and details), but as idgate writes them: UUIDv7
 * ids made before the insert and a MAC under the app's AUDIT_MAC_KEY, so the integrity check
 * accepts them. (seedEvents' rows carry no MAC: since issue 13 they are exactly what the check
 * reports as not written by idgate.) In batches of 10,000 (one INSERT … unnest each), one transaction.
 */
export async function seedEventsWithMacs(t: TestApp, count: number): Promise<void> {
  const ids = new UuidV7Source();
  const actions = [
    'verification.created',
    'verification.completed',
    'verification.viewed',
    'auth.failed',
    'api_key.created',
  ];
  const outcomes = ['success', 'success', 'success', 'failure', 'denied'];
  // As the owner, like seedEvents' callers: the runtime role may not ANALYZE an audit table.
  const client = new pg.Client({ connectionString: t.db.adminUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    for (let start = 1; start <= count; start += 10_000) {
      const cols: string[][] = Array.from({ length: 9 }, () => []);
      for (let n = start; n < Math.min(start + 10_000, count + 1); n++) {
        const row: MacFields = {
          id: ids.next(),
          actorType: 'api_key',
          actorId: `key-${n % 50}`,
          actorRole: 'client',
          action: actions[n % 5],
          targetType: 'verification',
          targetId: `v-${n}`,
          outcome: outcomes[n % 5],
          requestId: `req-${n}`,
          ip: `10.0.${n % 250}.1`,
          details: { n, result: String((n % 8) - 7), masked: `110101********${String(n % 10000).padStart(4, '0')}` },
          idCardHmac: null,
        };
        const mac = eventMac(t.config.audit.macKey, row);
        [row.id, `key-${n % 50}`, row.action, `v-${n}`, row.outcome, `req-${n}`, `10.0.${n % 250}.1`]
          .concat(JSON.stringify(row.details), mac)
          .forEach((v, i) => cols[i].push(v));
      }
      await client.query(
        `INSERT INTO audit_events (id, actor_type, actor_id, actor_role, action, target_type, target_id, outcome,
                                   request_id, ip, details, mac)
         SELECT u.id, 'api_key', u.actor_id, 'client', u.action, 'verification', u.target_id, u.outcome,
                u.request_id, u.ip, u.details::jsonb, u.mac
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
           AS u(id, actor_id, action, target_id, outcome, request_id, ip, details, mac)`,
        cols,
      );
    }
    await client.query('COMMIT');
    await client.query(`ANALYZE audit_events`);
  } finally {
    await client.end();
  }
}

/**
 * Like rewriteChainFrom, but the edit is one the MAC cannot see: the event's occurred_at (set by
 * the database, so outside the MAC) moves by `shiftMs`, within the order tolerance, and every
 * later hash is recomputed. MAC and time order still pass; only a signed checkpoint catches it.
 * (rewriteChainFrom flips an outcome, which the MAC covers: it is now caught at `from` itself.)
 */
export async function rewriteChainTimeFrom(t: TestApp, from: number, shiftMs = -1000): Promise<ChainRewrite> {
  const url = t.db.adminUrl;
  const shift = async (c: pg.Client, eventId: string, ms: number) =>
    c.query(
      `UPDATE audit_events SET occurred_at = occurred_at + make_interval(secs => $2::float8 / 1000) WHERE id = $1`,
      [eventId, ms],
    );
  const { eventId, caughtBy } = await asAttacker(url, async (c) => {
    const link = (await c.query(`SELECT event_id::text, hash FROM audit_chain WHERE seq = $1`, [from])).rows[0] as
      { event_id: string; hash: string } | undefined;
    if (!link) throw new Error(`rewriteChainTimeFrom: no chain entry at seq ${from}`);
    const signed = (
      await c.query(`SELECT seq, hash FROM audit_checkpoints WHERE seq >= $1 ORDER BY seq LIMIT 1`, [from])
    ).rows[0] as { seq: string; hash: string } | undefined;
    await shift(c, link.event_id, shiftMs);
    const rewritten = await rehashFrom(c, from);
    if (rewritten.get(from) === link.hash)
      throw new Error(`rewriteChainTimeFrom: the edit at seq ${from} changed nothing`);
    const caught = signed ? { seq: Number(signed.seq), hash: signed.hash } : null;
    if (caught && rewritten.get(caught.seq) === caught.hash) {
      throw new Error(`rewriteChainTimeFrom: the chain still matches the checkpoint at seq ${caught.seq}`);
    }
    return { eventId: link.event_id, caughtBy: caught };
  });
  return {
    from,
    caughtBy,
    restore: () =>
      asAttacker(url, async (c) => {
        await shift(c, eventId, -shiftMs);
        const restored = await rehashFrom(c, from);
        if (caughtBy && restored.get(caughtBy.seq) !== caughtBy.hash) {
          throw new Error(`rewriteChainTimeFrom: restoring did not bring back the signed hash at seq ${caughtBy.seq}`);
        }
      }),
  };
}
