import { createServer } from 'node:net';
import { LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { AppConfig } from '../../src/config/app-config';
import { ConfigModule } from '../../src/config/config.module';
import { UpstreamCircuit } from '../../src/upstream/upstream-circuit';
import { UpstreamClient } from '../../src/upstream/upstream.client';
import { UpstreamMetrics } from '../../src/upstream/upstream.metrics';
import { UpstreamModule } from '../../src/upstream/upstream.module';
import { testConfig } from '../support/test-app';

/** Collects every log line so tests can check what was (not) logged. */
export class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  log(message: unknown) {
    this.lines.push(`log ${String(message)}`);
  }
  error(message: unknown) {
    this.lines.push(`error ${String(message)}`);
  }
  warn(message: unknown) {
    this.lines.push(`warn ${String(message)}`);
  }
  debug(message: unknown) {
    this.lines.push(`debug ${String(message)}`);
  }
  verbose(message: unknown) {
    this.lines.push(`verbose ${String(message)}`);
  }
}

export interface ClientUnderTest {
  client: UpstreamClient;
  circuit: UpstreamCircuit;
  metrics: UpstreamMetrics;
  logger: CapturingLogger;
  close(): Promise<void>;
}

/** The real UpstreamModule wiring (HttpModule, cockatiel policies) with the given upstream settings. */
export async function createUpstreamClient(
  upstream: Partial<AppConfig['upstream']>,
  sandbox: Partial<AppConfig['sandbox']> = {},
): Promise<ClientUnderTest> {
  const config = testConfig('postgresql://unused', {
    upstream: { maxAttempts: 3, retryBaseDelayMs: 5, retryMaxDelayMs: 20, breakerThreshold: 1000, ...upstream },
    sandbox,
  });
  const logger = new CapturingLogger();
  const moduleRef = await Test.createTestingModule({ imports: [ConfigModule.forRoot(config), UpstreamModule] })
    .setLogger(logger)
    .compile();
  await moduleRef.init();
  return {
    client: moduleRef.get(UpstreamClient),
    circuit: moduleRef.get(UpstreamCircuit),
    metrics: moduleRef.get(UpstreamMetrics),
    logger,
    close: () => moduleRef.close(),
  };
}

/** A port nothing listens on: bind one, note it, close it. */
export async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `condition` until true; fails after `timeoutMs` (generous: slow CI machines). */
export async function eventually(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Identities from the committed register. */
export const KNOWN = { name: '张伟', id_card: '360426199101010071' };
export const KNOWN_FEMALE = { name: '李娜', id_card: '440305199505132561' };
/** Valid number (check character right) that is not in the register. */
export const UNREGISTERED_ID_CARD = '11010119900307123' + '3';
