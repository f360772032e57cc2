import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, spawnNode } from '../support/processes';
import { bearer, send } from './support/http';
import { Cleanup, clientKey, clusterOn, Idgate, lockOn, startIdgate } from './support/processes';

/**
 * One owner per data folder: a second idgate started on the same IDGATE_DATA_DIR
 * exits with one clear line and leaves the first one's embedded PostgreSQL alone
 * (before, it adopted that database and stopped it on exit, leaving the first
 * server answering 503). The CLI may use the running server's database without
 * stopping it. A lock left by a kill -9 is taken over by the next start.
 */
describe('reliability: one idgate per data folder', () => {
  const cleanup = new Cleanup();
  let dataDir: string;
  let env: Record<string, string>;
  let first: Idgate;
  let admin: string;
  let client: string;
  let postgresPid: number;
  let secretsBefore: string;

  beforeAll(async () => {
    dataDir = cleanup.dataDir(mkdtempSync(path.join(os.tmpdir(), 'idgate-folder-')));
    env = { IDGATE_DATA_DIR: dataDir, SANDBOX_PORT: '0' };
    first = await startIdgate(cleanup, env);
    admin = first.bootstrapKey!;
    expect(admin).toMatch(/^idg_/);
    client = await clientKey(first.url, admin, 'data-folder');
    postgresPid = clusterOn(dataDir)!.pid;
    secretsBefore = readFileSync(path.join(dataDir, 'secrets.json'), 'utf8');
  });

  afterAll(() => cleanup.run());

  /** The first server still owns the folder, serves, and runs on the same PostgreSQL process. */
  const expectFirstUntouched = async () => {
    expect(lockOn(dataDir)).toMatchObject({ pid: first.proc.child.pid, role: 'server' });
    expect(clusterOn(dataDir)?.pid).toBe(postgresPid);
    expect((await send(first.url, 'GET', '/health/ready')).status).toBe(200);
    const created = await send(first.url, 'POST', '/v1/clients', {
      headers: bearer(admin),
      body: { name: `still-serving-${Date.now()}` },
    });
    expect(created.status).toBe(201);
    expect(readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')).toBe(secretsBefore);
  };

  const expectRefused = async (port: string) => {
    const second = cleanup.track(spawnNode('dist/main.js', [], { LOG_LEVEL: 'warn', ...env, PORT: port }));
    const code = await second.exit;
    const lines = second.stderr().trim().split('\n');
    expect({ code, lines }).toEqual({
      code: 1,
      lines: [
        `idgate: failed to start: the data folder ${dataDir} is in use by another idgate (pid ${first.proc.child.pid}); stop it first or set IDGATE_DATA_DIR`,
      ],
    });
    expect(second.stdout()).not.toMatch(/listening/);
  };

  it('a second idgate on another port exits with one line naming the folder, and the first keeps serving', async () => {
    await expectRefused('0');
    await expectFirstUntouched();
  });

  it('a second idgate on the same port is refused the same way, before it gets to the port', async () => {
    await expectRefused(new URL(first.url).port);
    await expectFirstUntouched();
  });

  it("the CLI uses the running server's database and leaves it running", async () => {
    const listed = await runCli(['keys', 'list', '--json'], { ...env, LOG_LEVEL: 'silent' });
    expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: '' });
    const items = (JSON.parse(listed.stdout.trim().split('\n').pop()!) as { items: Array<{ role: string }> }).items;
    expect(items.map((k) => k.role)).toEqual(expect.arrayContaining(['admin', 'client']));
    await expectFirstUntouched();
  });

  describe('after kill -9 of the owner', () => {
    let third: Idgate;

    beforeAll(async () => {
      first.proc.child.kill('SIGKILL');
      await first.proc.exit;
      // The dead owner's lock and PostgreSQL are left behind.
      expect(lockOn(dataDir)?.pid).toBe(first.proc.child.pid);
      expect(clusterOn(dataDir)?.pid).toBe(postgresPid);
      third = await startIdgate(cleanup, env);
    });

    it('the next start takes the lock over, adopts the database and serves; no new bootstrap key; earlier keys work', async () => {
      expect(lockOn(dataDir)).toMatchObject({ pid: third.proc.child.pid, role: 'server' });
      expect(clusterOn(dataDir)?.pid).toBe(postgresPid);
      expect(third.bootstrapKey).toBeUndefined();
      expect((await send(third.url, 'GET', '/health/ready')).status).toBe(200);
      expect((await send(third.url, 'GET', '/v1/clients', { headers: bearer(admin) })).status).toBe(200);
      expect((await send(third.url, 'GET', '/v1/verifications', { headers: bearer(client) })).status).toBe(200);
    });

    it('SIGTERM stops it cleanly: exit 0, lock file gone, PostgreSQL stopped', async () => {
      third.proc.child.kill('SIGTERM');
      expect(await third.proc.exit).toBe(0);
      expect(lockOn(dataDir)).toBeNull();
      expect(clusterOn(dataDir)).toBeNull();
    });

    it('with no server, the CLI holds the folder and its own PostgreSQL only while it runs', async () => {
      const listed = await runCli(['keys', 'list', '--json'], { ...env, LOG_LEVEL: 'silent' });
      expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: '' });
      expect(lockOn(dataDir)).toBeNull();
      expect(clusterOn(dataDir)).toBeNull();
    });
  });
});
