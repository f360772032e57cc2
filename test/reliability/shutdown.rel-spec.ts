import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { KNOWN } from '../support/verification-app';
import { bearer, listAllVerifications, send } from './support/http';
import { Cleanup, clientKey, Idgate, startIdgate } from './support/processes';

const LANES = 10;

/**
 * SIGTERM under steady load on keep-alive connections, as a load balancer keeps them:
 * idgate must stop starting new work at once (503, Connection: close), let the calls
 * already running finish and be recorded, and exit 0 while the load goes on. Before,
 * it kept accepting (and calling the vendor for) thousands of requests on open
 * connections and exited only when the load stopped.
 */
describe('reliability: shutdown while a load balancer keeps sending', () => {
  const cleanup = new Cleanup();
  let sandbox: SandboxHandle;
  let idgate: Idgate;
  let client: string;
  let dataDir: string;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, dailyLimits: false, faults: { latency: 300 } });
    cleanup.defer(() => sandbox.close());
    dataDir = cleanup.dataDir(mkdtempSync(path.join(os.tmpdir(), 'idgate-drain-')));
    idgate = await startIdgate(cleanup, {
      IDGATE_DATA_DIR: dataDir,
      UPSTREAM_TOKEN: 'reliability',
      UPSTREAM_BASE_URL: sandbox.url,
    });
    client = await clientKey(idgate.url, idgate.bootstrapKey!, 'drain');
  });
  afterAll(() => cleanup.run());

  it('refuses new work at once, finishes what runs, and exits 0 while the load continues', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: LANES });
    const statuses: number[] = [];
    let stop = false;
    let n = 0;
    let signalled = false;
    // The vendor's count when idgate was first seen refusing: its shutdown had begun by then. (A
    // loaded machine can take a while to act on the signal; until it does, it rightly serves.)
    let callsAtRefusal: number | null = null;
    let answeredAtRefusal = 0;
    const seen = (status: number) => {
      statuses.push(status);
      if (signalled && status !== 201 && callsAtRefusal === null) {
        callsAtRefusal = sandbox.stats().calls;
        answeredAtRefusal = statuses.length - 1;
      }
    };
    const lanes = Array.from({ length: LANES }, async () => {
      while (!stop) {
        const p = KNOWN[n++ % KNOWN.length];
        try {
          const r = await send(idgate.url, 'POST', '/v1/verifications', {
            headers: bearer(client),
            body: { name: p.name, id_card: p.id_card, reference: `drain-${n}` },
            agent,
            timeoutMs: 30_000,
          });
          seen(r.status);
        } catch {
          seen(0); // connection refused or closed: the instance is gone
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    });
    // Steady load for a while, on kept-alive connections.
    while (statuses.length < 30) await new Promise((r) => setTimeout(r, 50));
    const answeredAtSignal = statuses.length;
    signalled = true;
    idgate.proc.child.kill('SIGTERM');
    const exit = await Promise.race([
      idgate.proc.exit,
      new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000)),
    ]);
    stop = true;
    await Promise.all(lanes);
    agent.destroy();

    expect(exit).toBe(0);
    expect(callsAtRefusal).not.toBeNull();
    // Only calls already admitted when the shutdown began could still reach the vendor, and be answered 201.
    expect(sandbox.stats().calls - callsAtRefusal!).toBeLessThanOrEqual(LANES);
    expect(statuses.slice(answeredAtSignal).filter((s) => ![201, 503, 0].includes(s))).toEqual([]);
    expect(statuses.slice(answeredAtRefusal).filter((s) => s === 201).length).toBeLessThanOrEqual(LANES);
  });

  it('recorded every call the vendor saw: one verification per call, none left pending', async () => {
    const again = await startIdgate(cleanup, {
      IDGATE_DATA_DIR: dataDir,
      UPSTREAM_TOKEN: 'reliability',
      UPSTREAM_BASE_URL: sandbox.url,
    });
    const all = await listAllVerifications(again.url, client);
    expect(all.filter((v) => v.status === 'pending')).toEqual([]);
    expect(all.filter((v) => v.reference?.startsWith('drain-'))).toHaveLength(sandbox.stats().calls);
    again.proc.child.kill('SIGTERM');
    expect(await again.proc.exit).toBe(0);
  });
});
