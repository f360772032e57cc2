import { ChildProcess, spawn } from 'node:child_process';
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
  const child = spawn(process.execPath, [path.join(ROOT, script), ...args], {
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
