import { SandboxHandle, startSandbox } from '../../src/upstream/sandbox/sandbox-server';
import { UpstreamOutcome } from '../../src/upstream/upstream.types';
import {
  ClientUnderTest,
  countAcceptedConnections,
  createUpstreamClient,
  eventually,
  KNOWN,
  RawUpstream,
  startRawUpstream,
  watchClientSockets,
} from './support';

/*
 * Keep-alive sockets to the upstream, through the real UpstreamClient (HttpModule, the upstream
 * adapter on node:http, the upstream agents, the retry policy) against real servers on loopback.
 *
 * No assertion races one clock against another: where a test sleeps, the sleep is longer
 * than the client's idle timer by hundreds of milliseconds, and both are timers of this one
 * event loop, which fires them in order of expiry however busy the machine is. The server's
 * own idle timeout is never raced: it is either far longer than the sleep or irrelevant.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function retries(t: ClientUnderTest, cause: string): Promise<number> {
  const text = await t.metrics.registry.metrics();
  const match = new RegExp(`idgate_upstream_retries_total\\{cause="${cause}"\\} (\\d+)`).exec(text);
  return match ? Number(match[1]) : 0;
}

function expectAnsweredOnce(outcome: UpstreamOutcome): void {
  expect(outcome).toMatchObject({ kind: 'answered', result: '0', attempts: 1 });
}

describe('idle keep-alive sockets are retired before the upstream closes them (sandbox)', () => {
  // The sandbox closes idle connections after 2 s (Node adds 1 s of grace) and announces
  // `Keep-Alive: timeout=2`, which Node's agent turns into 1 s (the hint minus 1 s).
  const SERVER_IDLE_MS = 2_000;
  let sandbox: SandboxHandle;
  let accepted: ReturnType<typeof countAcceptedConnections>;

  beforeAll(async () => {
    sandbox = await startSandbox({ keepAliveTimeout: SERVER_IDLE_MS });
    accepted = countAcceptedConnections(sandbox.port);
  });
  afterAll(async () => {
    accepted.stop();
    await sandbox.close();
  });

  it('sequential calls spaced across the idle timeouts are all answered, on new connections after idling', async () => {
    const t = await createUpstreamClient({ baseUrl: sandbox.url, keepAliveIdleMs: 300, timeoutMs: 10_000 });
    const before = accepted.count();
    const connections = () => accepted.count() - before;
    try {
      expectAnsweredOnce(await t.client.verify(KNOWN));
      expect(connections()).toBe(1);

      // Longer than the server's idle timeout (2 s + 1 s grace): whoever closed first, a new connection.
      await sleep(SERVER_IDLE_MS + 1_300);
      expectAnsweredOnce(await t.client.verify(KNOWN));
      expect(connections()).toBe(2);

      // Longer than the client's 300 ms, far shorter than the server's 2 s: only the client
      // can have retired the socket, and it did.
      await sleep(800);
      expectAnsweredOnce(await t.client.verify(KNOWN));
      expect(connections()).toBe(3);

      // Back to back: the socket is reused.
      expectAnsweredOnce(await t.client.verify(KNOWN));
      expect(connections()).toBe(3);

      expect(sandbox.stats()).toMatchObject({ calls: 4 });
      expect(sandbox.stats().by_result).toEqual({ '0': 4 });
      const metrics = await t.metrics.registry.metrics();
      expect(metrics).not.toMatch(/outcome="indeterminate"/);
      expect(await retries(t, 'reused_socket_closed')).toBe(0);
    } finally {
      await t.close();
    }
  });

  it("honours the server's Keep-Alive hint when it is shorter than the client's idle time", async () => {
    // Client idle 3 s; the hint says 2 s, Node's agent keeps 1 s of margin: retired after 1 s.
    const t = await createUpstreamClient({ baseUrl: sandbox.url, keepAliveIdleMs: 3_000, timeoutMs: 10_000 });
    const before = accepted.count();
    try {
      expectAnsweredOnce(await t.client.verify(KNOWN));
      await sleep(1_600); // past the hinted 1 s, well before the server's 2 s (+1 s grace)
      expectAnsweredOnce(await t.client.verify(KNOWN));
      expect(accepted.count() - before).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('does not cut an active request: a slow answer longer than the idle time is answered (fresh and reused socket)', async () => {
    const t = await createUpstreamClient({ baseUrl: sandbox.url, keepAliveIdleMs: 200, timeoutMs: 10_000 });
    const before = accepted.count();
    try {
      // A new socket: 1 s of upstream latency against a 200 ms idle time.
      const fresh = await t.client.verify(KNOWN, { sandboxFault: 'latency=1000' });
      expectAnsweredOnce(fresh);
      expect(fresh.durationMs).toBeGreaterThan(900); // slow indeed, and not cut at 200 ms
      // Straight away, so on the same (reused) socket, slow again.
      const reused = await t.client.verify(KNOWN, { sandboxFault: 'latency=1000' });
      expectAnsweredOnce(reused);
      expect(accepted.count() - before).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('keepAliveIdleMs 0: no socket is reused', async () => {
    const t = await createUpstreamClient({ baseUrl: sandbox.url, keepAliveIdleMs: 0, timeoutMs: 10_000 });
    const before = accepted.count();
    try {
      for (let i = 0; i < 3; i++) expectAnsweredOnce(await t.client.verify(KNOWN));
      expect(accepted.count() - before).toBe(3);
    } finally {
      await t.close();
    }
  });
});

describe('a reset on a reused keep-alive socket (raw server)', () => {
  let raw: RawUpstream | undefined;
  let t: ClientUnderTest | undefined;
  afterEach(async () => {
    await t?.close();
    await raw?.close();
    t = undefined;
    raw = undefined;
  });

  it('after the request was sent: indeterminate (connection_reset), never retried', async () => {
    // Answers the first request; reads the second on the same connection in full, then RST.
    raw = await startRawUpstream((_connection, index) => (index === 1 ? 'answer' : 'reset'));
    t = await createUpstreamClient({ baseUrl: raw.url, token: 'tok', keepAliveIdleMs: 60_000 });

    expectAnsweredOnce(await t.client.verify(KNOWN));
    const outcome = await t.client.verify(KNOWN);
    expect(outcome).toMatchObject({ kind: 'indeterminate', reason: 'connection_reset', attempts: 1 });
    // One connection, and exactly one copy of the second request: it was not retried.
    expect(raw.connections).toHaveLength(1);
    expect(raw.requests).toHaveLength(2);
    expect(raw.requests.map((r) => r.connection)).toEqual([1, 1]);
    expect(JSON.parse(raw.requests[1].body)).toEqual(KNOWN);
    expect(await retries(t, 'reused_socket_closed')).toBe(0);
  });

  it('closed (FIN) after the request was sent, without an answer: indeterminate, never retried', async () => {
    // As an upstream that read the request and then went away: the FIN comes after the request.
    raw = await startRawUpstream((_connection, index) => (index === 1 ? 'answer' : 'close'));
    t = await createUpstreamClient({ baseUrl: raw.url, token: 'tok', keepAliveIdleMs: 60_000 });

    expectAnsweredOnce(await t.client.verify(KNOWN));
    const outcome = await t.client.verify(KNOWN);
    expect(outcome).toMatchObject({ kind: 'indeterminate', reason: 'connection_reset', attempts: 1 });
    expect(raw.connections).toHaveLength(1);
    expect(raw.requests.map((r) => r.connection)).toEqual([1, 1]);
    expect(await retries(t, 'reused_socket_closed')).toBe(0);
  });

  /**
   * The keep-alive race, made deterministic: the next call starts at the moment the client
   * has read the upstream's FIN on the pooled socket, before Node has closed that socket, so
   * the agent still hands it over. `start` says when, relative to Node ending our side of
   * the socket (which it does on the next tick after the FIN).
   *
   * Node 24 closes a pooled socket as it reads the FIN, without an 'end' first: the agent can
   * no longer hand such a socket over, and the race cannot be set up. The call then starts at
   * the 'close' and must go out on a fresh connection, answered at once (`raced: false`).
   */
  async function callWhenPooledSocketEnds(
    server: RawUpstream,
    client: ClientUnderTest,
    closeConnection: () => void,
    start: 'at-once' | 'after-our-end',
  ): Promise<{ outcome: UpstreamOutcome; raced: boolean }> {
    const clientSockets = watchClientSockets(server.port);
    try {
      expectAnsweredOnce(await client.client.verify(KNOWN));
      expect(clientSockets.sockets).toHaveLength(1);
      const [pooled] = clientSockets.sockets;
      const outcome = new Promise<{ outcome: UpstreamOutcome; raced: boolean }>((resolve, reject) => {
        let started = false;
        const begin = (raced: boolean) => {
          if (started) return;
          started = true;
          const call = () => client.client.verify(KNOWN).then((o) => resolve({ outcome: o, raced }), reject);
          // Microtasks run after the tick in which Node ends our side of the socket.
          if (start === 'at-once' || !raced) call();
          else void Promise.resolve().then(call);
        };
        pooled.once('end', () => begin(true));
        pooled.once('close', () => begin(false));
      });
      closeConnection();
      return await outcome;
    } finally {
      clientSockets.stop();
    }
  }

  it('the upstream closed the connection (FIN) before the request was sent on it: retried as unsent, answered', async () => {
    raw = await startRawUpstream(() => 'answer');
    t = await createUpstreamClient({ baseUrl: raw.url, token: 'tok', keepAliveIdleMs: 60_000 });
    const server = raw;

    // As an HTTP server retiring an idle connection: FIN, and whatever arrives after is reset
    // by the kernel. The request is written after the FIN was read: the peer had closed first.
    const { outcome, raced } = await callWhenPooledSocketEnds(
      server,
      t,
      () => server.connections[0].close(),
      'at-once',
    );

    // Handed the closed socket (the race): one unsent attempt, retried. Not handed it: one attempt.
    expect(outcome).toMatchObject({ kind: 'answered', result: '0', attempts: raced ? 2 : 1 });
    expect(await retries(t, 'reused_socket_closed')).toBe(raced ? 1 : 0);
    // The closed connection carried only the first call; the second went out on a new one.
    expect(server.connections).toHaveLength(2);
    expect(server.connections[0].requests).toBe(1);
    expect(server.requests.map((r) => r.connection)).toEqual([1, 2]);
  });

  it('a socket handed over after both sides had ended it: not one byte written, retried as unsent, answered', async () => {
    raw = await startRawUpstream(() => 'answer');
    t = await createUpstreamClient({ baseUrl: raw.url, token: 'tok', keepAliveIdleMs: 60_000 });
    const server = raw;

    // The upstream half-closes (and keeps reading, so it can tell what arrives after its FIN).
    const { outcome, raced } = await callWhenPooledSocketEnds(
      server,
      t,
      () => server.connections[0].finish(),
      'after-our-end',
    );

    expect(outcome).toMatchObject({ kind: 'answered', result: '0', attempts: raced ? 2 : 1 });
    expect(await retries(t, 'reused_socket_closed')).toBe(raced ? 1 : 0);
    // Not one byte of the second call reached the old connection.
    expect(server.connections).toHaveLength(2);
    expect(server.connections[0].bytesAfterFin).toBe(0);
    expect(server.requests.map((r) => r.connection)).toEqual([1, 2]);
  });

  it('a pooled socket destroyed on our side before the request was written: retried as unsent, answered', async () => {
    // Two connections in the pool, released in a known order: the first is answered first.
    raw = await startRawUpstream(() => 'hold');
    const clientSockets = watchClientSockets(raw.port);
    t = await createUpstreamClient({ baseUrl: raw.url, token: 'tok', keepAliveIdleMs: 60_000 });
    const server = raw;
    try {
      const first = t.client.verify(KNOWN);
      const second = t.client.verify(KNOWN);
      await eventually(() => server.requests.length === 2);
      server.connections[0].answer();
      expectAnsweredOnce(await first);
      server.connections[1].answer();
      expectAnsweredOnce(await second);

      // The pool is [socket 1, socket 2]; the agent hands out the most recent (LIFO), socket 2.
      // Destroy it as the idle timer would, and call at once, before it has been removed.
      const socket2 = clientSockets.sockets.find((s) => s.localPort === server.connections[1].socket.remotePort);
      expect(socket2).toBeDefined();
      const bytesBefore = server.connections[1].bytesReceived;
      socket2?.destroy();
      const pending = t.client.verify(KNOWN);
      await eventually(() => server.requests.length === 3);
      server.connections[0].answer();
      const outcome = await pending;

      expect(outcome).toMatchObject({ kind: 'answered', result: '0', attempts: 2 });
      expect(await retries(t, 'reused_socket_closed')).toBe(1);
      expect(server.connections[1].bytesReceived).toBe(bytesBefore);
      expect(server.connections).toHaveLength(2);
      expect(server.requests.map((r) => r.connection)).toEqual([1, 2, 1]);
    } finally {
      clientSockets.stop();
    }
  });
});
