import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { REUSED_SOCKET_RECORD, reusedSocketEvidence, UpstreamHttpAgent, UpstreamHttpsAgent } from './upstream-agent';

/*
 * The agents' own behaviour, against a plain HTTP server on loopback. Nothing here waits for
 * a timer: timeouts are read from the sockets, not waited for.
 */
describe('upstream agents', () => {
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
    });
    server.keepAliveTimeout = 5_000; // announced as `Keep-Alive: timeout=5`
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** One GET through `agent`; resolves with the socket once the agent has pooled it (or dropped it). */
  function get(agent: http.Agent): Promise<{ socket: Socket; request: http.ClientRequest; pooled: boolean }> {
    return new Promise((resolve, reject) => {
      const request = http.get({ host: '127.0.0.1', port, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          const socket = request.socket as Socket;
          // The agent pools (or destroys) the socket on the tick after 'end'.
          setImmediate(() => {
            const pooled = Object.values(agent.freeSockets).some((list) => list?.includes(socket));
            resolve({ socket, request, pooled });
          });
        });
      });
      request.on('error', reject);
    });
  }

  it('retires a pooled socket after the idle time', async () => {
    const agent = new UpstreamHttpAgent(3_000);
    try {
      const { socket, pooled } = await get(agent);
      expect(pooled).toBe(true);
      expect(socket.timeout).toBe(3_000);
    } finally {
      agent.destroy();
    }
  });

  it("lowers it to the server's Keep-Alive hint minus 1 s, which a plain Node agent ignores", async () => {
    const ours = new UpstreamHttpAgent(60_000);
    const plain = new http.Agent({ keepAlive: true });
    try {
      expect((await get(ours)).socket.timeout).toBe(4_000);
      // Node 20 without an agent timeout: no idle timer at all, the server's close decides.
      expect((await get(plain)).socket.timeout ?? 0).toBe(0);
    } finally {
      ours.destroy();
      plain.destroy();
    }
  });

  it('keeps no socket alive with an idle time of 0', async () => {
    const agent = new UpstreamHttpAgent(0);
    try {
      const { socket, pooled } = await get(agent);
      expect(pooled).toBe(false);
      expect(socket.destroyed).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('does not arm the idle timer on a socket that is still connecting (it would cut the request)', () => {
    const ours = new UpstreamHttpAgent(200);
    const plain = new http.Agent({ keepAlive: true, timeout: 200 });
    const options = { host: '127.0.0.1', port, timeout: 200 };
    const mine = ours.createConnection(options) as Socket;
    const theirs = plain.createConnection(options) as Socket;
    try {
      expect(mine.timeout ?? 0).toBe(0);
      expect(theirs.timeout).toBe(200);
    } finally {
      mine.destroy();
      theirs.destroy();
    }
  });

  it('does not arm it on a TLS socket either', () => {
    const agent = new UpstreamHttpsAgent(200);
    const socket = agent.createConnection({ host: '127.0.0.1', port, timeout: 200, servername: 'localhost' }) as Socket;
    socket.on('error', () => undefined); // not a TLS server: the handshake fails, which is not the point
    try {
      expect(socket.timeout ?? 0).toBe(0);
    } finally {
      socket.destroy();
      agent.destroy();
    }
  });

  it('records a reused socket: bytes written at hand-over, no idle timer while in use, listeners removed after', async () => {
    const agent = new UpstreamHttpAgent(3_000);
    try {
      const first = await get(agent);
      expect((first.request as unknown as Record<symbol, unknown>)[REUSED_SOCKET_RECORD]).toBeUndefined();
      const written = first.socket.bytesWritten;
      const endListeners = first.socket.listenerCount('end');

      let timeoutInUse: number | undefined;
      const second = await new Promise<{ socket: Socket; request: http.ClientRequest }>((resolve, reject) => {
        const request = http.get({ host: '127.0.0.1', port, agent }, (res) => {
          timeoutInUse = (request.socket as Socket).timeout;
          res.resume();
          res.on('end', () => setImmediate(() => resolve({ socket: request.socket as Socket, request })));
        });
        request.on('error', reject);
      });
      expect(second.socket).toBe(first.socket);
      expect(second.request.reusedSocket).toBe(true);
      expect(timeoutInUse ?? 0).toBe(0);
      // As the client reads it after a failure (axios puts the request on `err.request`).
      expect(reusedSocketEvidence({ request: second.request })).toEqual({
        bytesWrittenAtHandover: written,
        bytesWrittenAtFailure: second.socket.bytesWritten,
        peerClosedBeforeRequestSent: false,
      });
      expect(second.socket.bytesWritten).toBeGreaterThan(written);
      expect(second.socket.listenerCount('end')).toBe(endListeners);
      expect(second.socket.timeout).toBe(3_000); // back in the pool
    } finally {
      agent.destroy();
    }
  });

  it('refuses an idle time that is not a whole number of milliseconds', () => {
    for (const idleMs of [undefined, -1, 1.5, Number.NaN]) {
      expect(() => new UpstreamHttpAgent(idleMs as number)).toThrow(RangeError);
      expect(() => new UpstreamHttpsAgent(idleMs as number)).toThrow(RangeError);
    }
  });

  it('finds no evidence where there is none', () => {
    for (const err of [undefined, null, 'x', new Error('x'), { request: null }, { request: {} }]) {
      expect(reusedSocketEvidence(err)).toBeUndefined();
    }
  });
});
