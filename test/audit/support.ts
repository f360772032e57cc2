import pg from 'pg';
import { AuditService } from '../../src/audit/audit.service';
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
 * Seeds `count` events with one INSERT … SELECT generate_series (one transaction),
 * shaped like real ones: a handful of actors and actions, a time spread, jsonb details.
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
  } finally {
    await client.end();
  }
}

/** A superuser session with every trigger (append-only guards and foreign keys) off: the attacker model. */
export async function asAttacker<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`SET session_replication_role = replica`);
    return await fn(client);
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

/** What a careful attacker does: edit seq `from`, then recompute every later hash so linkage holds. */
export async function rewriteChainFrom(t: TestApp, from: number): Promise<void> {
  await asAttacker(t.db.adminUrl, async (c) => {
    const { event_id } = (await c.query(`SELECT event_id FROM audit_chain WHERE seq = $1`, [from])).rows[0];
    await c.query(`UPDATE audit_events SET outcome = 'denied' WHERE id = $1`, [event_id]);
    let prev = (await c.query(`SELECT hash FROM audit_chain WHERE seq = $1`, [from - 1])).rows[0].hash as string;
    const rows = (
      await c.query(
        `SELECT c.seq, e.id::text, e.occurred_at, e.actor_type, e.actor_id, e.actor_role, e.action, e.target_type,
                e.target_id, e.outcome, e.request_id, e.ip, e.details, e.id_card_hmac, e.txid
         FROM audit_chain c JOIN audit_events e ON e.id = c.event_id WHERE c.seq >= $1 ORDER BY c.seq`,
        [from],
      )
    ).rows as (EventSqlRow & { seq: string })[];
    for (const row of rows) {
      const hash = eventHash(prev, chainedFields(row));
      await c.query(`UPDATE audit_chain SET prev_hash = $1, hash = $2 WHERE seq = $3`, [prev, hash, row.seq]);
      prev = hash;
    }
  });
}
