/*
 * npm run bench:upstream — calls per second the UpstreamClient sustains against the sandbox
 * (sandbox latency 0 and 50 ms, 64 concurrent callers), beside the same load sent straight
 * at the sandbox with a plain node:http client. Loopback only; bounded in time.
 *
 * Fair to both sides: the same 64 callers, the same request (bodies and headers), and the same
 * keep-alive agent settings (LIFO, idle sockets retired after 3 s, no socket limit: each side
 * opens as many connections as it has callers, and the table shows how many it opened). The two
 * run interleaved, in slices (ABBA order) of BENCH_SLICE_SECONDS (default 1) adding up to
 * BENCH_SECONDS (default 5) each, so that a busy machine weighs on both alike; each slice starts
 * after a short warm-up. The plain client sets no timeout and validates nothing beyond the
 * answer's `result`: it is the floor, not a rival implementation.
 *
 * Columns: calls/s of each; client/plain, the ratio of the totals, with the lowest and highest
 * ratio of the slice pairs; cpu µs/call, the main thread's CPU time per call (user + system, so
 * syscalls included, from /proc/thread-self/stat; the sandbox runs in its own thread), which a
 * busy machine disturbs less than calls/s; mean ms per call; connections each side opened;
 * failures.
 *
 * BENCH_LATENCIES=0 (or 50) runs one latency, e.g. for profiling (node --cpu-prof).
 */
import diagnostics from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import axios from 'axios';
import { AppConfig } from '../src/config/app-config';
import { ConfigModule } from '../src/config/config.module';
import identities from '../src/upstream/sandbox/fixtures/identities.json';
import { UpstreamClient, upstreamBody } from '../src/upstream/upstream.client';
import { UpstreamModule } from '../src/upstream/upstream.module';

const CONCURRENCY = 64;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SLICE_SECONDS = Number(process.env.BENCH_SLICE_SECONDS ?? 1);
const SLICE_WARMUP_MS = 200;
const WARMUP_SECONDS = 1;
const KEEPALIVE_IDLE_MS = 3000;
const TOKEN = 'bench';
const LATENCIES = (process.env.BENCH_LATENCIES ?? '0,50')
  .split(',')
  .map(Number)
  .filter((ms) => ms === 0 || ms === 50);

type Call = (i: number) => Promise<boolean>;

interface Caller {
  call: Call;
  /** Connections this side opened to the sandbox. */
  connections: number;
  close(): Promise<void>;
}

interface Tally {
  calls: number;
  failures: number;
  seconds: number;
  totalMs: number;
  cpuMs: number;
}

const newTally = (): Tally => ({ calls: 0, failures: 0, seconds: 0, totalMs: 0, cpuMs: 0 });

/**
 * CPU time of the calling thread in ms (Linux: /proc/thread-self/stat, in clock ticks of 10 ms);
 * elsewhere, the event loop's busy time (which also counts time the thread was preempted).
 */
function threadCpuMs(): number {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime (fields 14 and 15)
  } catch {
    return performance.eventLoopUtilization().active;
  }
}

/** The side whose slice is running: connections opened meanwhile are its own (for the table). */
let running: Caller | null = null;
diagnostics.subscribe('net.client.socket', () => {
  if (running) running.connections++;
});

/** One slice of `side`: CONCURRENCY loops; counts completions after SLICE_WARMUP_MS for `seconds`. */
async function slice(side: Caller, seconds: number, into: Tally): Promise<void> {
  const call = side.call;
  running = side;
  let measuring = false;
  let stop = false;
  let i = 0;
  let calls = 0;
  const loop = async () => {
    while (!stop) {
      const started = performance.now();
      const ok = await call(i++);
      if (!measuring) continue;
      calls++;
      into.totalMs += performance.now() - started;
      if (!ok) into.failures++;
    }
  };
  const loops = Array.from({ length: CONCURRENCY }, loop);
  await sleep(SLICE_WARMUP_MS);
  measuring = true;
  const cpu = threadCpuMs();
  const started = performance.now();
  await sleep(seconds * 1000);
  measuring = false;
  into.seconds += (performance.now() - started) / 1000;
  into.cpuMs += threadCpuMs() - cpu;
  into.calls += calls;
  stop = true;
  await Promise.all(loops);
  running = null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Exactly the bodies the client sends (upstreamBody, then JSON), one per identity. */
const bodies = identities.map((p) => JSON.stringify(upstreamBody({ name: p.name, id_card: p.id_card })));

/**
 * The baseline: a plain node:http client with the agent settings of the upstream client's agent
 * (without what it adds: no reused-socket evidence), sending the same headers, reading each
 * answer and parsing it.
 */
function plainCaller(baseUrl: string): Caller {
  // UpstreamHttpAgent's options (upstream-agent.ts): keep-alive, LIFO, idle sockets retired.
  const agent = new http.Agent({ keepAlive: true, timeout: KEEPALIVE_IDLE_MS, scheduling: 'lifo' });
  const url = new URL('/identity/idcard/ocr', baseUrl);
  const options = { hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent };
  const call = (i: number) =>
    new Promise<boolean>((resolve) => {
      const body = bodies[i % bodies.length];
      const req = http.request(
        {
          ...options,
          // What UpstreamClient sends (see upstream-adapter.ts), in the same order.
          headers: {
            accept: 'application/json',
            authorization: `Bearer ${TOKEN}`,
            'content-type': 'application/json',
            'user-agent': `axios/${axios.VERSION}`,
            'accept-encoding': 'identity',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            try {
              resolve(res.statusCode === 200 && typeof (JSON.parse(text) as { result?: unknown }).result === 'string');
            } catch {
              resolve(false);
            }
          });
        },
      );
      req.on('error', () => resolve(false));
      req.end(body);
    });
  return { call, connections: 0, close: async () => agent.destroy() };
}

async function clientCaller(baseUrl: string): Promise<Caller> {
  // Only what UpstreamModule reads; the rest of AppConfig is irrelevant here.
  const config = {
    upstream: {
      baseUrl,
      timeoutMs: 10_000,
      maxAttempts: 3,
      retryBaseDelayMs: 200,
      retryMaxDelayMs: 2000,
      breakerThreshold: 1_000_000,
      breakerCooldownMs: 30_000,
      keepAliveIdleMs: KEEPALIVE_IDLE_MS,
      mode: 'sandbox',
    },
    sandbox: { port: 0, token: TOKEN },
  } as unknown as AppConfig;

  @Module({ imports: [ConfigModule.forRoot(config), UpstreamModule] })
  class BenchModule {}

  const app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error'] });
  const client = app.get(UpstreamClient);
  const call = async (i: number) => {
    const person = identities[i % identities.length];
    const outcome = await client.verify({ name: person.name, id_card: person.id_card });
    return outcome.kind === 'answered';
  };
  return { call, connections: 0, close: () => app.close() };
}

function startWorker(): Promise<{ worker: Worker; urls: Record<number, string> }> {
  const worker = new Worker(path.join(__dirname, 'sandbox-worker.js'));
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { urls: Record<number, string> }) => resolve({ worker, urls: m.urls }));
  });
}

async function measure(latency: number, url: string): Promise<string> {
  const client = await clientCaller(url);
  const plain = plainCaller(url);
  try {
    // Warm both up (JIT, connections) before anything is counted.
    await slice(client, WARMUP_SECONDS, newTally());
    await slice(plain, WARMUP_SECONDS, newTally());
    const viaClient = newTally();
    const viaPlain = newTally();
    const pairRatios: number[] = [];
    const slices = Math.max(1, Math.round(SECONDS / SLICE_SECONDS));
    for (let n = 0; n < slices; n++) {
      // ABBA: neither side always runs first (or always right after the other).
      const order = n % 2 === 0 ? [client, plain] : [plain, client];
      const pair = new Map<Caller, Tally>([
        [client, newTally()],
        [plain, newTally()],
      ]);
      for (const side of order) await slice(side, SLICE_SECONDS, pair.get(side) as Tally);
      const c = pair.get(client) as Tally;
      const p = pair.get(plain) as Tally;
      pairRatios.push(c.calls / c.seconds / (p.calls / p.seconds));
      for (const [into, from] of [
        [viaClient, c],
        [viaPlain, p],
      ]) {
        into.calls += from.calls;
        into.failures += from.failures;
        into.seconds += from.seconds;
        into.totalMs += from.totalMs;
        into.cpuMs += from.cpuMs;
      }
    }
    const clientRate = viaClient.calls / viaClient.seconds;
    const plainRate = viaPlain.calls / viaPlain.seconds;
    const cpuUs = (t: Tally) => ((t.cpuMs * 1000) / t.calls).toFixed(0);
    const meanMs = (t: Tally) => (t.totalMs / t.calls).toFixed(1);
    const ratio = `${(clientRate / plainRate).toFixed(2)} (${Math.min(...pairRatios).toFixed(2)}–${Math.max(...pairRatios).toFixed(2)})`;
    return [
      `${latency} ms`.padEnd(7),
      fmt(clientRate, 14),
      fmt(plainRate, 10),
      ratio.padStart(17),
      `${cpuUs(viaClient)} / ${cpuUs(viaPlain)}`.padStart(18),
      `${meanMs(viaClient)} / ${meanMs(viaPlain)}`.padStart(13),
      `${client.connections} / ${plain.connections}`.padStart(11),
      String(viaClient.failures + viaPlain.failures).padStart(8),
    ].join('  ');
  } finally {
    await client.close();
    await plain.close();
  }
}

const fmt = (n: number, width: number) => n.toFixed(0).padStart(width);

async function main(): Promise<void> {
  const { worker, urls } = await startWorker();
  const out = (line: string) => process.stdout.write(line + '\n');
  out(
    `upstream bench: ${CONCURRENCY} concurrent callers each side, ${SECONDS} s each, interleaved in ${SLICE_SECONDS} s slices`,
  );
  out(
    `node ${process.version}, ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? 'unknown'}); sandbox in a worker thread, loopback`,
  );
  out('');
  out(
    'latency  client calls/s  plain calls/s  client/plain (min–max)  cpu µs/call c / p  mean ms c / p  conns c / p  failures',
  );
  try {
    for (const latency of LATENCIES) out(await measure(latency, urls[latency]));
  } finally {
    worker.postMessage('close');
    await new Promise((r) => worker.once('exit', r));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
