/*
 * npm run bench:upstream — calls per second the UpstreamClient sustains against the sandbox
 * (sandbox latency 0 and 50 ms, 64 concurrent callers), beside the same load sent straight
 * at the sandbox with a plain node:http client. Loopback only; bounded in time
 * (BENCH_SECONDS per measurement, default 5, after a 1 s warm-up).
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppConfig } from '../src/config/app-config';
import { ConfigModule } from '../src/config/config.module';
import identities from '../src/upstream/sandbox/fixtures/identities.json';
import { UpstreamClient } from '../src/upstream/upstream.client';
import { UpstreamModule } from '../src/upstream/upstream.module';

const CONCURRENCY = 64;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = 1;
/** Sandbox latencies to measure; BENCH_LATENCIES=0 (or 50) runs one, e.g. for profiling. */
const LATENCIES = (process.env.BENCH_LATENCIES ?? '0,50')
  .split(',')
  .map(Number)
  .filter((ms) => ms === 0 || ms === 50);

interface Result {
  calls: number;
  failures: number;
  seconds: number;
  meanMs: number;
}

/** Runs `call` from CONCURRENCY loops: warm-up, then counts completions for SECONDS. */
async function load(call: (i: number) => Promise<boolean>): Promise<Result> {
  let measuring = false;
  let stop = false;
  let calls = 0;
  let failures = 0;
  let totalMs = 0;
  let i = 0;
  const loop = async () => {
    while (!stop) {
      const started = performance.now();
      const ok = await call(i++);
      if (!measuring) continue;
      calls++;
      totalMs += performance.now() - started;
      if (!ok) failures++;
    }
  };
  const loops = Array.from({ length: CONCURRENCY }, loop);
  await new Promise((r) => setTimeout(r, WARMUP_SECONDS * 1000));
  measuring = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(loops);
  return { calls, failures, seconds, meanMs: calls ? totalMs / calls : 0 };
}

const bodies = identities.map((p) => JSON.stringify({ name: p.name, id_card: p.id_card }));

/** The baseline: a plain keep-alive HTTP client that reads and parses each answer. */
function rawCaller(baseUrl: string): { call: (i: number) => Promise<boolean>; close(): void } {
  const agent = new http.Agent({ keepAlive: true });
  const url = new URL('/identity/idcard/ocr', baseUrl);
  const call = (i: number) =>
    new Promise<boolean>((resolve) => {
      const body = bodies[i % bodies.length];
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            accept: 'application/json',
            authorization: 'Bearer bench',
            'content-type': 'application/json',
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
  return { call, close: () => agent.destroy() };
}

async function clientCaller(baseUrl: string) {
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
      keepAliveIdleMs: 3000,
      mode: 'sandbox',
    },
    sandbox: { port: 0 },
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
  return { call, close: () => app.close() };
}

function startWorker(): Promise<{ worker: Worker; urls: Record<number, string> }> {
  const worker = new Worker(path.join(__dirname, 'sandbox-worker.js'));
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { urls: Record<number, string> }) => resolve({ worker, urls: m.urls }));
  });
}

const fmt = (n: number, width = 10) => n.toFixed(0).padStart(width);

async function main(): Promise<void> {
  const { worker, urls } = await startWorker();
  const out = (line: string) => process.stdout.write(line + '\n');
  out(`upstream bench: ${CONCURRENCY} concurrent callers, ${SECONDS} s per run after ${WARMUP_SECONDS} s warm-up`);
  out(
    `node ${process.version}, ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? 'unknown'}); sandbox in a worker thread, loopback`,
  );
  out('');
  out(
    'latency   UpstreamClient calls/s   plain http calls/s   client/plain   client mean ms   plain mean ms   failures',
  );
  try {
    for (const latency of LATENCIES) {
      const client = await clientCaller(urls[latency]);
      const viaClient = await load(client.call);
      await client.close();
      const raw = rawCaller(urls[latency]);
      const viaRaw = await load(raw.call);
      raw.close();
      const clientRate = viaClient.calls / viaClient.seconds;
      const rawRate = viaRaw.calls / viaRaw.seconds;
      out(
        `${`${latency} ms`.padEnd(9)} ${fmt(clientRate, 22)}   ${fmt(rawRate, 18)}   ${(clientRate / rawRate).toFixed(2).padStart(12)}` +
          `   ${viaClient.meanMs.toFixed(1).padStart(14)}   ${viaRaw.meanMs.toFixed(1).padStart(13)}   ${viaClient.failures + viaRaw.failures}`,
      );
    }
  } finally {
    worker.postMessage('close');
    await new Promise((r) => worker.once('exit', r));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
