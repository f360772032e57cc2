import http from 'node:http';

/** One HTTP exchange over loopback, read in full. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** A string or Buffer is sent as is; anything else as JSON. */
  body?: unknown;
  /** Gives up (rejects) after this long; default 60 s, so that a hang fails the test instead of stalling it. */
  timeoutMs?: number;
  /** Another agent than the shared one (at most 64 sockets), e.g. for more concurrent requests. */
  agent?: http.Agent;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * A raw HTTP request: the path is sent byte for byte as given (odd query strings
 * stay odd), unlike fetch or supertest, which normalise URLs.
 */
export function send(baseUrl: string, method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const base = new URL(baseUrl);
  let payload: Buffer | undefined;
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) {
    if (typeof options.body === 'string' || Buffer.isBuffer(options.body)) {
      payload = Buffer.from(options.body);
    } else {
      payload = Buffer.from(JSON.stringify(options.body));
      headers['content-type'] ??= 'application/json';
    }
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers,
        agent: options.agent ?? agent,
        timeout: options.timeoutMs ?? 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`${method} ${path}: no answer within ${options.timeoutMs ?? 60_000} ms`)),
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** Runs `work` over `items` with at most `concurrency` at a time; results in input order. */
export async function inParallel<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i], i);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** Polls `probe` until it returns a value other than undefined, at most `attempts` times. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  attempts: number,
  intervalMs: number,
  what: string,
): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`gave up waiting for ${what} after ${attempts} tries`);
}

export interface VerificationView {
  id: string;
  status: string;
  result: string | null;
  charged: boolean | null;
  charge_status: string;
  reference: string | null;
  upstream_trace_id: string | null;
}

/** Every verification the key may see, through GET /v1/verifications and its cursor. */
export async function listAllVerifications(baseUrl: string, key: string, maxPages = 200): Promise<VerificationView[]> {
  const all: VerificationView[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const query: string = `limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await send(baseUrl, 'GET', `/v1/verifications?${query}`, { headers: bearer(key) });
    if (res.status !== 200) throw new Error(`GET /v1/verifications answered ${res.status}: ${res.text.slice(0, 500)}`);
    const body = res.json as { items: VerificationView[]; next_cursor: string | null };
    all.push(...body.items);
    cursor = body.next_cursor;
    if (!cursor) return all;
  }
  throw new Error(`more than ${maxPages} pages of verifications`);
}
