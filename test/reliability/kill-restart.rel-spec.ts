import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { runCli } from '../support/processes';
import { KNOWN } from '../support/verification-app';
import { bearer, eventually, listAllVerifications, Reply, send, VerificationView } from './support/http';
import { Cleanup, clientKey, clusterOn, clusterUrl, Idgate, startIdgate } from './support/processes';

const COMPLETED = 10;
const IN_FLIGHT = 12;
/** The first few in-flight requests carry an Idempotency-Key, to be retried after the restart. */
const KEYED = 4;
const RACING = 8;

/**
 * (b) kill -9 of idgate with upstream calls in flight, then a restart on the same
 * data folder (embedded PostgreSQL, adopted from the dead process): nothing that
 * was recorded is lost, the calls that were in flight end `unknown` (charge
 * unknown, for reconciliation) through the sweeper, a client's retry under its
 * Idempotency-Key gets that answer without a second upstream call, and the
 * audit chain verifies.
 */
describe('reliability: kill -9 with calls in flight, then restart', () => {
  const cleanup = new Cleanup();
  let sandbox: SandboxHandle;
  let dataDir: string;
  let env: Record<string, string>;
  let first: Idgate;
  let second: Idgate;
  let admin: string;
  let client: string;
  const completed: string[] = [];
  const inFlight: Array<{ reference: string; key?: string; body: Record<string, unknown> }> = [];
  let killedReplies: PromiseSettledResult<Reply>[];
  let racingReplies: PromiseSettledResult<Reply>[];

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, dailyLimits: false });
    cleanup.defer(() => sandbox.close());
    dataDir = cleanup.dataDir(mkdtempSync(path.join(os.tmpdir(), 'idgate-kill-')));
    env = {
      IDGATE_DATA_DIR: dataDir,
      // A token makes idgate call UPSTREAM_BASE_URL as the live upstream: our sandbox, which holds calls open.
      UPSTREAM_TOKEN: 'reliability',
      UPSTREAM_BASE_URL: sandbox.url,
      UPSTREAM_MAX_ATTEMPTS: '1',
      UPSTREAM_RETRY_BASE_MS: '1',
      UPSTREAM_RETRY_MAX_MS: '1',
    };
    // First life: a long upstream timeout, so held calls are still in flight when the process dies.
    first = await startIdgate(cleanup, { ...env, UPSTREAM_TIMEOUT_MS: '60000' });
    admin = first.bootstrapKey!;
    expect(admin).toMatch(/^idg_/);
    client = await clientKey(first.url, admin, 'kill-nine');

    for (let i = 0; i < COMPLETED; i++) {
      const p = KNOWN[i];
      const res = await send(first.url, 'POST', '/v1/verifications', {
        headers: bearer(client),
        body: { name: p.name, id_card: p.id_card, reference: `done-${i}` },
      });
      expect(res.status).toBe(201);
      completed.push((res.json as { id: string }).id);
    }

    // The sandbox accepts the next calls and never answers them.
    sandbox.queueFaults(...Array.from({ length: IN_FLIGHT }, () => 'timeout'));
    const callsBefore = sandbox.stats().calls;
    const pendingReplies: Array<Promise<Reply>> = [];
    for (let i = 0; i < IN_FLIGHT; i++) {
      const p = KNOWN[20 + i];
      const entry = {
        reference: `inflight-${i}`,
        key: i < KEYED ? `kill-key-${i}` : undefined,
        body: { name: p.name, id_card: p.id_card, reference: `inflight-${i}` },
      };
      inFlight.push(entry);
      const headers = { ...bearer(client), ...(entry.key ? { 'idempotency-key': entry.key } : {}) };
      pendingReplies.push(send(first.url, 'POST', '/v1/verifications', { headers, body: entry.body }));
    }
    // Every one of them has reached the upstream (so each was recorded first).
    await eventually(
      async () => (sandbox.stats().calls - callsBefore >= IN_FLIGHT ? true : undefined),
      300,
      100,
      'the in-flight calls to reach the sandbox',
    );
    // A burst racing the kill: each of these may or may not get as far as recording.
    const racing: Array<Promise<Reply>> = [];
    for (let i = 0; i < RACING; i++) {
      const p = KNOWN[40 + i];
      racing.push(
        send(first.url, 'POST', '/v1/verifications', {
          headers: bearer(client),
          body: { name: p.name, id_card: p.id_card, reference: `racing-${i}` },
        }),
      );
    }
    first.proc.child.kill('SIGKILL');
    await first.proc.exit;
    killedReplies = await Promise.allSettled(pendingReplies);
    racingReplies = await Promise.allSettled(racing);

    // Second life on the same data folder: a short timeout, so the dead calls' deadline passes in seconds.
    second = await startIdgate(cleanup, { ...env, UPSTREAM_TIMEOUT_MS: '200' });
  });

  afterAll(() => cleanup.run());

  it('the killed calls got no answer; the restart adopted the database and issued no new bootstrap key', () => {
    expect(killedReplies.every((r) => r.status === 'rejected')).toBe(true);
    expect(second.bootstrapKey).toBeUndefined();
    expect(clusterOn(dataDir)).not.toBeNull();
  });

  it('nothing recorded is lost, and the calls that were in flight end unknown after the sweeper', async () => {
    const settled = await eventually(
      async () => {
        const all = await listAllVerifications(second.url, client);
        return all.some((v) => v.status === 'pending') ? undefined : all;
      },
      60,
      1000,
      'the sweeper to settle the in-flight verifications',
    );
    const byRef = new Map<string, VerificationView[]>();
    for (const v of settled) byRef.set(v.reference ?? '', [...(byRef.get(v.reference ?? '') ?? []), v]);
    // Each reference recorded at most once.
    for (const [ref, vs] of byRef) expect({ ref, count: vs.length }).toEqual({ ref, count: 1 });

    for (const id of completed) {
      expect(settled.find((v) => v.id === id)).toMatchObject({ status: 'completed', charged: true });
    }
    for (const { reference } of inFlight) {
      expect({ reference, v: byRef.get(reference)?.[0] }).toMatchObject({
        reference,
        v: { status: 'unknown', charged: null, charge_status: 'unknown', result: null },
      });
    }
    // A racing request either never got recorded, or was recorded and then settled like any other.
    for (let i = 0; i < RACING; i++) {
      const v = byRef.get(`racing-${i}`)?.[0];
      const reply = racingReplies[i];
      if (reply.status === 'fulfilled' && reply.value.status === 201) {
        expect(v?.id).toBe((reply.value.json as { id: string }).id);
      }
      if (v) expect(['completed', 'unknown']).toContain(v.status);
    }
    const known = new Set([
      ...Array.from({ length: COMPLETED }, (_, i) => `done-${i}`),
      ...inFlight.map((f) => f.reference),
      ...Array.from({ length: RACING }, (_, i) => `racing-${i}`),
    ]);
    expect([...byRef.keys()].filter((r) => !known.has(r))).toEqual([]);
  });

  it("a client's retry under its Idempotency-Key gets the verification as it stands (202, unknown), without a second upstream call", async () => {
    const before = sandbox.stats().calls;
    const all = await listAllVerifications(second.url, client);
    for (const entry of inFlight.filter((f) => f.key)) {
      const res = await send(second.url, 'POST', '/v1/verifications', {
        headers: { ...bearer(client), 'idempotency-key': entry.key! },
        body: entry.body,
      });
      const recorded = all.find((v) => v.reference === entry.reference)!;
      expect({ key: entry.key, status: res.status, body: res.json }).toMatchObject({
        key: entry.key,
        status: 202,
        body: { id: recorded.id, status: 'unknown', charged: null },
      });
    }
    expect(sandbox.stats().calls).toBe(before);
  });

  it('every in-flight verification has its creation and its unknown settlement in the audit trail, and the chain verifies', async () => {
    const db = new pg.Client({ connectionString: clusterUrl(dataDir) });
    await db.connect();
    try {
      const { rows } = await db.query<{ reference: string; actions: string[] }>(
        `SELECT v.reference, array_agg(e.action ORDER BY e.occurred_at, e.action) AS actions
         FROM verifications v JOIN audit_events e ON e.target_id = v.id::text
         WHERE v.reference LIKE 'inflight-%' AND e.action LIKE 'verification.%' AND e.action <> 'verification.viewed'
         GROUP BY v.reference`,
      );
      expect(rows).toHaveLength(IN_FLIGHT);
      for (const row of rows) {
        expect(row).toEqual({ reference: row.reference, actions: ['verification.created', 'verification.unknown'] });
      }
    } finally {
      await db.end();
    }
    const verify = await runCli(['audit', 'verify', '--json'], { IDGATE_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    expect({ code: verify.code, stderr: verify.code === 0 ? '' : verify.stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(verify.stdout.trim().split('\n').pop()!) as { ok: boolean; checked: number };
    expect(report.ok).toBe(true);
    expect(report.checked).toBeGreaterThan(0);
  });

  it('shuts down cleanly after all that (SIGTERM: exit 0, the adopted database stopped)', async () => {
    second.proc.child.kill('SIGTERM');
    expect(await second.proc.exit).toBe(0);
    expect(clusterOn(dataDir)).toBeNull();
  });
});
