import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ReusedSocketEvidence } from './upstream-response';

/**
 * Keep-alive agents for the upstream, with two additions to Node's:
 *
 * 1. **Idle sockets are retired** after `idleMs` in the pool (Node's `timeout` agent option,
 *    which `keepSocketAlive` applies to free sockets, lowered further by the server's
 *    `Keep-Alive: timeout=N` hint minus one second). Without an agent `timeout`, Node 20
 *    ignores that hint and keeps an idle socket until the server closes it, so a request can
 *    be written on a socket the server is closing at that very moment.
 *    The agent `timeout` is NOT applied to a socket while it connects (Node would otherwise
 *    arm it on every new socket): an active request is bounded by the client's own request
 *    timeout (the deadline the upstream adapter sets from axios' `timeout`) and nothing else.
 *
 * 2. **Evidence** of what happened on a reused socket, kept on the request (see
 *    `reusedSocketEvidence`): the socket's `bytesWritten` when it was handed to the
 *    request, and whether the peer's FIN had arrived before the request was fully sent.
 *    `interpretTransportError` uses it to tell a request that provably never left this
 *    machine (retried, not charged) from one that may have reached the upstream (never
 *    retried).
 */

/** Where the record of a reused socket is kept on its `ClientRequest`. */
export const REUSED_SOCKET_RECORD = Symbol('idgate.upstream.reusedSocket');

interface ReusedSocketRecord {
  readonly socket: Socket;
  /** `socket.bytesWritten` when the socket was handed to this request (earlier requests' bytes). */
  readonly bytesWrittenAtHandover: number | null;
  /** The request was completely handed to the kernel (`'finish'`). */
  requestSent: boolean;
  /** The peer's FIN had been received (`'end'`) before `'finish'`, or even before hand-over. */
  peerClosedBeforeRequestSent: boolean;
}

type RecordedRequest = http.ClientRequest & { [REUSED_SOCKET_RECORD]?: ReusedSocketRecord };

function byteCount(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** Called by the agents when a pooled socket is handed to a request. */
function recordHandover(duplex: Duplex, request: http.ClientRequest): void {
  const socket = duplex as Socket;
  // The idle timer is for the pool only; the request has its own deadline (upstream-adapter.ts).
  socket.setTimeout(0);
  const record: ReusedSocketRecord = {
    socket,
    bytesWrittenAtHandover: byteCount(socket.bytesWritten),
    requestSent: false,
    // Already half-closed by the peer: 'end' was emitted while the socket sat in the pool.
    peerClosedBeforeRequestSent: socket.readableEnded,
  };
  (request as RecordedRequest)[REUSED_SOCKET_RECORD] = record;

  const onPeerEnd = () => {
    if (!record.requestSent) record.peerClosedBeforeRequestSent = true;
  };
  socket.once('end', onPeerEnd);
  request.once('finish', () => {
    record.requestSent = true;
  });
  // The socket may go back to the pool for the next request: leave no listener behind.
  request.once('close', () => socket.removeListener('end', onPeerEnd));
}

/**
 * The evidence recorded for the request behind a transport error (the upstream adapter puts
 * the `ClientRequest` on `err.request`), or undefined when the request did not go out on a
 * reused socket. `bytesWrittenAtFailure` is read now, after the failure.
 */
export function reusedSocketEvidence(err: unknown): ReusedSocketEvidence | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const request = (err as { request?: unknown }).request;
  if (request === null || typeof request !== 'object') return undefined;
  const record = (request as RecordedRequest)[REUSED_SOCKET_RECORD];
  if (record === undefined) return undefined;
  return {
    bytesWrittenAtHandover: record.bytesWrittenAtHandover,
    bytesWrittenAtFailure: byteCount(record.socket.bytesWritten),
    peerClosedBeforeRequestSent: record.peerClosedBeforeRequestSent,
  };
}

/** Connection options without the agent's idle `timeout` (see the file comment). */
function withoutIdleTimeout<T extends object>(options: T): T {
  const copy = { ...options } as T & { timeout?: unknown };
  delete copy.timeout;
  return copy;
}

function agentOptions(idleMs: number): http.AgentOptions {
  // A hand-built config without the setting must not silently turn keep-alive off.
  if (!Number.isSafeInteger(idleMs) || idleMs < 0) {
    throw new RangeError(`keepAliveIdleMs must be a whole number of milliseconds >= 0, not ${String(idleMs)}`);
  }
  // 0: no keep-alive at all (`Connection: close`, one socket per request).
  return idleMs > 0 ? { keepAlive: true, timeout: idleMs, scheduling: 'lifo' } : { keepAlive: false };
}

export class UpstreamHttpAgent extends http.Agent {
  constructor(idleMs: number) {
    super(agentOptions(idleMs));
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return super.createConnection(withoutIdleTimeout(options), callback);
  }

  override reuseSocket(socket: Duplex, request: http.ClientRequest): void {
    super.reuseSocket(socket, request);
    recordHandover(socket, request);
  }
}

export class UpstreamHttpsAgent extends https.Agent {
  constructor(idleMs: number) {
    super(agentOptions(idleMs));
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return super.createConnection(withoutIdleTimeout(options), callback);
  }

  override reuseSocket(socket: Duplex, request: http.ClientRequest): void {
    super.reuseSocket(socket, request);
    recordHandover(socket, request);
  }
}
