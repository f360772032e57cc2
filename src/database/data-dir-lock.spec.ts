import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import {
  DataDirHolder,
  DataDirInUseError,
  DataDirLock,
  lockDataDir,
  lockFileIn,
  processStartTime,
  tryLockDataDir,
} from './data-dir-lock';

const onLinux = process.platform === 'linux';

describe('data folder lock', () => {
  let root: string;
  let dataDir: string;
  const taken: DataDirLock[] = [];

  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'idgate-lock-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(root, 'data-'));
  });
  afterEach(() => {
    for (const lock of taken.splice(0)) lock.release();
  });

  const lock = async (role: 'server' | 'command' = 'server') => {
    const l = await lockDataDir(dataDir, role);
    taken.push(l);
    return l;
  };
  const lockFile = () => lockFileIn(dataDir);
  const readHolder = () => JSON.parse(readFileSync(lockFile(), 'utf8')) as DataDirHolder;
  const writeHolder = (holder: Partial<DataDirHolder>) =>
    writeFileSync(
      lockFile(),
      JSON.stringify({
        role: 'server',
        host: os.hostname(),
        since: new Date().toISOString(),
        token: 'theirs',
        ...holder,
      }),
    );
  /** A pid that ran and has exited. */
  const deadPid = () => {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    return Number(child.stdout.toString());
  };

  it('is taken in an empty folder (created if missing), naming this process and its start time', async () => {
    dataDir = path.join(dataDir, 'not-yet');
    const l = await lock();
    expect(l.file).toBe(path.join(dataDir, 'idgate.lock'));
    const holder = readHolder();
    expect(holder).toEqual({
      pid: process.pid,
      startTime: processStartTime(process.pid),
      role: 'server',
      host: os.hostname(),
      since: expect.any(String),
      token: l.holder.token,
    });
    if (onLinux) expect(holder.startTime).toMatch(/^\d+$/);
  });

  it('is refused to a second taker with one line naming the folder and the holder pid, touching nothing', async () => {
    const first = await lock();
    const before = readFileSync(lockFile(), 'utf8');

    const refusal = await lockDataDir(dataDir, 'server').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refusal).toBeInstanceOf(DataDirInUseError);
    expect((refusal as Error).message).toBe(
      `the data folder ${dataDir} is in use by another idgate (pid ${process.pid}); stop it first or set IDGATE_DATA_DIR`,
    );
    expect(await tryLockDataDir(dataDir, 'command')).toEqual({ heldBy: first.holder });
    expect(readFileSync(lockFile(), 'utf8')).toBe(before);
    expect(readdirSync(dataDir)).toEqual(['idgate.lock']);
  });

  it('names a CLI command holding the folder as such', async () => {
    await lock('command');
    await expect(lockDataDir(dataDir, 'server')).rejects.toThrow(
      `the data folder ${dataDir} is in use by an idgate command (pid ${process.pid}); wait for it to finish or set IDGATE_DATA_DIR`,
    );
  });

  it('takes over a lock left by a dead process', async () => {
    const pid = deadPid();
    writeHolder({ pid, startTime: '12345' });
    const l = await lock();
    expect(readHolder()).toMatchObject({ pid: process.pid, token: l.holder.token });
    expect(readdirSync(dataDir)).toEqual(['idgate.lock']);
  });

  (onLinux ? it : it.skip)('takes over a lock whose pid is alive but was reused (another start time)', async () => {
    writeHolder({ pid: process.pid, startTime: String(Number(processStartTime(process.pid)) - 1) });
    const l = await lock();
    expect(readHolder().token).toBe(l.holder.token);
  });

  it('does not take over a lock of a live process with the same start time', async () => {
    writeHolder({ pid: process.pid, startTime: processStartTime(process.pid) });
    await expect(lockDataDir(dataDir, 'server')).rejects.toThrow(`(pid ${process.pid})`);
    expect(readHolder().token).toBe('theirs');
  });

  it('takes over an unreadable lock file once it is old', async () => {
    writeFileSync(lockFile(), '{"pid": 12');
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockFile(), old, old);
    const l = await lock();
    expect(readHolder().token).toBe(l.holder.token);
  });

  it('clears a takeover mutex abandoned for more than 10 s', async () => {
    writeHolder({ pid: deadPid(), startTime: null });
    const mutex = `${lockFile()}.takeover`;
    mkdirSync(mutex);
    const old = new Date(Date.now() - 20_000);
    utimesSync(mutex, old, old);
    const l = await lock();
    expect(readHolder().token).toBe(l.holder.token);
    expect(readdirSync(dataDir)).toEqual(['idgate.lock']);
  });

  it('waits for a live takeover mutex instead of racing its holder', async () => {
    writeHolder({ pid: deadPid(), startTime: null });
    const mutex = `${lockFile()}.takeover`;
    mkdirSync(mutex);
    let settled = false;
    const pending = tryLockDataDir(dataDir, 'server').finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    rmSync(mutex, { recursive: true });
    const attempt = await pending;
    expect('lock' in attempt).toBe(true);
    if ('lock' in attempt) taken.push(attempt.lock);
  });

  it('release removes our own lock only, and is idempotent', async () => {
    const mine = await lock();
    mine.release();
    expect(readdirSync(dataDir)).toEqual([]);
    expect(() => mine.release()).not.toThrow();
    expect(mine.held).toBe(false);

    const again = await lock();
    // Someone else's lock is in place (ours was judged stale, say): releasing must not remove theirs.
    writeHolder({ pid: process.pid, startTime: processStartTime(process.pid), token: 'someone else' });
    again.release();
    expect(readHolder().token).toBe('someone else');
  });

  describe('across processes', () => {
    let moduleFile: string;
    const children: ChildProcess[] = [];

    beforeAll(() => {
      // The children run the same code, compiled to plain CommonJS.
      const source = readFileSync(path.join(__dirname, 'data-dir-lock.ts'), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      });
      moduleFile = path.join(root, 'data-dir-lock.js');
      writeFileSync(moduleFile, outputText);
    });
    afterEach(() => {
      for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });

    /** A process that tries to take the lock (at `startAt`), prints won/lost, and holds it until its stdin closes. */
    const contender = (startAt: number, thenExit = false) => {
      const script = `
        const { tryLockDataDir } = require(${JSON.stringify(moduleFile)});
        while (Date.now() < ${startAt}) {}
        tryLockDataDir(${JSON.stringify(dataDir)}, 'server').then((r) => {
          process.stdout.write(('lock' in r ? 'won' : 'lost') + '\\n');
          if (${thenExit}) process.exit(0);
          process.stdin.resume();
          process.stdin.on('end', () => process.exit(0));
        });`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(child);
      const outcome = new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.trim());
        });
        child.on('exit', (code) => reject(new Error(`contender exited (${code}) before answering`)));
      });
      return { child, outcome };
    };

    const race = async (n: number) => {
      const startAt = Date.now() + 1500;
      const all = Array.from({ length: n }, () => contender(startAt));
      const outcomes = await Promise.all(all.map((c) => c.outcome));
      const winner = all[outcomes.indexOf('won')]?.child;
      const holder = readHolder();
      for (const c of all) c.child.stdin!.end();
      return { outcomes, winnerPid: winner?.pid, holderPid: holder.pid };
    };

    it('of several processes taking over the same stale lock, exactly one wins', async () => {
      writeHolder({ pid: deadPid(), startTime: null });
      const { outcomes, winnerPid, holderPid } = await race(8);
      expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'lost')).toHaveLength(7);
      expect(holderPid).toBe(winnerPid);
    });

    it('of several processes taking a free folder, exactly one wins', async () => {
      const { outcomes, winnerPid, holderPid } = await race(8);
      expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
      expect(holderPid).toBe(winnerPid);
    });

    it('is released at process exit, and left stale (then taken over) by kill -9', async () => {
      const exiting = contender(0, true);
      expect(await exiting.outcome).toBe('won');
      await new Promise((r) => exiting.child.once('exit', r));
      expect(readdirSync(dataDir)).toEqual([]);

      const killed = contender(0);
      expect(await killed.outcome).toBe('won');
      killed.child.kill('SIGKILL');
      await new Promise((r) => killed.child.once('exit', r));
      expect(readHolder().pid).toBe(killed.child.pid);
      const l = await lock();
      expect(readHolder().token).toBe(l.holder.token);
    });
  });
});
