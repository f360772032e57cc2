import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SandboxHandle, startSandbox } from '../../src/upstream/sandbox/sandbox-server';
import { chargeOf } from '../../src/upstream/upstream.types';
import {
  ClientUnderTest,
  closedPort,
  createUpstreamClient,
  eventually,
  KNOWN,
  KNOWN_FEMALE,
  UNREGISTERED_ID_CARD,
  UUID,
} from './support';

/*
 * The real UpstreamClient against the real sandbox over loopback. No mocked HTTP; the
 * sandbox's own counters prove how many requests reached it. No assertion depends on speed.
 */
describe('UpstreamClient against the sandbox', () => {
  let sandbox: SandboxHandle;
  let t: ClientUnderTest;

  beforeAll(async () => {
    sandbox = await startSandbox({ price: 50 });
    t = await createUpstreamClient({ baseUrl: sandbox.url, timeoutMs: 10_000 });
  });
  afterAll(async () => {
    await t.close();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  describe('answers', () => {
    it('0: consistent, charged, on the statement under the same trace id', async () => {
      const outcome = await t.client.verify(KNOWN);
      expect(outcome).toMatchObject({
        kind: 'answered',
        result: '0',
        charged: true,
        description: 'The name and ID card number are consistent',
        fields: { name: KNOWN.name, id_card: KNOWN.id_card, sex: '', nation: '', birth: '', address: '' },
        httpStatus: 200,
        attempts: 1,
      });
      if (outcome.kind !== 'answered') throw new Error('unreachable');
      expect(outcome.traceId).toMatch(UUID);
      expect(sandbox.statement()).toEqual([
        { trace_id: outcome.traceId, called_at: expect.any(String), result: '0', charged: true, amount: 50 },
      ]);
      expect(sandbox.stats()).toEqual({ calls: 1, charged: 1, by_result: { '0': 1 } });
    });

    it('-1: inconsistent name, charged', async () => {
      const outcome = await t.client.verify({ name: '张三', id_card: KNOWN.id_card });
      expect(outcome).toMatchObject({ kind: 'answered', result: '-1', charged: true, attempts: 1 });
      expect(sandbox.stats().charged).toBe(1);
    });

    it.each([
      ['-2', { name: '张三', id_card: '110101199003071234' }],
      ['-3', { name: '张三1', id_card: KNOWN.id_card }],
      ['-5', { name: '张三', id_card: UNREGISTERED_ID_CARD }],
    ])('%s: not charged, not on the statement, not retried', async (result, request) => {
      const outcome = await t.client.verify(request);
      expect(outcome).toMatchObject({ kind: 'answered', result, charged: false, attempts: 1 });
      expect(chargeOf(outcome)).toBe(false);
      expect(sandbox.stats()).toMatchObject({ calls: 1, charged: 0 });
    });

    it('image mode: OCR fields of the identity behind …/idcard/<id_card>.jpg', async () => {
      const outcome = await t.client.verify({
        image_url: `https://images.example.com/uploads/idcard/${KNOWN_FEMALE.id_card}.jpg?sig=abc`,
      });
      expect(outcome).toMatchObject({
        kind: 'answered',
        result: '0',
        charged: true,
        fields: {
          name: '李娜',
          id_card: KNOWN_FEMALE.id_card,
          sex: '女',
          nation: '汉',
          birth: '1995/5/13',
          address: expect.stringContaining('深圳市'),
        },
      });
    });

    it('image mode: an unrecognisable image is a 400 rejection, never charged', async () => {
      const outcome = await t.client.verify({ image_url: 'https://images.example.com/cat.jpg' });
      expect(outcome).toMatchObject({ kind: 'rejected', httpStatus: 400, errorCode: 'bad_request', attempts: 1 });
      expect(chargeOf(outcome)).toBe(false);
    });
  });

  describe('faults that may hide a charge: called exactly once', () => {
    it('timeout: indeterminate, one call only, and the hidden charge is on the statement', async () => {
      const impatient = await createUpstreamClient({ baseUrl: sandbox.url, timeoutMs: 300 });
      try {
        const outcome = await impatient.client.verify(KNOWN, { sandboxFault: 'timeout' });
        expect(outcome).toMatchObject({ kind: 'indeterminate', reason: 'timeout', attempts: 1 });
        expect(chargeOf(outcome)).toBeNull();
        // The sandbox holds the request; let it finish booking it on a slow machine.
        await eventually(() => sandbox.stats().by_result.timeout === 1);
        expect(sandbox.stats()).toEqual({ calls: 1, charged: 1, by_result: { timeout: 1 } });
        expect(sandbox.statement()).toHaveLength(1);
      } finally {
        await impatient.close();
      }
    });

    it('timeout,uncharged: the fault struck before the vendor decided, nothing on the statement', async () => {
      const impatient = await createUpstreamClient({ baseUrl: sandbox.url, timeoutMs: 300 });
      try {
        const outcome = await impatient.client.verify(KNOWN, { sandboxFault: 'timeout,uncharged' });
        expect(outcome).toMatchObject({ kind: 'indeterminate', reason: 'timeout', attempts: 1 });
        await eventually(() => sandbox.stats().by_result.timeout === 1);
        expect(sandbox.stats()).toMatchObject({ calls: 1, charged: 0 });
      } finally {
        await impatient.close();
      }
    });

    it.each([
      ['reset', { reason: 'connection_reset', httpStatus: null }],
      ['http500', { reason: 'server_error', httpStatus: 500, errorCode: 'api_error' }],
      ['garbage', { reason: 'malformed_response', httpStatus: 200 }],
      ['unknown_result', { reason: 'unknown_result', httpStatus: 200 }],
      ['wrong_types', { reason: 'malformed_response', httpStatus: 200 }],
      ['latency=20,http500', { reason: 'server_error', httpStatus: 500 }],
    ])('%s: indeterminate, not retried', async (fault, expected) => {
      const outcome = await t.client.verify(KNOWN, { sandboxFault: fault });
      expect(outcome).toMatchObject({ kind: 'indeterminate', attempts: 1, ...expected });
      expect(chargeOf(outcome)).toBeNull();
      expect(sandbox.stats().calls).toBe(1);
      // The sandbox decided "0" before the fault: charged, though the caller cannot know.
      expect(sandbox.stats().charged).toBe(1);
    });

    it('http500 carries the upstream trace id, which matches the statement line', async () => {
      const outcome = await t.client.verify(KNOWN, { sandboxFault: 'http500' });
      if (outcome.kind !== 'indeterminate') throw new Error(`unexpected ${outcome.kind}`);
      expect(outcome.traceId).toMatch(UUID);
      expect(sandbox.statement().map((e) => e.trace_id)).toEqual([outcome.traceId]);
    });
  });

  describe('safe retries: bounded, only where nothing was charged', () => {
    it('http429 every time: retried up to the bound (3 attempts), then rejected', async () => {
      const outcome = await t.client.verify(KNOWN, { sandboxFault: 'http429' });
      expect(outcome).toMatchObject({ kind: 'rejected', httpStatus: 429, errorCode: 'too_many_requests', attempts: 3 });
      expect(sandbox.stats()).toEqual({ calls: 3, charged: 0, by_result: { http_429: 3 } });
    });

    it('http429 once: the retry is answered, and charged exactly once', async () => {
      sandbox.queueFaults('http429');
      const outcome = await t.client.verify(KNOWN);
      expect(outcome).toMatchObject({ kind: 'answered', result: '0', charged: true, attempts: 2 });
      expect(sandbox.stats()).toEqual({ calls: 2, charged: 1, by_result: { http_429: 1, '0': 1 } });
    });

    it('db_error (-4) every time: retried up to the bound, the last -4 stands, not charged', async () => {
      const outcome = await t.client.verify(KNOWN, { sandboxFault: 'db_error' });
      expect(outcome).toMatchObject({ kind: 'answered', result: '-4', charged: false, attempts: 3 });
      expect(sandbox.stats()).toEqual({ calls: 3, charged: 0, by_result: { '-4': 3 } });
    });

    it('latency combined with db_error: still retried within the bound', async () => {
      const outcome = await t.client.verify(KNOWN, { sandboxFault: 'latency=30,db_error' });
      expect(outcome).toMatchObject({ kind: 'answered', result: '-4', attempts: 3 });
      expect(sandbox.stats().calls).toBe(3);
    });

    it('upgrading (-6) once, then answered', async () => {
      sandbox.queueFaults('upgrading');
      const outcome = await t.client.verify(KNOWN);
      expect(outcome).toMatchObject({ kind: 'answered', result: '0', attempts: 2 });
      expect(sandbox.stats()).toMatchObject({ calls: 2, charged: 1 });
    });

    it('daily_limit (-7) is final: not charged and not retried', async () => {
      const outcome = await t.client.verify(KNOWN, { sandboxFault: 'daily_limit' });
      expect(outcome).toMatchObject({ kind: 'answered', result: '-7', charged: false, attempts: 1 });
      expect(sandbox.stats().calls).toBe(1);
    });

    it('connection refused: nothing sent, retried up to the bound, definitely not charged', async () => {
      const nobody = await createUpstreamClient({ baseUrl: `http://127.0.0.1:${await closedPort()}` });
      try {
        const outcome = await nobody.client.verify(KNOWN);
        expect(outcome).toMatchObject({ kind: 'unsent', reason: 'connection_refused', attempts: 3 });
        expect(chargeOf(outcome)).toBe(false);
      } finally {
        await nobody.close();
      }
    });

    it('a 401 (wrong token) is rejected once, not retried', async () => {
      const guarded = await startSandbox({ token: 'the-right-token' });
      const wrong = await createUpstreamClient({ baseUrl: guarded.url, token: 'a-wrong-token' });
      try {
        const outcome = await wrong.client.verify(KNOWN);
        expect(outcome).toMatchObject({ kind: 'rejected', httpStatus: 401, errorCode: 'invalid_token', attempts: 1 });
        if (outcome.kind === 'rejected') expect(outcome.traceId).toMatch(UUID);
        expect(guarded.stats()).toEqual({ calls: 1, charged: 0, by_result: { http_401: 1 } });
        // And the right token works.
        const right = await createUpstreamClient({ baseUrl: guarded.url, token: 'the-right-token' });
        await expect(right.client.verify(KNOWN)).resolves.toMatchObject({ kind: 'answered', result: '0' });
        await right.close();
      } finally {
        await wrong.close();
        await guarded.close();
      }
    });

    it('a fault header the sandbox does not understand is a 400 rejection', async () => {
      const outcome = await t.client.verify(KNOWN, { sandboxFault: 'meteor_strike' });
      expect(outcome).toMatchObject({ kind: 'rejected', httpStatus: 400, errorCode: 'bad_request', attempts: 1 });
    });
  });

  describe('circuit breaker', () => {
    it('opens after repeated failures and then answers at once without calling', async () => {
      const fragile = await createUpstreamClient({
        baseUrl: sandbox.url,
        breakerThreshold: 3,
        breakerCooldownMs: 60_000,
      });
      try {
        for (let i = 0; i < 3; i++) {
          await expect(fragile.client.verify(KNOWN, { sandboxFault: 'http500' })).resolves.toMatchObject({
            kind: 'indeterminate',
          });
        }
        expect(fragile.client.circuitState().state).toBe('open');
        const refused = await fragile.client.verify(KNOWN);
        expect(refused).toMatchObject({ kind: 'unsent', reason: 'circuit_open', attempts: 0 });
        if (refused.kind !== 'unsent') throw new Error('unreachable');
        expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
        expect(refused.retryAfterSeconds).toBeLessThanOrEqual(60);
        expect(chargeOf(refused)).toBe(false);
        expect(sandbox.stats().calls).toBe(3);
        const metrics = await fragile.metrics.registry.metrics();
        expect(metrics).toContain('idgate_upstream_circuit_state 1');
        expect(metrics).toMatch(/idgate_upstream_calls_total\{outcome="unsent",result="",reason="circuit_open"\} 1/);
      } finally {
        await fragile.close();
      }
    });

    it('stops retrying when the breaker opens mid-retry; the last non-charged answer stands', async () => {
      const fragile = await createUpstreamClient({
        baseUrl: sandbox.url,
        breakerThreshold: 2,
        breakerCooldownMs: 60_000,
      });
      try {
        const outcome = await fragile.client.verify(KNOWN, { sandboxFault: 'db_error' });
        expect(outcome).toMatchObject({ kind: 'answered', result: '-4', charged: false, attempts: 2 });
        expect(sandbox.stats().calls).toBe(2);
        expect(fragile.client.circuitState().state).toBe('open');
      } finally {
        await fragile.close();
      }
    });

    it('lets a trial call through after the cooldown and closes on success', async () => {
      const fragile = await createUpstreamClient({ baseUrl: sandbox.url, breakerThreshold: 1, breakerCooldownMs: 200 });
      try {
        await fragile.client.verify(KNOWN, { sandboxFault: 'http500' });
        expect(fragile.client.circuitState().state).toBe('open');
        await new Promise((r) => setTimeout(r, 400)); // the cooldown, not a speed assertion
        await expect(fragile.client.verify(KNOWN)).resolves.toMatchObject({ kind: 'answered', result: '0' });
        expect(fragile.client.circuitState()).toEqual({ state: 'closed', retryAfterSeconds: null });
      } finally {
        await fragile.close();
      }
    });

    it('4xx answers and ordinary results do not open it', async () => {
      const fragile = await createUpstreamClient({
        baseUrl: sandbox.url,
        breakerThreshold: 1,
        breakerCooldownMs: 60_000,
      });
      try {
        await fragile.client.verify({ name: '张三', id_card: UNREGISTERED_ID_CARD });
        await fragile.client.verify(KNOWN, { sandboxFault: 'meteor_strike' });
        await fragile.client.verify({ name: '张三', id_card: KNOWN.id_card });
        expect(fragile.client.circuitState().state).toBe('closed');
      } finally {
        await fragile.close();
      }
    });
  });

  it('logs outcomes without names, ID numbers, tokens or upstream messages', async () => {
    // Sandbox mode (no UPSTREAM_TOKEN), so the fault header is sent; the sandbox token is the secret here.
    const watched = await createUpstreamClient({ baseUrl: sandbox.url }, { token: 'tok_secret_value' });
    try {
      await watched.client.verify(KNOWN);
      await watched.client.verify(KNOWN, { sandboxFault: 'http500' });
      await watched.client.verify({ image_url: `https://x.example/idcard/${KNOWN_FEMALE.id_card}.jpg` });
      const logged = watched.logger.lines.join('\n');
      expect(logged).toContain('reason=server_error');
      for (const secret of [
        KNOWN.name,
        KNOWN.id_card,
        KNOWN_FEMALE.id_card,
        '李娜',
        'tok_secret_value',
        'fetch failed',
      ]) {
        expect(logged).not.toContain(secret);
      }
    } finally {
      await watched.close();
    }
  });

  it('says so in the log when the upstream is the sandbox (no UPSTREAM_TOKEN)', () => {
    expect(t.logger.lines.join('\n')).toMatch(/SIMULATED/);
  });
});

describe('UpstreamClient request format', () => {
  let server: Server;
  let seen: { method?: string; url?: string; headers: IncomingMessage['headers']; body: string }[];
  let baseUrl: string;
  let reply: { status: number; body: string; headers?: Record<string, string> };

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body });
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(reply.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    seen = [];
    reply = {
      status: 200,
      body: JSON.stringify({
        result: '0',
        description: 'ok',
        name: '',
        id_card: '',
        sex: '',
        nation: '',
        birth: '',
        address: '',
      }),
    };
  });

  it('POSTs the documented headers and only the fields given, to /identity/idcard/ocr', async () => {
    const t = await createUpstreamClient({ baseUrl, token: 'tok_live_123' });
    try {
      await t.client.verify({ name: '张三', id_card: KNOWN.id_card });
      const encryption = [
        {
          algorithm: 'SM4-GCM',
          ciphertext_blob: 'blob',
          encrypt_list: ['id_card'],
          iv: '0123456789abcdef',
          tag_list: ['t'],
        },
      ];
      await t.client.verify({ image_url: 'https://x.example/a.jpg', encryption });
      expect(seen).toHaveLength(2);
      for (const request of seen) {
        expect(request.method).toBe('POST');
        expect(request.url).toBe('/identity/idcard/ocr');
        expect(request.headers.authorization).toBe('Bearer tok_live_123');
        expect(request.headers.accept).toBe('application/json');
        expect(request.headers['content-type']).toBe('application/json');
        // Never sent to the real vendor, whatever the caller asks.
        expect(request.headers['x-sandbox-fault']).toBeUndefined();
      }
      expect(JSON.parse(seen[0].body)).toEqual({ name: '张三', id_card: KNOWN.id_card });
      expect(JSON.parse(seen[1].body)).toEqual({ image_url: 'https://x.example/a.jpg', encryption });
    } finally {
      await t.close();
    }
  });

  it('refuses a base URL with credentials at start-up (they would be sent instead of the token)', async () => {
    const url = new URL(baseUrl);
    url.username = 'user';
    url.password = 'secret';
    await expect(createUpstreamClient({ baseUrl: url.toString(), token: 'tok' })).rejects.toThrow(
      'must not contain credentials',
    );
    expect(seen).toHaveLength(0);
  });

  it('cuts an answer still arriving at the timeout: indeterminate (timeout), one attempt', async () => {
    const slow = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"result":"0",'); // and nothing more
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const t = await createUpstreamClient({
      baseUrl: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`,
      token: 'tok',
      timeoutMs: 300,
    });
    try {
      await expect(t.client.verify(KNOWN)).resolves.toMatchObject({
        kind: 'indeterminate',
        reason: 'timeout',
        attempts: 1,
      });
    } finally {
      await t.close();
      slow.closeAllConnections();
      await new Promise((r) => slow.close(r));
    }
  });

  it('reads the trace id from the x-trace-id header when the body has none', async () => {
    reply.headers = { 'x-trace-id': 'abc-123' };
    const t = await createUpstreamClient({ baseUrl, token: 'tok' });
    try {
      await expect(t.client.verify(KNOWN)).resolves.toMatchObject({ kind: 'answered', traceId: 'abc-123' });
    } finally {
      await t.close();
    }
  });

  it.each([
    [
      'a 502 from a proxy, HTML body',
      502,
      '<html>Bad gateway</html>',
      { kind: 'indeterminate', reason: 'server_error' },
    ],
    ['a redirect', 302, '', { kind: 'indeterminate', reason: 'unexpected_status' }],
    ['an empty 200', 200, '', { kind: 'indeterminate', reason: 'malformed_response' }],
    ['a JSON array', 200, '[]', { kind: 'indeterminate', reason: 'malformed_response' }],
    [
      'result as a number',
      200,
      '{"result":0,"description":"x"}',
      { kind: 'indeterminate', reason: 'malformed_response' },
    ],
    ['an OCR field as an object', 200, '{"result":"0","description":"x","sex":{}}', { kind: 'indeterminate' }],
    [
      'an undocumented code',
      200,
      '{"result":"1","description":"x"}',
      { kind: 'indeterminate', reason: 'unknown_result' },
    ],
    ['a 403 with no body', 403, '', { kind: 'rejected', httpStatus: 403, errorCode: null }],
    [
      'a 402 used_up',
      402,
      '{"success":false,"error":{"code":"used_up","message":"m"}}',
      { kind: 'rejected', errorCode: 'used_up' },
    ],
  ])('treats %s safely', async (_label, status, body, expected) => {
    reply = { status, body };
    const t = await createUpstreamClient({ baseUrl, token: 'tok' });
    try {
      await expect(t.client.verify(KNOWN)).resolves.toMatchObject({ attempts: 1, ...expected });
      expect(seen).toHaveLength(1);
    } finally {
      await t.close();
    }
  });
});
