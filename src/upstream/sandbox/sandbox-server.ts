import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RESULT_DESCRIPTIONS, UpstreamResultCode } from '../upstream.types';
import { Decision, decide } from './answer';
import {
  drawFault,
  FaultName,
  FaultPlan,
  FaultRates,
  parseFaultRates,
  parseFaultSpec,
  POST_DECISION_FAULTS,
  seededRandom,
  validateFaultRates,
} from './faults';
import identities from './fixtures/identities.json';
import { IdentityRegister, SyntheticIdentity } from './identity-register';
import { inRange, parseStatementBound, renderStatementCsv, StatementEntry, StatementRange } from './statement';
import { GENESIS_PREV } from '../../audit/checkpoint';
import { parseWitnessRecord, WitnessRecord, witnessRecordDigest } from '../../audit/witness/witness-record';

export const SANDBOX_VERIFY_PATH = '/identity/idcard/ocr';
const MAX_BODY_BYTES = 1024 * 1024;

export interface StartSandboxOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: the sandbox is for this machine. */
  host?: string;
  /** The only bearer token accepted; any non-empty token when absent. */
  token?: string;
  /** Fault rates (and a fixed latency), as an object or as `latency=50,http500=0.05`. */
  faults?: FaultRates | string;
  /** Seed for drawing faults from the rates; random when absent. */
  seed?: number;
  /** Price of a charged call in minor units (default 50). */
  price?: number;
  /**
   * Whether a call hit by a post-decision fault (timeout, reset, http500, garbage,
   * unknown_result, wrong_types) whose decision was 0 or -1 is charged and on the
   * statement. Default true: the vendor charged, the caller never learnt it.
   * The `charged` / `uncharged` fault tokens override it per request.
   */
  chargeFaultedCalls?: boolean;
  /** Tencent's per-day limits (same name 500, same ID number 1000 → -7); false turns them off. */
  dailyLimits?: { perName: number; perIdCard: number } | false;
  /** The register; the committed fixture by default. */
  identities?: readonly SyntheticIdentity[];
  /** The clock (tests). */
  now?: () => Date;
  /**
   * How long an idle keep-alive connection is kept (ms, default 5000), as Node's
   * `server.keepAliveTimeout`; Node announces it as `Keep-Alive: timeout=<seconds>`.
   */
  keepAliveTimeout?: number;
}

export interface SandboxStats {
  /** Every request received on the verify endpoint, whatever happened to it. */
  calls: number;
  /** Calls on the statement. */
  charged: number;
  /** Calls by what the caller got: a result code ("0" … "-7") or http_400, http_401, http_429, http_500, timeout, reset, garbage, unknown_result, wrong_types. */
  by_result: Record<string, number>;
}

export interface SandboxHandle {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  stats(): SandboxStats;
  statement(range?: StatementRange): StatementEntry[];
  statementCsv(range?: StatementRange): string;
  /** Faults (header syntax) applied to the next verify calls, one spec per call, in order. */
  queueFaults(...specs: string[]): void;
  /** Forgets calls, statement, queued faults and daily counters. */
  reset(): void;
  /** The test audit witness at /witness (docs/audit.md): what it holds, and whether it answers. */
  witness: {
    records(): WitnessRecord[];
    /** false: /witness answers 503 (an unreachable witness), until set back. */
    setAvailable(available: boolean): void;
  };
  /** Stops listening and drops open connections (including calls held by `timeout`). */
  close(): Promise<void>;
}

export const SANDBOX_WITNESS_PATH = '/witness';

type Json = Record<string, unknown>;

function sendJson(res: ServerResponse, status: number, body: Json, traceId: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-trace-id': traceId,
  });
  res.end(text);
}

function errorBody(code: string, message: string, traceId: string): Json {
  return { success: false, error: { code, message }, trace_id: traceId };
}

function bearerToken(req: IncomingMessage): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match ? match[1] : null;
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too_large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? 'too_large' : Buffer.concat(chunks)));
    req.on('error', () => resolve('aborted'));
    req.on('close', () => {
      if (!req.complete) resolve('aborted');
    });
  });
}

/**
 * Starts the sandbox upstream: a real HTTP server speaking the vendor's contract, with
 * a synthetic register, fault injection, a vendor statement and call counters.
 */
export async function startSandbox(options: StartSandboxOptions = {}): Promise<SandboxHandle> {
  const rates = resolveRates(options.faults);
  const random = options.seed === undefined ? Math.random : seededRandom(options.seed);
  const price = options.price ?? 50;
  const chargeFaultedCalls = options.chargeFaultedCalls ?? true;
  const limits = options.dailyLimits === undefined ? { perName: 500, perIdCard: 1000 } : options.dailyLimits;
  const register = new IdentityRegister(options.identities ?? (identities as SyntheticIdentity[]));
  const now = options.now ?? (() => new Date());

  let stats: SandboxStats = { calls: 0, charged: 0, by_result: {} };
  let statement: StatementEntry[] = [];
  let queued: FaultPlan[] = [];
  let daily = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();

  const count = (key: string) => {
    stats.by_result[key] = (stats.by_result[key] ?? 0) + 1;
  };

  const wait = (ms: number) =>
    ms <= 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            resolve();
          }, ms);
          timers.add(timer);
        });

  /** Tencent-style daily limits: true when this call goes over one of them. */
  const overDailyLimit = (subject: NonNullable<Decision['subject']>, at: Date): boolean => {
    if (limits === false) return false;
    const day = at.toISOString().slice(0, 10);
    const bump = (key: string) => {
      const n = (daily.get(key) ?? 0) + 1;
      daily.set(key, n);
      return n;
    };
    const byName = bump(`${day}|n|${subject.name}`);
    const byNumber = bump(`${day}|i|${subject.idCard}`);
    return byName > limits.perName || byNumber > limits.perIdCard;
  };

  const planFor = (req: IncomingMessage): { ok: true; plan: FaultPlan } | { ok: false; error: string } => {
    const header = req.headers['x-sandbox-fault'];
    const text = Array.isArray(header) ? header.join(',') : header;
    let plan: FaultPlan = {};
    if (text !== undefined && text.trim() !== '') {
      const parsed = parseFaultSpec(text);
      if (!parsed.ok) return { ok: false, error: parsed.error };
      plan = parsed.value;
    } else if (queued.length > 0) {
      plan = queued.shift() as FaultPlan;
    }
    if (plan.fault === undefined) plan = { ...plan, fault: drawFault(rates, random()) };
    if (plan.latencyMs === undefined && rates.latency !== undefined) plan = { ...plan, latencyMs: rates.latency };
    return { ok: true, plan };
  };

  async function handleVerify(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Counted on arrival, before anything can fail: tests prove "not called" with it.
    stats.calls++;
    const traceId = randomUUID();
    const receivedAt = now();
    const planned = planFor(req);
    const latency = planned.ok ? (planned.plan.latencyMs ?? 0) : 0;
    const token = bearerToken(req);
    const body = await readBody(req);
    if (body === 'aborted') return void count('aborted');

    const respond = async (status: number, json: Json, key: string) => {
      count(key);
      await wait(latency);
      if (!res.destroyed) sendJson(res, status, json, traceId);
    };

    if (token === null || (options.token !== undefined && token !== options.token)) {
      return respond(401, errorBody('invalid_token', 'The specified token is invalid or wrong.', traceId), 'http_401');
    }
    if (!planned.ok) {
      return respond(400, errorBody('bad_request', `Invalid X-Sandbox-Fault: ${planned.error}.`, traceId), 'http_400');
    }
    if (body === 'too_large') {
      return respond(400, errorBody('bad_request', 'The request body is too large.', traceId), 'http_400');
    }
    const { fault, charged: chargeOverride } = planned.plan;
    if (fault === 'http429') {
      return respond(429, errorBody('too_many_requests', 'You have exceeded the rate limit.', traceId), 'http_429');
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return respond(400, errorBody('bad_request', 'The request body is not valid JSON.', traceId), 'http_400');
    }
    const decided = decide(parsed, register, receivedAt);
    if (!decided.ok) return respond(400, errorBody('bad_request', decided.message, traceId), 'http_400');

    let { result } = decided.decision;
    const { fields, subject } = decided.decision;
    if (fault === 'daily_limit') result = '-7';
    else if (fault === 'db_error') result = '-4';
    else if (fault === 'upgrading') result = '-6';
    else if (subject && (result === '0' || result === '-1' || result === '-5') && overDailyLimit(subject, receivedAt)) {
      result = '-7';
    }

    // The vendor has decided. A post-decision fault hides the answer, not the charge.
    const isPostDecision = fault !== undefined && POST_DECISION_FAULTS.includes(fault);
    const chargeable = result === '0' || result === '-1';
    if (chargeable && (!isPostDecision || (chargeOverride ?? chargeFaultedCalls))) {
      statement.push({ trace_id: traceId, called_at: receivedAt.toISOString(), result, charged: true, amount: price });
      stats.charged++;
    }

    const answer: Json = { result, description: RESULT_DESCRIPTIONS[result as UpstreamResultCode], ...fields };
    answer.trace_id = traceId;
    if (!isPostDecision) return respond(200, answer, result);
    return deliverFault(fault as FaultName, answer);

    async function deliverFault(name: FaultName, json: Json): Promise<void> {
      switch (name) {
        case 'timeout':
          // Accept and never answer; the connection stays open until the caller gives up.
          count('timeout');
          return;
        case 'reset':
          count('reset');
          await wait(latency);
          req.socket.destroy();
          return;
        case 'http500':
          return respond(500, errorBody('api_error', 'fetch failed', traceId), 'http_500');
        case 'garbage': {
          count('garbage');
          await wait(latency);
          const text = JSON.stringify(json).slice(0, 40);
          if (!res.destroyed) {
            res.writeHead(200, { 'content-type': 'application/json', 'x-trace-id': traceId });
            res.end(text);
          }
          return;
        }
        case 'unknown_result':
          return respond(200, { ...json, result: '-9', description: 'Unknown' }, 'unknown_result');
        case 'wrong_types':
          return respond(200, { ...json, result: Number(json.result) }, 'wrong_types');
        default:
          return respond(500, errorBody('api_error', 'unexpected fault', traceId), 'http_500');
      }
    }
  }

  function handleStatement(url: URL, res: ServerResponse): void {
    const from = parseStatementBound(url.searchParams.get('from'));
    const to = parseStatementBound(url.searchParams.get('to'));
    if (from === null || to === null) {
      const traceId = randomUUID();
      return sendJson(res, 400, errorBody('bad_request', 'from and to must be ISO 8601 dates.', traceId), traceId);
    }
    const csv = renderStatementCsv(statement.filter((e) => inRange(e, { from, to })));
    res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-length': Buffer.byteLength(csv) });
    res.end(csv);
  }

  // A test audit witness: one history of records, each naming the one before (as CT logs keep one tree).
  const witnessRecords: WitnessRecord[] = [];
  const witnessDigests = new Set<string>();
  let witnessAvailable = true;

  async function handleWitness(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const traceId = randomUUID();
    if (!witnessAvailable) {
      return sendJson(res, 503, errorBody('unavailable', 'The witness is not available.', traceId), traceId);
    }
    if (req.method === 'GET') {
      const after = Math.max(0, Number(url.searchParams.get('after') ?? 0) || 0);
      const limit = Math.min(10_000, Math.max(0, Number(url.searchParams.get('limit') ?? 1000) || 0));
      return sendJson(
        res,
        200,
        { count: witnessRecords.length, records: witnessRecords.slice(after, after + limit) as unknown as Json[] },
        traceId,
      );
    }
    const body = await readBody(req);
    if (body === 'aborted') return;
    let record: WitnessRecord | string;
    try {
      record = body === 'too_large' ? 'too large' : parseWitnessRecord(JSON.parse(body.toString('utf8')));
    } catch {
      record = 'not JSON';
    }
    if (typeof record === 'string') {
      return sendJson(res, 400, errorBody('bad_request', `Not a witness record: ${record}.`, traceId), traceId);
    }
    const digest = witnessRecordDigest(record);
    if (witnessDigests.has(digest)) return sendJson(res, 200, { count: witnessRecords.length }, traceId);
    const latest = witnessRecords.length
      ? witnessRecordDigest(witnessRecords[witnessRecords.length - 1])
      : GENESIS_PREV;
    if (record.prev !== latest) {
      return sendJson(res, 409, { count: witnessRecords.length, latest_digest: latest }, traceId);
    }
    witnessRecords.push(record);
    witnessDigests.add(digest);
    sendJson(res, 201, { count: witnessRecords.length }, traceId);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    if (url.pathname === SANDBOX_WITNESS_PATH && (req.method === 'GET' || req.method === 'POST')) {
      handleWitness(req, res, url).catch(() => {
        if (!res.headersSent) res.destroy();
      });
      return;
    }
    if (req.method === 'POST' && url.pathname === SANDBOX_VERIFY_PATH) {
      handleVerify(req, res).catch(() => {
        if (!res.headersSent) res.destroy();
      });
      return;
    }
    const traceId = randomUUID();
    const token = bearerToken(req);
    if (req.method === 'GET' && (url.pathname === '/stats' || url.pathname === '/statement')) {
      if (token === null || (options.token !== undefined && token !== options.token)) {
        return sendJson(
          res,
          401,
          errorBody('invalid_token', 'The specified token is invalid or wrong.', traceId),
          traceId,
        );
      }
      if (url.pathname === '/stats')
        return sendJson(res, 200, { ...stats, by_result: { ...stats.by_result } }, traceId);
      return handleStatement(url, res);
    }
    sendJson(res, 400, errorBody('api_not_implemented', 'The API is not implemented.', traceId), traceId);
  });
  // Callers keep connections alive; a short idle timeout is the upstream's business, not ours.
  server.keepAliveTimeout = options.keepAliveTimeout ?? 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    stats: () => ({ ...stats, by_result: { ...stats.by_result } }),
    statement: (range = {}) => statement.filter((e) => inRange(e, range)),
    statementCsv: (range = {}) => renderStatementCsv(statement.filter((e) => inRange(e, range))),
    queueFaults(...specs: string[]) {
      for (const spec of specs) {
        const parsed = parseFaultSpec(spec);
        if (!parsed.ok) throw new Error(`Invalid fault spec "${spec}": ${parsed.error}`);
        queued.push(parsed.value);
      }
    },
    witness: {
      records: () => [...witnessRecords],
      setAvailable(available: boolean) {
        witnessAvailable = available;
      },
    },
    reset() {
      stats = { calls: 0, charged: 0, by_result: {} };
      statement = [];
      queued = [];
      daily = new Map();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function resolveRates(faults: FaultRates | string | undefined): FaultRates {
  if (faults === undefined) return {};
  const parsed = typeof faults === 'string' ? parseFaultRates(faults) : validateFaultRates(faults);
  if (!parsed.ok) throw new Error(`Invalid sandbox fault rates: ${parsed.error}`);
  return parsed.value;
}
