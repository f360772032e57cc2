import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/*
 * One owner per data folder. The idgate that starts (or adopts) the embedded
 * PostgreSQL in a data folder holds `<dataDir>/idgate.lock`; a second one must
 * not adopt, stop or rewrite what the first is using. The lock names its holder
 * by pid and, on Linux, the process start time, so that a pid reused after a
 * kill -9 is not mistaken for the owner: such a stale lock is taken over.
 */

export const LOCK_FILE_NAME = 'idgate.lock';

/** A takeover mutex older than this was left by a process that died while holding it. */
const TAKEOVER_ABANDONED_MS = 10_000;
/** A lock file we cannot parse may be one being written (no hard links): give its writer this long. */
const UNREADABLE_GRACE_MS = 5_000;

/** `server`: `npm start`. `command`: a CLI command, holding the folder only while it runs. */
export type DataDirRole = 'server' | 'command';

export interface DataDirHolder {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot); null where there is no /proc. */
  startTime: string | null;
  role: DataDirRole;
  /** For people reading the file; liveness is judged by pid and start time only. */
  host: string;
  since: string;
  /** Tells this acquisition apart from any other, even by the same process. */
  token: string;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: DataDirHolder,
  ) {
    // One line: the server prints it as is and exits.
    super(
      holder.role === 'command'
        ? `the data folder ${dataDir} is in use by an idgate command (pid ${holder.pid}); wait for it to finish or set IDGATE_DATA_DIR`
        : `the data folder ${dataDir} is in use by another idgate (pid ${holder.pid}); stop it first or set IDGATE_DATA_DIR`,
    );
    this.name = 'DataDirInUseError';
  }
}

export function lockFileIn(dataDir: string): string {
  return path.join(path.resolve(dataDir), LOCK_FILE_NAME);
}

/** Start time of a process as the kernel counts it, to recognise a reused pid; null when unknown. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[22 - 3] ?? null;
  } catch {
    return null;
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process named by a lock still runs (and is the same process, not a reused pid). */
export function holderIsAlive(holder: DataDirHolder): boolean {
  if (!pidExists(holder.pid)) return false;
  if (holder.startTime === null) return true;
  const now = processStartTime(holder.pid);
  // No start time readable for a live pid (no /proc, hidepid): it cannot be ruled out.
  return now === null || now === holder.startTime;
}

function parseHolder(text: string): DataDirHolder | null {
  try {
    const h = JSON.parse(text) as Partial<DataDirHolder>;
    const valid =
      Number.isInteger(h.pid) &&
      (h.pid as number) > 0 &&
      (h.startTime === null || typeof h.startTime === 'string') &&
      (h.role === 'server' || h.role === 'command') &&
      typeof h.token === 'string';
    return valid ? (h as DataDirHolder) : null;
  } catch {
    return null;
  }
}

type LockFileState = { present: false } | { present: true; holder: DataDirHolder | null; ino: number; ageMs: number };

function readLockFile(file: string): LockFileState {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { present: false };
    throw err;
  }
  try {
    const stat = fstatSync(fd);
    const holder = parseHolder(readFileSync(fd, 'utf8'));
    return { present: true, holder, ino: stat.ino, ageMs: Date.now() - stat.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** The live holder of a data folder's lock, or null when it is free or stale. */
export function dataDirHolder(dataDir: string): DataDirHolder | null {
  const state = readLockFile(lockFileIn(dataDir));
  return state.present && state.holder && holderIsAlive(state.holder) ? state.holder : null;
}

function newHolder(role: DataDirRole): DataDirHolder {
  return {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    role,
    host: os.hostname(),
    since: new Date().toISOString(),
    token: randomBytes(12).toString('hex'),
  };
}

const uniqueSuffix = () => `${process.pid}.${randomBytes(4).toString('hex')}`;

/**
 * Creates the lock file only if none exists, already complete: a fully written temp
 * file is hard-linked into place, so a reader never sees a half-written lock.
 */
function createLockFile(file: string, holder: DataDirHolder): boolean {
  const content = JSON.stringify(holder) + '\n';
  const temp = `${file}.${uniqueSuffix()}.tmp`;
  writeFileSync(temp, content, { flag: 'wx', mode: 0o644 });
  try {
    linkSync(temp, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      return createLockFileWithoutLink(file, content); // file systems without hard links
    }
    throw err;
  } finally {
    rmSync(temp, { force: true });
  }
}

function createLockFileWithoutLink(file: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Removes a takeover mutex left by a process that died holding it; true when one was removed. */
function clearAbandonedMutex(mutex: string): boolean {
  let seen;
  try {
    seen = statSync(mutex);
  } catch {
    return true; // gone already: try again at once
  }
  if (Date.now() - seen.mtimeMs < TAKEOVER_ABANDONED_MS) return false;
  try {
    // Only the directory judged old: not one another taker created since.
    if (statSync(mutex).ino === seen.ino) rmdirSync(mutex);
  } catch {
    // Someone else cleared it first.
  }
  return true;
}

function releaseMutex(mutex: string, ino: number): void {
  try {
    if (statSync(mutex).ino === ino) rmdirSync(mutex);
  } catch {
    // Already cleared as abandoned by another taker: nothing of ours to remove.
  }
}

/**
 * Replaces a stale lock file, under the `<lock>.takeover` mutex (an atomic mkdir), so
 * that of several processes that found the same stale lock only one replaces it.
 * Returns false when the caller should look at the lock file again.
 */
async function takeOverStaleLock(file: string, holder: DataDirHolder): Promise<boolean> {
  const mutex = `${file}.takeover`;
  try {
    mkdirSync(mutex);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!clearAbandonedMutex(mutex)) await sleep(20);
    return false;
  }
  const mutexIno = statSync(mutex).ino;
  try {
    // Re-check while holding the mutex: another taker may have replaced it since we looked.
    const state = readLockFile(file);
    if (!state.present) return createLockFile(file, holder);
    if (state.holder ? holderIsAlive(state.holder) : state.ageMs < UNREADABLE_GRACE_MS) return false;
    // Move the stale file aside rather than unlink it, to check it is the very file judged stale.
    const grave = `${file}.${uniqueSuffix()}.stale`;
    try {
      renameSync(file, grave);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    try {
      if (statSync(grave).ino !== state.ino) {
        // Not the stale file (another taker's fresh one): put it back, unless a lock is there again.
        try {
          linkSync(grave, file);
        } catch {
          // A newer lock is in place; it wins.
        }
        return false;
      }
    } finally {
      rmSync(grave, { force: true });
    }
    return createLockFile(file, holder);
  } finally {
    releaseMutex(mutex, mutexIno);
  }
}

export type LockAttempt = { lock: DataDirLock } | { heldBy: DataDirHolder };

/**
 * Takes the data folder's lock if no live process holds it (taking over a stale one),
 * or names the live holder. Touches nothing in the folder when it is held.
 */
export async function tryLockDataDir(dataDir: string, role: DataDirRole): Promise<LockAttempt> {
  const dir = path.resolve(dataDir);
  const file = lockFileIn(dir);
  for (;;) {
    const state = readLockFile(file);
    if (state.present) {
      if (state.holder && holderIsAlive(state.holder)) return { heldBy: state.holder };
      if (!state.holder && state.ageMs < UNREADABLE_GRACE_MS) {
        await sleep(50);
        continue;
      }
    }
    mkdirSync(dir, { recursive: true });
    const holder = newHolder(role);
    const won = state.present ? await takeOverStaleLock(file, holder) : createLockFile(file, holder);
    if (won) return { lock: new DataDirLock(dir, file, holder) };
  }
}

/** Takes the data folder's lock, or throws DataDirInUseError naming the live holder. */
export async function lockDataDir(dataDir: string, role: DataDirRole): Promise<DataDirLock> {
  const attempt = await tryLockDataDir(dataDir, role);
  if ('heldBy' in attempt) throw new DataDirInUseError(path.resolve(dataDir), attempt.heldBy);
  return attempt.lock;
}

/** A held lock. Released by `release()`, or at process exit as a last resort. */
export class DataDirLock {
  private released = false;
  // 'exit' handlers must be synchronous: release() is.
  private readonly releaseOnExit = () => this.release();

  constructor(
    readonly dataDir: string,
    readonly file: string,
    readonly holder: DataDirHolder,
  ) {
    process.on('exit', this.releaseOnExit);
  }

  get held(): boolean {
    return !this.released;
  }

  /** Removes the lock file if it still names this acquisition; idempotent, never throws. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.releaseOnExit);
    try {
      const state = readLockFile(this.file);
      if (state.present && state.holder?.token === this.holder.token) rmSync(this.file, { force: true });
    } catch {
      // A lock left behind names a process that is gone: the next start takes it over.
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
