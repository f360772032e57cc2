/*
 * npm run bench:overload [-- <checkout>]
 *
 * The overload scenario of issue 11, as a new user would run it: `node dist/main.js`
 * of a checkout (this one by default, or another built checkout given as argument,
 * e.g. an older commit in a git worktree) in embedded mode with DATABASE_POOL_SIZE=3
 * and the built-in sandbox at 100 ms latency. 150 concurrent POST /v1/verifications,
 * each with its own Idempotency-Key; every answer that is not final (anything but
 * 200/201, 4xx excepted) is retried with the same key, up to 30 times. Then 100
 * concurrent submissions without a key, each sent once. Prints the answers by status
 * (first wave and all), the vendor's calls and charges, and what idgate recorded.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import identities from '../src/upstream/sandbox/fixtures/identities.json';

const KEYED = Number(process.env.OVERLOAD_KEYED ?? 150);
const UNKEYED = Number(process.env.OVERLOAD_UNKEYED ?? 100);
const MAX_TRIES = 30;

interface Reply {
  status: number;
  json: unknown;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function call(
  base: string,
  method: string,
  pathName: string,
  key: string | null,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve) => {
    const req = http.request(
      new URL(pathName, base),
      {
        method,
        agent,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = text;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    // A dropped connection is an answer too (status 0): counted, and retried like a 5xx.
    req.on('error', () => resolve({ status: 0, json: null }));
    if (payload) req.write(payload);
    req.end();
  });
}

async function startIdgate(checkout: string, dataDir: string) {
  const child = spawn(process.execPath, [path.join(checkout, 'dist/main.js')], {
    cwd: checkout,
    env: {
      ...process.env,
      DATABASE_URL: '',
      UPSTREAM_TOKEN: '',
      PORT: '0',
      LOG_LEVEL: process.env.OVERLOAD_LOG_LEVEL ?? 'info',
      IDGATE_DATA_DIR: dataDir,
      DATABASE_POOL_SIZE: '3',
      SANDBOX_FAULTS: 'latency=100',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', () => undefined);
  for (let i = 0; i < 1200 && !/Bootstrap admin API key[^\n]*\n\s+idg_\S+/.test(out); i++) {
    if (child.exitCode !== null) throw new Error(`idgate exited: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = /idgate listening on (http:\/\/\S+)/.exec(out)![1].replace('localhost', '127.0.0.1');
  const sandbox = /SANDBOX at (http:\/\/\S+)/.exec(out)![1];
  const admin = /Bootstrap admin API key[^\n]*\n\s+(idg_\S+)/.exec(out)![1];
  return { child, url, sandbox, admin };
}

const tally = (into: Record<string, number>, status: number) => (into[status] = (into[status] ?? 0) + 1);

async function main(): Promise<void> {
  const checkout = path.resolve(process.argv[2] ?? '.');
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-overload-'));
  const idgate = await startIdgate(checkout, dataDir);
  try {
    const client = await call(idgate.url, 'POST', '/v1/clients', idgate.admin, {}, { name: 'overload' });
    const clientId = (client.json as { id: string }).id;
    const issued = await call(
      idgate.url,
      'POST',
      '/v1/api-keys',
      idgate.admin,
      {},
      {
        role: 'client',
        name: 'overload',
        client_id: clientId,
      },
    );
    const key = (issued.json as { key: string }).key;

    const firstWave: Record<string, number> = {};
    const all: Record<string, number> = {};
    let gaveUp = 0;
    await Promise.all(
      Array.from({ length: KEYED }, async (_, i) => {
        const person = identities[i % identities.length];
        const body = { name: person.name, id_card: person.id_card, reference: `keyed-${i}` };
        for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
          const r = await call(idgate.url, 'POST', '/v1/verifications', key, { 'idempotency-key': `k-${i}` }, body);
          if (attempt === 0) tally(firstWave, r.status);
          tally(all, r.status);
          if (
            r.status === 200 ||
            r.status === 201 ||
            (r.status >= 400 && r.status < 500 && r.status !== 409 && r.status !== 429)
          )
            return;
          await new Promise((res) => setTimeout(res, 200 + Math.random() * 300));
        }
        gaveUp++;
      }),
    );
    const unkeyed: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: UNKEYED }, async (_, i) => {
        const person = identities[(KEYED + i) % identities.length];
        const body = { name: person.name, id_card: person.id_card, reference: `unkeyed-${i}` };
        tally(unkeyed, (await call(idgate.url, 'POST', '/v1/verifications', key, {}, body)).status);
      }),
    );
    // Let answers still being written land (the new code's background settles).
    await new Promise((r) => setTimeout(r, 3000));

    const stats = (await call(idgate.sandbox, 'GET', '/stats', 'sandbox')).json as { calls: number; charged: number };
    const rows: Array<{ reference: string; status: string; charge_status: string }> = [];
    let cursor: string | null = null;
    do {
      const page = await call(
        idgate.url,
        'GET',
        `/v1/verifications?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        key,
      );
      const body = page.json as { items: typeof rows; next_cursor: string | null };
      rows.push(...body.items);
      cursor = body.next_cursor;
    } while (cursor);
    const perKey = new Map<string, number>();
    for (const r of rows.filter((r) => r.reference.startsWith('keyed-')))
      perKey.set(r.reference, (perKey.get(r.reference) ?? 0) + 1);
    const byStatus: Record<string, number> = {};
    for (const r of rows)
      byStatus[`${r.status}/${r.charge_status}`] = (byStatus[`${r.status}/${r.charge_status}`] ?? 0) + 1;
    const recordedCharged = rows.filter((r) => r.charge_status === 'charged').length;

    const report = {
      checkout,
      keyed: {
        requests: KEYED,
        first_wave_by_status: firstWave,
        all_answers_by_status: all,
        keys_without_final_answer: gaveUp,
        keys_with_more_than_one_verification: [...perKey.values()].filter((n) => n > 1).length,
        keys_with_no_verification: KEYED - perKey.size,
      },
      unkeyed: { requests: UNKEYED, answers_by_status: unkeyed },
      vendor: { calls: stats.calls, charged: stats.charged },
      idgate: { verifications: rows.length, by_status: byStatus, charged: recordedCharged },
      vendor_charged_minus_recorded_charged: stats.charged - recordedCharged,
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } finally {
    idgate.child.kill('SIGTERM');
    await new Promise((r) => idgate.child.once('exit', r));
    agent.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:overload failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
