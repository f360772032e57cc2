import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedDatabase, freePort, startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { applyMigrations } from '../../src/database/migrations';
import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { TestDatabase } from '../support/databases';
import { startTestApp, TestApp } from '../support/test-app';
import { KNOWN } from '../support/verification-app';
import { listen } from './support/apps';
import { bearer, eventually, Reply, send } from './support/http';

/** The sandbox holds each of these calls this long, so the test can break things while it is in flight. */
const CALL_MS = 2500;

async function auditActions(databaseUrl: string, verificationId: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const res = await c.query<{ action: string }>(
      `SELECT action FROM audit_events WHERE target_type = 'verification' AND target_id = $1 ORDER BY id`,
      [verificationId],
    );
    return res.rows.map((r) => r.action);
  } finally {
    await c.end();
  }
}

/**
 * The settle path killed at each step after the paid call (issue 11): the upstream has
 * answered, and idgate cannot write. The answer is held in memory and written when it
 * can be; the caller gets 202 with the verification, a retry under the same
 * Idempotency-Key never makes a second call, and the row is never left `unknown` by
 * idgate's own doing. (The process killed outright is test/reliability/kill-restart.)
 */
describe('reliability: the settle write fails after the upstream answered', () => {
  let sandbox: SandboxHandle;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, dailyLimits: false });
  });
  afterAll(() => sandbox?.close());

  async function callInFlight(callsBefore: number): Promise<void> {
    await eventually(
      async () => (sandbox.stats().calls > callsBefore ? true : undefined),
      200,
      50,
      'the call to reach the sandbox',
    );
  }

  async function retryUntilFinal(url: string, key: string, body: object, client: string): Promise<Reply[]> {
    const replies: Reply[] = [];
    for (let i = 0; i < 120; i++) {
      const r = await send(url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': key },
        body,
      });
      replies.push(r);
      if (r.status === 200 || r.status === 201) return replies;
      await new Promise((res) => setTimeout(res, 250));
    }
    throw new Error(`no final answer: ${replies.map((r) => r.status).join(',')}`);
  }

  describe('the pool is starved when the answer arrives', () => {
    let t: TestApp;
    let url: string;
    let client: string;

    beforeAll(async () => {
      t = await startTestApp({
        databasePoolSize: 2,
        settleWaitMs: 1000,
        upstream: { baseUrl: sandbox.url, timeoutMs: 10_000 },
        audit: { sealIntervalMs: 60_000 },
      });
      url = await listen(t);
      client = (await t.keyFor('client')).key;
    });
    afterAll(() => t?.close());

    /** Holds every pooled connection of the app for `ms`. */
    function starvePool(ms: number): Promise<unknown> {
      const hold = () =>
        t.prisma.$transaction(async (tx) => tx.$executeRawUnsafe(`SELECT pg_sleep(${ms / 1000})`), {
          maxWait: 10_000,
          timeout: ms + 10_000,
        });
      return Promise.all([hold(), hold()]);
    }

    it('answers 202 with the verification, writes the answer once the pool frees, and a keyed retry replays it', async () => {
      const person = KNOWN[100];
      const body = { name: person.name, id_card: person.id_card, reference: 'starved' };
      const callsBefore = sandbox.stats().calls;
      const first = send(url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': 'starved-key', 'x-sandbox-fault': `latency=${CALL_MS}` },
        body,
      });
      await callInFlight(callsBefore);
      // Longer than a request waits for a connection (5 s), so the retry below is refused while starved.
      const starved = starvePool(CALL_MS + 9000);

      const answer = await first;
      expect(answer.status).toBe(202);
      expect(answer.json).toMatchObject({ status: 'pending', charged: null, reference: 'starved' });
      const id = (answer.json as { id: string }).id;
      expect(answer.headers.location).toBe(`/v1/verifications/${id}`);

      // While starved, a retry is refused before it does anything (503: no connection, even to check its key).
      const during = await send(url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': 'starved-key' },
        body,
      });
      expect(during.status).toBe(503);

      await starved;
      const replies = await retryUntilFinal(url, 'starved-key', body, client);
      const final = replies[replies.length - 1];
      expect(final.status).toBe(200);
      expect(final.headers['idempotent-replayed']).toBe('true');
      expect(final.json).toMatchObject({ id, status: 'completed', result: '0', charged: true });
      expect(replies.every((r) => [200, 202, 409, 503].includes(r.status))).toBe(true);

      expect(sandbox.stats().calls - callsBefore).toBe(1);
      expect(await auditActions(t.db.url, id)).toEqual(['verification.created', 'verification.completed']);
    });

    it('the drop-in answers 202 in its own shape with the verification in headers, then replays the result', async () => {
      const person = KNOWN[103];
      const body = { name: person.name, id_card: person.id_card };
      const callsBefore = sandbox.stats().calls;
      const first = send(url, 'POST', '/identity/idcard/ocr', {
        headers: { ...bearer(client), 'idempotency-key': 'drop-in-starved', 'x-sandbox-fault': `latency=${CALL_MS}` },
        body,
      });
      await callInFlight(callsBefore);
      const starved = starvePool(CALL_MS + 3000);
      const answer = await first;
      expect(answer.status).toBe(202);
      const id = answer.headers['x-idgate-verification-id'];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(answer.headers['x-idgate-verification-status']).toBe('pending');
      expect(answer.json).toEqual({
        success: false,
        error: { code: 'api_error', message: expect.stringMatching(/still being recorded/) },
        trace_id: id,
      });
      await starved;
      let final: Reply | undefined;
      for (let i = 0; i < 120 && final?.status !== 200; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 250));
        final = await send(url, 'POST', '/identity/idcard/ocr', {
          headers: { ...bearer(client), 'idempotency-key': 'drop-in-starved' },
          body,
        });
      }
      expect(final!.status).toBe(200);
      expect(final!.json).toMatchObject({ result: '0', name: person.name, id_card: person.id_card });
      expect(sandbox.stats().calls - callsBefore).toBe(1);
    });

    it('on shutdown, waits for an answer still being written before closing the pool', async () => {
      const person = KNOWN[101];
      const callsBefore = sandbox.stats().calls;
      const first = send(url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'x-sandbox-fault': `latency=${CALL_MS}` },
        body: { name: person.name, id_card: person.id_card, reference: 'drained' },
      });
      await callInFlight(callsBefore);
      const starved = starvePool(CALL_MS + 3000);
      const answer = await first;
      expect(answer.status).toBe(202);
      const id = (answer.json as { id: string }).id;

      await t.app.close(); // returns once the pending write has landed (or SHUTDOWN_DRAIN_MS passed)
      await starved.catch(() => undefined);
      const c = new pg.Client({ connectionString: t.db.url });
      await c.connect();
      const row = await c.query('SELECT status, charge_status FROM verifications WHERE id = $1', [id]);
      await c.end();
      expect(row.rows[0]).toEqual({ status: 'completed', charge_status: 'charged' });
    });
  });

  describe('PostgreSQL goes down after the call and comes back', () => {
    let dataDir: string;
    let port: number;
    let db: EmbeddedDatabase;
    let t: TestApp;
    let url: string;
    let client: string;

    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-settle-down-'));
      port = await freePort();
      db = await startEmbeddedPostgres({ dataDir, port });
      await applyMigrations(db.url);
      const own: TestDatabase = { name: 'idgate', url: db.url, adminUrl: db.url, drop: async () => undefined };
      t = await startTestApp({ settleWaitMs: 1000, upstream: { baseUrl: sandbox.url, timeoutMs: 10_000 } }, own);
      url = await listen(t);
      client = (await t.keyFor('client')).key;
    }, 60_000);

    afterAll(async () => {
      await t?.close().catch(() => undefined);
      await db?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('the answer is held until PostgreSQL is back, then written once; a keyed retry never calls again', async () => {
      const person = KNOWN[102];
      const body = { name: person.name, id_card: person.id_card, reference: 'db-down' };
      const callsBefore = sandbox.stats().calls;
      const first = send(url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': 'db-down-key', 'x-sandbox-fault': `latency=${CALL_MS}` },
        body,
      });
      await callInFlight(callsBefore);
      await db.stop();

      const answer = await first;
      expect(answer.status).toBe(202);
      expect(answer.json).toMatchObject({ status: 'pending', reference: 'db-down' });
      const id = (answer.json as { id: string }).id;

      // Down: a retry cannot even be admitted, and is refused before anything happens.
      const during = await send(url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': 'db-down-key' },
        body,
      });
      expect(during.status).toBe(503);
      expect(during.json).toMatchObject({ type: 'urn:idgate:problem:service-unavailable' });

      db = await startEmbeddedPostgres({ dataDir, port });
      const replies = await retryUntilFinal(url, 'db-down-key', body, client);
      expect(replies[replies.length - 1].json).toMatchObject({ id, status: 'completed', charged: true });
      expect(sandbox.stats().calls - callsBefore).toBe(1);
      expect(await auditActions(db.url, id)).toEqual(['verification.created', 'verification.completed']);
    });
  });
});
