import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedDatabase, freePort, startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { applyMigrations } from '../../src/database/migrations';
import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { KNOWN } from '../support/verification-app';
import { bearer, eventually, listAllVerifications, Reply, send } from './support/http';
import { Cleanup, clientKey, Idgate, startIdgate } from './support/processes';

/** A hang is a failure too: these requests must be answered well within this. */
const ANSWER_WITHIN_MS = 20_000;

async function reachable(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/**
 * (c) PostgreSQL stopped under a running idgate (the test owns the server): idgate
 * answers 503 problem+json, not 500 and not a hang; readiness says the database
 * is down; and it makes no upstream call it could not record. When PostgreSQL
 * comes back on the same data and port, idgate recovers by itself.
 */
describe('reliability: PostgreSQL stopped mid-run', () => {
  const cleanup = new Cleanup();
  let dataDir: string;
  let port: number;
  let database: EmbeddedDatabase;
  let sandbox: SandboxHandle;
  let idgate: Idgate;
  let client: string;
  let before: string;
  const person = (i: number) => ({ name: KNOWN[60 + i].name, id_card: KNOWN[60 + i].id_card });

  beforeAll(async () => {
    dataDir = cleanup.dataDir(mkdtempSync(path.join(os.tmpdir(), 'idgate-outage-')));
    port = await freePort();
    database = await startEmbeddedPostgres({ dataDir, port });
    cleanup.defer(() => database.stop());
    await applyMigrations(database.url);
    sandbox = await startSandbox({ port: 0, dailyLimits: false });
    cleanup.defer(() => sandbox.close());
    idgate = await startIdgate(cleanup, {
      DATABASE_URL: database.url,
      PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      PII_HMAC_KEY: randomBytes(32).toString('base64'),
      AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
      UPSTREAM_TOKEN: 'reliability',
      UPSTREAM_BASE_URL: sandbox.url,
      UPSTREAM_TIMEOUT_MS: '2000',
    });
    client = await clientKey(idgate.url, idgate.bootstrapKey!, 'outage');
    const ok = await send(idgate.url, 'POST', '/v1/verifications', {
      headers: bearer(client),
      body: { ...person(0), reference: 'before' },
    });
    expect(ok.status).toBe(201);
    before = (ok.json as { id: string }).id;
  });

  afterAll(() => cleanup.run());

  describe('while PostgreSQL is down', () => {
    let callsBefore: number;
    beforeAll(async () => {
      await database.stop();
      expect(await reachable(database.url)).toBe(false);
      callsBefore = sandbox.stats().calls;
    });

    const expectUnavailable = (res: Reply) => {
      // On failure the body is shown too (a 500 says `internal`: the error was not recognised as an outage).
      expect({
        status: res.status,
        type: res.headers['content-type'],
        body: res.status === 503 ? '' : res.text,
      }).toEqual({
        status: 503,
        type: expect.stringMatching(/^application\/problem\+json/),
        body: '',
      });
      expect(res.text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
    };

    it('POST /v1/verifications answers 503 problem+json (with or without Idempotency-Key), and the upstream is not called', async () => {
      const plain = await send(idgate.url, 'POST', '/v1/verifications', {
        headers: bearer(client),
        body: { ...person(1), reference: 'during-1' },
        timeoutMs: ANSWER_WITHIN_MS,
      });
      expectUnavailable(plain);
      const keyed = await send(idgate.url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': 'outage-key' },
        body: { ...person(2), reference: 'during-2' },
        timeoutMs: ANSWER_WITHIN_MS,
      });
      expectUnavailable(keyed);
      expect(sandbox.stats().calls).toBe(callsBefore);
    });

    it('reads answer 503 problem+json too', async () => {
      expectUnavailable(
        await send(idgate.url, 'GET', '/v1/verifications', { headers: bearer(client), timeoutMs: ANSWER_WITHIN_MS }),
      );
      expectUnavailable(
        await send(idgate.url, 'GET', `/v1/verifications/${before}`, {
          headers: bearer(client),
          timeoutMs: ANSWER_WITHIN_MS,
        }),
      );
    });

    it('/health/ready is 503 naming the database; /health/live stays 200; the process stays up', async () => {
      const ready = await send(idgate.url, 'GET', '/health/ready', { timeoutMs: ANSWER_WITHIN_MS });
      expect(ready.status).toBe(503);
      expect(ready.json).toMatchObject({ status: 'unavailable', checks: { database: { status: 'down' } } });
      expect((await send(idgate.url, 'GET', '/health/live', { timeoutMs: ANSWER_WITHIN_MS })).status).toBe(200);
      expect(idgate.proc.child.exitCode).toBeNull();
      expect(sandbox.stats().calls).toBe(callsBefore);
    });
  });

  describe('when PostgreSQL returns on the same data and port', () => {
    beforeAll(async () => {
      database = await startEmbeddedPostgres({ dataDir, port });
      expect(database.port).toBe(port);
    });

    it('idgate recovers by itself: verifications succeed again, readiness is 200', async () => {
      const res = await eventually(
        async () => {
          const r = await send(idgate.url, 'POST', '/v1/verifications', {
            headers: { ...bearer(client), 'idempotency-key': 'outage-key' },
            body: { ...person(2), reference: 'during-2' },
            timeoutMs: ANSWER_WITHIN_MS,
          });
          return r.status === 503 ? undefined : r;
        },
        50,
        200,
        'idgate to serve verifications again',
      );
      // The key tried during the outage was never claimed: this is its first run, not a replay.
      expect(res.status).toBe(201);
      expect(res.json).toMatchObject({ status: 'completed', charged: true, reference: 'during-2' });
      expect((await send(idgate.url, 'GET', '/health/ready')).status).toBe(200);
      expect(idgate.proc.child.exitCode).toBeNull();
    });

    it('the outage left no trace in the data: only the verifications that were answered exist', async () => {
      const all = await listAllVerifications(idgate.url, client);
      expect(all.map((v) => v.reference).sort()).toEqual(['before', 'during-2']);
      expect(all.find((v) => v.id === before)).toMatchObject({ status: 'completed' });
      // One call before the outage, one after: none during it.
      expect(sandbox.stats().calls).toBe(2);
    });

    it('shuts down cleanly (SIGTERM, exit 0)', async () => {
      idgate.proc.child.kill('SIGTERM');
      expect(await idgate.proc.exit).toBe(0);
    });
  });
});
