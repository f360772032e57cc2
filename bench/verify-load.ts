/*
 * The load generator of bench:verify, in a worker thread of its own so that building
 * requests and reading answers does not run on the app's event loop (it still shares
 * the machine's cores). Sends `count` POST /v1/verifications from `concurrency`
 * keep-alive connections, stops early at `deadlineMs`, and posts back every latency.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort } from 'node:worker_threads';
import identities from '../src/upstream/sandbox/fixtures/identities.json';

export interface LoadOrder {
  url: string;
  /** Connection k sends with apiKeys[k mod length]. */
  apiKeys: string[];
  count: number;
  concurrency: number;
  /** Distinct references: `${referencePrefix}-${i}`. */
  referencePrefix: string;
  /** Wall-clock bound for the whole run (ms from start). */
  deadlineMs: number;
}

export interface LoadReport {
  /** Milliseconds, one per completed request, in completion order. */
  latencies: Float64Array;
  sent: number;
  elapsedMs: number;
  /** HTTP status → count. */
  statuses: Record<string, number>;
  /** `status/result` of the verification in 201 bodies → count. */
  outcomes: Record<string, number>;
  /** First transport error or unexpected body, if any. */
  firstError: string | null;
  timedOut: boolean;
}

export function runLoad(order: LoadOrder): Promise<LoadReport> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: order.concurrency });
  const target = new URL('/v1/verifications', order.url);
  const latencies = new Float64Array(order.count);
  const statuses: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  let firstError: string | null = null;
  let next = 0;
  let done = 0;
  let timedOut = false;
  const started = performance.now();

  const one = (i: number, apiKey: string) =>
    new Promise<void>((resolve) => {
      const person = identities[i % identities.length];
      const body = JSON.stringify({
        name: person.name,
        id_card: person.id_card,
        reference: `${order.referencePrefix}-${i}`,
      });
      const t0 = performance.now();
      const req = http.request(
        target,
        {
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${apiKey}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            latencies[done++] = performance.now() - t0;
            const status = String(res.statusCode);
            statuses[status] = (statuses[status] ?? 0) + 1;
            try {
              const v = JSON.parse(text) as { status?: string; result?: string };
              if (res.statusCode === 201) {
                const key = `${v.status}/${v.result}`;
                outcomes[key] = (outcomes[key] ?? 0) + 1;
              } else firstError ??= `HTTP ${status}: ${text.slice(0, 300)}`;
            } catch {
              firstError ??= `HTTP ${status}, unparseable body: ${text.slice(0, 300)}`;
            }
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        latencies[done++] = performance.now() - t0;
        statuses.error = (statuses.error ?? 0) + 1;
        firstError ??= err.message;
        resolve();
      });
      req.end(body);
    });

  const loop = async (k: number) => {
    const apiKey = order.apiKeys[k % order.apiKeys.length];
    while (next < order.count) {
      if (performance.now() - started > order.deadlineMs) {
        timedOut = true;
        return;
      }
      await one(next++, apiKey);
    }
  };
  return Promise.all(Array.from({ length: order.concurrency }, (_, k) => loop(k))).then(() => {
    const elapsedMs = performance.now() - started;
    agent.destroy();
    return {
      latencies: latencies.slice(0, done),
      sent: next,
      elapsedMs,
      statuses,
      outcomes,
      firstError,
      timedOut,
    };
  });
}

// As a worker: run each order posted, answer with its report; 'close' ends the thread.
if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', (order: LoadOrder | 'close') => {
    if (order === 'close') port.close();
    else void runLoad(order).then((report) => port.postMessage(report, [report.latencies.buffer as ArrayBuffer]));
  });
}
