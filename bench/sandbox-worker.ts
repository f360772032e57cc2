/* Runs the sandbox upstreams in their own thread, so the server and the client under test do not share an event loop. */
import { parentPort } from 'node:worker_threads';
import { startSandbox } from '../src/upstream/sandbox/sandbox-server';

async function main(): Promise<void> {
  const common = { host: '127.0.0.1', port: 0, dailyLimits: false as const };
  const fast = await startSandbox(common);
  const slow = await startSandbox({ ...common, faults: { latency: 50 } });
  parentPort?.postMessage({ urls: { 0: fast.url, 50: slow.url } });
  parentPort?.on('message', (message: unknown) => {
    if (message === 'stats') parentPort?.postMessage({ stats: { 0: fast.stats(), 50: slow.stats() } });
    if (message === 'close') void Promise.all([fast.close(), slow.close()]).then(() => process.exit(0));
  });
}

void main();
