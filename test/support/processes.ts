import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
  /** Resolves with the first stdout match of `pattern`, or rejects when the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
}

/** Runs a compiled entry point (`npm test` builds dist/ first) with a controlled environment. */
export function spawnNode(script: string, args: string[], env: Record<string, string | undefined>): Spawned {
  return spawnCommand(process.execPath, [path.join(ROOT, script), ...args], env);
}

/** The postmaster of an embedded cluster left under `<dataDir>/pg` (a killed process's), stopped. */
export async function stopClusterIn(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs any command with a controlled environment, its output captured. */
export function spawnCommand(command: string, args: string[], env: Record<string, string | undefined>): Spawned {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            child.stdout!.off('data', check);
            resolve(m);
          }
        };
        child.stdout!.on('data', check);
        check();
        void exit.then((code) => reject(new Error(`exited with ${code} before ${pattern}: ${err.slice(-2000)}`)));
      });
    },
  };
}

/** Runs a CLI command to completion. */
export async function runCli(args: string[], env: Record<string, string | undefined>) {
  const p = spawnNode('dist/cli/main.js', args, env);
  const code = await p.exit;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
