import diagnostics from 'node:diagnostics_channel';
import { AddressInfo, createServer, Socket } from 'node:net';
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

/** Client sockets this process connects to `port`, in the order they connect (diagnostics channel `net.client.socket`). */
export function watchClientSockets(port: number): { sockets: Socket[]; stop(): void } {
  const sockets: Socket[] = [];
  const onSocket = (message: unknown) => {
    const socket = (message as { socket: Socket }).socket;
    socket.once('connect', () => {
      if (socket.remotePort === port) sockets.push(socket);
    });
  };
  diagnostics.subscribe('net.client.socket', onSocket);
  return { sockets, stop: () => diagnostics.unsubscribe('net.client.socket', onSocket) };
}

/** Connections accepted by the server listening on `port` in this process (diagnostics channel `net.server.socket`). */
export function countAcceptedConnections(port: number): { count(): number; stop(): void } {
  let count = 0;
  const onSocket = (message: unknown) => {
    if ((message as { socket: Socket }).socket.localPort === port) count++;
  };
  diagnostics.subscribe('net.server.socket', onSocket);
  return { count: () => count, stop: () => diagnostics.unsubscribe('net.server.socket', onSocket) };
}

/** A well-formed upstream answer, as the raw server sends it. */
export function rawAnswerBody(traceId: string): string {
  return JSON.stringify({
    result: '0',
    description: 'The name and ID card number are consistent',
    name: '',
    id_card: '',
    sex: '',
    nation: '',
    birth: '',
    address: '',
    trace_id: traceId,
  });
}

export interface RawConnection {
  /** 1, 2, … in the order the server accepted them. */
  readonly id: number;
  readonly socket: Socket;
  /** Complete requests received on this connection. */
  requests: number;
  /** Every byte received on this connection. */
  bytesReceived: number;
  /** Bytes received after the server sent its FIN (`finish()`). */
  bytesAfterFin: number;
  finSent: boolean;
  /** Answers the oldest request held on this connection. */
  answer(): void;
  /** Sends FIN (half-close: the server still reads and counts what arrives, and answers nothing more). */
  finish(): void;
  /** Closes the connection as an HTTP server closing an idle one does (FIN; the kernel resets anything that arrives). */
  close(): void;
}

/**
 * What the raw server does with a complete request: answer it (keep-alive), hold it, reset
 * the connection (RST), or close it without answering (FIN).
 */
export type RawAction = 'answer' | 'hold' | 'reset' | 'close';

export interface RawUpstream {
  readonly url: string;
  readonly port: number;
  readonly connections: RawConnection[];
  /** Every complete request received: the connection it came on and its body. */
  readonly requests: { connection: number; body: string }[];
  close(): Promise<void>;
}

/**
 * A minimal HTTP/1.1 upstream on `node:net`, so a test controls the connection itself: it
 * answers with `Connection: keep-alive` and no idle timeout, and `decide` picks what happens
 * to each complete request (by its index on its connection, from 1).
 */
export async function startRawUpstream(
  decide: (connection: RawConnection, indexOnConnection: number) => RawAction,
): Promise<RawUpstream> {
  const connections: RawConnection[] = [];
  const requests: { connection: number; body: string }[] = [];
  let traceIds = 0;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    let buffer = Buffer.alloc(0);
    const held: string[] = [];
    const respond = () => {
      const traceId = held.shift();
      if (traceId === undefined || socket.destroyed || connection.finSent) return;
      const body = rawAnswerBody(traceId);
      socket.write(
        'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: keep-alive\r\n' +
          `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    };
    const connection: RawConnection = {
      id: connections.length + 1,
      socket,
      requests: 0,
      bytesReceived: 0,
      bytesAfterFin: 0,
      finSent: false,
      answer: respond,
      finish() {
        connection.finSent = true;
        socket.end();
      },
      close() {
        connection.finSent = true;
        socket.destroy();
      },
    };
    connections.push(connection);
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end());
    socket.on('data', (chunk: Buffer) => {
      connection.bytesReceived += chunk.length;
      if (connection.finSent) connection.bytesAfterFin += chunk.length;
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const head = buffer.subarray(0, headEnd).toString('latin1');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < headEnd + 4 + length) return;
        const body = buffer.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8');
        buffer = buffer.subarray(headEnd + 4 + length);
        connection.requests++;
        requests.push({ connection: connection.id, body });
        held.push(`raw-${++traceIds}`);
        const action = decide(connection, connection.requests);
        if (action === 'reset') return void socket.resetAndDestroy();
        if (action === 'close') return void connection.close();
        if (action === 'answer') respond();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const connection of connections) connection.socket.destroy();
        server.close(() => resolve());
      }),
  };
}
