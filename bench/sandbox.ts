import path from 'node:path';
import { Worker } from 'node:worker_threads';

/** The sandbox upstream of the benches, in a worker thread so that its CPU is not idgate's event loop. */
export interface BenchSandbox {
  /** The sandbox at latency 0 (the worker also runs one at 50 ms). */
  url: string;
  /** Calls the latency-0 sandbox has answered. */
  calls(): Promise<number>;
  close(): Promise<void>;
}

export function startSandbox(): Promise<BenchSandbox> {
  // The shared bench helper: sandboxes at latency 0 and 50 ms, dailyLimits off, in a worker thread.
  const worker = new Worker(path.join(__dirname, 'sandbox-worker.js'));
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { urls: Record<number, string> }) =>
      resolve({
        url: m.urls[0],
        calls: () =>
          new Promise((r) => {
            const onMessage = (s: { stats?: Record<number, { calls: number }> }) => {
              if (!s.stats) return;
              worker.off('message', onMessage);
              r(s.stats[0].calls);
            };
            worker.on('message', onMessage);
            worker.postMessage('stats');
          }),
        close: () =>
          new Promise((r) => {
            worker.once('exit', () => r());
            worker.postMessage('close');
          }),
      }),
    );
  });
}
