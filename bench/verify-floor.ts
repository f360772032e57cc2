/*
 * The SQL floor of bench:verify: per verification, the statements idgate's
 * POST /v1/verifications sends to PostgreSQL, copied verbatim from what Prisma 7 (pg adapter)
 * issues (captured with log_statement=all), sent with `pg` and nothing else in between:
 *
 *   key lookup   SELECT api_keys … WHERE key_hash = $1 LIMIT $2 OFFSET $3          (AuthGuard)
 *   tx1          BEGIN
 *                SELECT client_policies … WHERE client_id = $1 LIMIT $2 OFFSET $3
 *                INSERT INTO verifications (… pending …) RETURNING <every column>
 *                INSERT INTO audit_events (… verification.created …) RETURNING id
 *                COMMIT
 *   tx2          BEGIN
 *                SELECT verifications … WHERE id = $1 LIMIT $2 OFFSET $3
 *                UPDATE verifications SET status = completed, … RETURNING <every column>
 *                INSERT INTO audit_events (… verification.completed …) RETURNING id
 *                COMMIT
 *
 * (The bench's client has no quota, so idgate takes no per-client admission lock; with
 * quotas it adds `SELECT pg_advisory_xact_lock(…)` to tx1. No Idempotency-Key is sent by the bench, so the idempotency statements are absent from both
 * sides.) Values are copied from rows the app wrote in the same run (same encrypted-text sizes,
 * same JSON details), with fresh UUIDv7 ids, request ids and trace ids.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

const V = '"public"."verifications"';
const VERIFICATION_COLUMNS = [
  'id',
  'client_id',
  'api_key_id',
  'channel',
  'mode',
  'reference',
  'status"::text',
  'result',
  'description',
  'charge_status"::text',
  'unit_price',
  'amount',
  'currency',
  'local_check',
  'reused_from_id',
  'name_enc',
  'id_card_enc',
  'ocr_enc',
  'id_card_hmac',
  'name_hmac',
  'upstream_trace_id',
  'upstream_attempts',
  'upstream_error',
  'pii_purged_at',
  'created_at',
  'completed_at',
]
  .map((c) => (c.endsWith('::text') ? `${V}."${c}` : `${V}."${c}"`))
  .join(', ');

export const FLOOR_SQL = {
  keyLookup:
    'SELECT "public"."api_keys"."id", "public"."api_keys"."prefix", "public"."api_keys"."key_hash", "public"."api_keys"."role"::text, "public"."api_keys"."name", "public"."api_keys"."client_id", "public"."api_keys"."created_at", "public"."api_keys"."revoked_at", "public"."api_keys"."last_used_at" FROM "public"."api_keys" WHERE ("public"."api_keys"."key_hash" = $1 AND 1=1) LIMIT $2 OFFSET $3',
  policy:
    'SELECT "public"."client_policies"."client_id", "public"."client_policies"."daily_limit", "public"."client_policies"."monthly_spend_cap", "public"."client_policies"."reuse_window_seconds", "public"."client_policies"."updated_at" FROM "public"."client_policies" WHERE ("public"."client_policies"."client_id" = $1 AND 1=1) LIMIT $2 OFFSET $3',
  insertPending:
    'INSERT INTO "public"."verifications" ("id","client_id","api_key_id","channel","mode","reference","status","charge_status","unit_price","amount","currency","local_check","name_enc","id_card_enc","id_card_hmac","name_hmac","upstream_attempts","created_at") VALUES ($1,$2,$3,$4,$5,$6,CAST($7::text AS "public"."VerificationStatus"),CAST($8::text AS "public"."ChargeStatus"),$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) RETURNING ' +
    VERIFICATION_COLUMNS,
  insertEvent:
    'INSERT INTO "public"."audit_events" ("id","occurred_at","actor_type","actor_id","actor_role","action","target_type","target_id","outcome","request_id","ip","details","id_card_hmac") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING "public"."audit_events"."id"',
  readVerification: `SELECT ${VERIFICATION_COLUMNS} FROM "public"."verifications" WHERE ("public"."verifications"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3`,
  settle:
    'UPDATE "public"."verifications" SET "status" = CAST($1::text AS "public"."VerificationStatus"), "result" = $2, "description" = $3, "charge_status" = CAST($4::text AS "public"."ChargeStatus"), "amount" = $5, "upstream_trace_id" = $6, "upstream_attempts" = $7, "upstream_error" = $8, "ocr_enc" = $9, "completed_at" = $10 WHERE ("public"."verifications"."id" = $11 AND 1=1) RETURNING ' +
    VERIFICATION_COLUMNS,
};

/** Statements per verification, BEGIN and COMMIT included. */
export const FLOOR_STATEMENTS = 11;

/*
 * The minimal floor: the fewest round trips that keep every guarantee — the pending row and
 * its audit event written together before the call, the settlement and its event together
 * after it — as two autocommit statements, each a data-modifying CTE. The API key lookup is
 * cached as idgate caches it (a second per key), so it costs no round trip per verification.
 */
const EVENT_INSERT = `INSERT INTO audit_events (id, actor_type, actor_id, actor_role, action, target_type, target_id, outcome, request_id, ip, details, id_card_hmac)`;
export const MINIMAL_SQL = {
  record: `WITH v AS (
      INSERT INTO verifications (id, client_id, api_key_id, channel, mode, reference, status, charge_status, unit_price, currency, name_enc, id_card_enc, id_card_hmac, name_hmac)
      VALUES ($1, $2, $3, $4, $5, $6, 'pending', 'unknown', $7, $8, $9, $10, $11, $12) RETURNING id)
    ${EVENT_INSERT}
    SELECT $13::uuid, $14, $15, $16, $17, $18, v.id::text, $19, $20, $21, $22::jsonb, $23 FROM v`,
  settle: `WITH v AS (
      UPDATE verifications SET status = $1::"VerificationStatus", result = $2, description = $3,
        charge_status = $4::"ChargeStatus", amount = $5, upstream_trace_id = $6, upstream_attempts = $7,
        upstream_error = $8, ocr_enc = $9, completed_at = now()
      WHERE id = $10 AND status = 'pending' RETURNING id)
    ${EVENT_INSERT}
    SELECT $11::uuid, $12, $13, $14, $15, $16, v.id::text, $17, $18, $19, $20::jsonb, $21 FROM v`,
};
export const MINIMAL_STATEMENTS = 2;

interface EventTemplate {
  actor_type: string;
  actor_id: string | null;
  actor_role: string | null;
  action: string;
  target_type: string | null;
  outcome: string;
  ip: string | null;
  details: Record<string, unknown>;
  id_card_hmac: string | null;
}

interface Template {
  client_id: string;
  api_key_id: string;
  channel: string;
  mode: string;
  reference: string | null;
  unit_price: number;
  currency: string;
  name_enc: string | null;
  id_card_enc: string | null;
  id_card_hmac: string | null;
  name_hmac: string | null;
  status: string;
  result: string | null;
  description: string | null;
  charge_status: string;
  amount: number | null;
  upstream_attempts: number;
  upstream_error: string | null;
  ocr_enc: string | null;
  created: EventTemplate;
  settled: EventTemplate;
}

/** The newest `limit` settled verifications the app wrote, each with its two audit events. */
export async function sampleTemplates(db: pg.Client, limit = 200): Promise<Template[]> {
  const { rows } = await db.query<Template>(
    `SELECT v.client_id, v.api_key_id, v.channel, v.mode, v.reference, v.unit_price, v.currency,
            v.name_enc, v.id_card_enc, v.id_card_hmac, v.name_hmac, v.status::text AS status, v.result,
            v.description, v.charge_status::text AS charge_status, v.amount, v.upstream_attempts,
            v.upstream_error, v.ocr_enc,
            to_jsonb(c) - 'id' - 'occurred_at' - 'txid' - 'target_id' - 'request_id' AS created,
            to_jsonb(s) - 'id' - 'occurred_at' - 'txid' - 'target_id' - 'request_id' AS settled
     FROM verifications v
     JOIN audit_events c ON c.target_id = v.id::text AND c.action = 'verification.created'
     JOIN audit_events s ON s.target_id = v.id::text AND s.action <> 'verification.created'
     WHERE v.status <> 'pending'
     ORDER BY v.id DESC LIMIT $1`,
    [limit],
  );
  if (rows.length === 0) throw new Error('no settled verification to copy values from');
  return rows;
}

/** An idgate client and its API key, as the floor's statements name them. */
export interface FloorIdentity {
  clientId: string;
  apiKeyId: string;
  keyHash: string;
}

/** The template as if `who` had sent it (ids in the row, the actor and the details). */
function as(t: Template, who: FloorIdentity): Template {
  return {
    ...t,
    client_id: who.clientId,
    api_key_id: who.apiKeyId,
    created: {
      ...t.created,
      actor_id: who.apiKeyId,
      details: 'client_id' in t.created.details ? { ...t.created.details, client_id: who.clientId } : t.created.details,
    },
    settled: { ...t.settled, actor_id: who.apiKeyId },
  };
}

/** A UUIDv7, as Prisma's `@default(uuid(7))` makes them (time-ordered: index inserts stay at the right edge). */
function uuidv7(): string {
  const b = randomBytes(16);
  b.writeUIntBE(Date.now(), 0, 6);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function eventParams(e: EventTemplate, targetId: string, requestId: string, details: Record<string, unknown>) {
  return [
    uuidv7(),
    new Date(),
    e.actor_type,
    e.actor_id,
    e.actor_role,
    e.action,
    e.target_type,
    targetId,
    e.outcome,
    requestId,
    e.ip,
    JSON.stringify(details),
    e.id_card_hmac,
  ];
}

/** The settled row's values, in the order both floors' settle statements take them. */
function settledValues(t: Template, traceId: string) {
  return [
    t.status,
    t.result,
    t.description,
    t.charge_status,
    t.amount,
    traceId,
    t.upstream_attempts,
    t.upstream_error,
    t.ocr_enc,
  ];
}

/** One verification's statements on one connection. */
async function oneVerification(c: pg.PoolClient, t: Template, keyHash: string, reference: string): Promise<void> {
  const id = uuidv7();
  const requestId = randomUUID();
  const traceId = randomUUID();
  await c.query(FLOOR_SQL.keyLookup, [keyHash, 1, 0]);

  await c.query('BEGIN');
  try {
    await c.query(FLOOR_SQL.policy, [t.client_id, 1, 0]);
    await c.query(FLOOR_SQL.insertPending, [
      id,
      t.client_id,
      t.api_key_id,
      t.channel,
      t.mode,
      reference,
      'pending',
      'unknown',
      t.unit_price,
      null,
      t.currency,
      false,
      t.name_enc,
      t.id_card_enc,
      t.id_card_hmac,
      t.name_hmac,
      0,
      new Date(),
    ]);
    await c.query(FLOOR_SQL.insertEvent, eventParams(t.created, id, requestId, t.created.details));
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  }

  await c.query('BEGIN');
  try {
    await c.query(FLOOR_SQL.readVerification, [id, 1, 0]);
    await c.query(FLOOR_SQL.settle, [...settledValues(t, traceId), new Date(), id]);
    const details =
      'upstream_trace_id' in t.settled.details
        ? { ...t.settled.details, upstream_trace_id: traceId }
        : t.settled.details;
    await c.query(FLOOR_SQL.insertEvent, eventParams(t.settled, id, requestId, details));
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  }
}

function eventValues(e: EventTemplate, requestId: string, details: Record<string, unknown>) {
  return [
    uuidv7(),
    e.actor_type,
    e.actor_id,
    e.actor_role,
    e.action,
    e.target_type,
    e.outcome,
    requestId,
    e.ip,
    JSON.stringify(details),
    e.id_card_hmac,
  ];
}

/** One verification's two statements (the minimal floor). */
async function oneMinimalVerification(c: pg.PoolClient, t: Template, reference: string): Promise<void> {
  const id = uuidv7();
  const requestId = randomUUID();
  const traceId = randomUUID();
  await c.query(MINIMAL_SQL.record, [
    id,
    t.client_id,
    t.api_key_id,
    t.channel,
    t.mode,
    reference,
    t.unit_price,
    t.currency,
    t.name_enc,
    t.id_card_enc,
    t.id_card_hmac,
    t.name_hmac,
    ...eventValues(t.created, requestId, t.created.details),
  ]);
  const details =
    'upstream_trace_id' in t.settled.details ? { ...t.settled.details, upstream_trace_id: traceId } : t.settled.details;
  await c.query(MINIMAL_SQL.settle, [...settledValues(t, traceId), id, ...eventValues(t.settled, requestId, details)]);
}

export type FloorKind = 'replay' | 'minimal';

export interface FloorReport {
  latencies: Float64Array;
  elapsedMs: number;
  errors: number;
  firstError: string | null;
  timedOut: boolean;
}

/**
 * `count` verifications' statements from `concurrency` loops, each holding a connection of its own;
 * loop k acts for identities[k mod length], as the app's load generator does with its keys.
 */
export async function runFloor(
  pool: pg.Pool,
  templates: Template[],
  identities: FloorIdentity[],
  order: { count: number; concurrency: number; referencePrefix: string; deadlineMs: number },
  kind: FloorKind = 'replay',
): Promise<FloorReport> {
  const latencies = new Float64Array(order.count);
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | null = null;
  let timedOut = false;
  const started = performance.now();
  const loop = async (k: number) => {
    const who = identities[k % identities.length];
    const mine = templates.map((t) => as(t, who));
    const c = await pool.connect();
    try {
      while (next < order.count) {
        if (performance.now() - started > order.deadlineMs) {
          timedOut = true;
          return;
        }
        const i = next++;
        const t0 = performance.now();
        try {
          const reference = `${order.referencePrefix}-${i}`;
          if (kind === 'minimal') await oneMinimalVerification(c, mine[i % mine.length], reference);
          else await oneVerification(c, mine[i % mine.length], who.keyHash, reference);
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
        latencies[done++] = performance.now() - t0;
      }
    } finally {
      c.release();
    }
  };
  await Promise.all(Array.from({ length: order.concurrency }, (_, k) => loop(k)));
  return { latencies: latencies.slice(0, done), elapsedMs: performance.now() - started, errors, firstError, timedOut };
}
