import identities from '../../src/upstream/sandbox/fixtures/identities.json';
import { SandboxHandle, startSandbox } from '../../src/upstream/sandbox/sandbox-server';
import { KNOWN, KNOWN_FEMALE, UNREGISTERED_ID_CARD, UUID } from './support';

/* The sandbox upstream on its own, spoken to with a plain HTTP client (fetch) over loopback. */

type Init = { token?: string | null; fault?: string; body?: unknown; raw?: string };

function call(sandbox: SandboxHandle, init: Init = {}) {
  const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/json' };
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? 'any-token'}`;
  if (init.fault) headers['x-sandbox-fault'] = init.fault;
  return fetch(`${sandbox.url}/identity/idcard/ocr`, {
    method: 'POST',
    headers,
    body: init.raw ?? JSON.stringify(init.body ?? KNOWN),
  });
}

const OCR_KEYS = ['result', 'description', 'name', 'id_card', 'sex', 'nation', 'birth', 'address', 'trace_id'];

describe('sandbox upstream', () => {
  let sandbox: SandboxHandle;
  beforeAll(async () => {
    sandbox = await startSandbox({ price: 35 });
  });
  afterAll(() => sandbox.close());
  beforeEach(() => sandbox.reset());

  describe('formats', () => {
    it('answers name + ID mode with every field a string and the OCR fields empty', async () => {
      const res = await call(sandbox);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      const body = (await res.json()) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(OCR_KEYS);
      for (const key of OCR_KEYS) expect(typeof body[key]).toBe('string');
      expect(body).toEqual({
        result: '0',
        description: 'The name and ID card number are consistent',
        name: KNOWN.name,
        id_card: KNOWN.id_card,
        sex: '',
        nation: '',
        birth: '',
        address: '',
        trace_id: expect.stringMatching(UUID),
      });
      expect(res.headers.get('x-trace-id')).toBe(body.trace_id);
    });

    it.each([
      ['no Authorization header', null],
      ['an empty bearer', ''],
    ])('answers 401 invalid_token for %s, in the upstream error format', async (_label, token) => {
      const res = await call(sandbox, { token: token === '' ? ' ' : token });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({
        success: false,
        error: { code: 'invalid_token', message: expect.any(String) },
        trace_id: expect.stringMatching(UUID),
      });
      expect(sandbox.stats()).toEqual({ calls: 1, charged: 0, by_result: { http_401: 1 } });
    });

    it('accepts only SANDBOX_TOKEN when one is configured', async () => {
      const guarded = await startSandbox({ token: 's3cret' });
      try {
        expect((await call(guarded, { token: 'other' })).status).toBe(401);
        expect((await call(guarded, { token: 's3cret' })).status).toBe(200);
        expect((await fetch(`${guarded.url}/stats`, { headers: { authorization: 'Bearer other' } })).status).toBe(401);
      } finally {
        await guarded.close();
      }
    });

    it.each([
      ['not JSON', { raw: '{"name":' }],
      ['a JSON array', { raw: '[]' }],
      ['a number for name', { body: { name: 1, id_card: KNOWN.id_card } }],
      ['neither name/id_card nor image_url', { body: {} }],
    ])('answers 400 bad_request for %s', async (_label, init) => {
      const res = await call(sandbox, init);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ success: false, error: { code: 'bad_request' } });
    });

    it('answers an unknown path with 400 api_not_implemented, as the upstream does', async () => {
      const res = await fetch(`${sandbox.url}/identity/bankcard/check-2e`, { method: 'POST' });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ success: false, error: { code: 'api_not_implemented' } });
      expect(sandbox.stats().calls).toBe(0);
    });
  });

  describe('decisions', () => {
    it.each([
      ['0', KNOWN],
      ['0', { name: ' 张伟 ', id_card: KNOWN.id_card }],
      ['0', { name: '张伟', id_card: '360426910101007' }], // 15-digit legacy form of the same number
      ['-1', { name: '张三', id_card: KNOWN.id_card }],
      ['-2', { name: '张三', id_card: '110101199003071234' }],
      ['-2', { name: '张三' }],
      ['-3', { name: '张三😀', id_card: KNOWN.id_card }],
      ['-3', { id_card: KNOWN.id_card }],
      ['-5', { name: '张三', id_card: UNREGISTERED_ID_CARD }],
    ])('answers %s for %j', async (result, body) => {
      const res = await call(sandbox, { body });
      expect(await res.json()).toMatchObject({ result });
    });

    it('matches names through the middle-dot look-alikes', async () => {
      const uyghur = identities.find((i) => i.name.includes('·'));
      if (!uyghur) throw new Error('the register has no name with ·');
      const typed = uyghur.name.replace('·', '•');
      expect(await (await call(sandbox, { body: { name: typed, id_card: uyghur.id_card } })).json()).toMatchObject({
        result: '0',
      });
    });

    it('answers image URLs …/idcard/<id_card>.jpg with the OCR fields; unknown valid numbers with -5', async () => {
      const known = await call(sandbox, {
        body: { image_url: `https://cdn.example/idcard/${KNOWN_FEMALE.id_card}.jpg` },
      });
      expect(await known.json()).toMatchObject({ result: '0', name: '李娜', sex: '女', birth: '1995/5/13' });
      const unknown = await call(sandbox, {
        body: { image_url: `https://cdn.example/idcard/${UNREGISTERED_ID_CARD}.jpg` },
      });
      expect(await unknown.json()).toMatchObject({ result: '-5', id_card: UNREGISTERED_ID_CARD, name: '' });
      const invalid = await call(sandbox, { body: { image_url: 'https://cdn.example/idcard/110101199003071234.jpg' } });
      expect(await invalid.json()).toMatchObject({ result: '-2' });
    });

    it('applies Tencent-style daily limits (-7) when configured', async () => {
      const limited = await startSandbox({ dailyLimits: { perName: 2, perIdCard: 100 } });
      try {
        const results = [];
        for (let i = 0; i < 3; i++) results.push(((await (await call(limited)).json()) as { result: string }).result);
        expect(results).toEqual(['0', '0', '-7']);
        expect(limited.stats().charged).toBe(2);
      } finally {
        await limited.close();
      }
    });
  });

  describe('statement and stats', () => {
    it('lists exactly the charged calls as CSV, with the configured price', async () => {
      await call(sandbox); // 0, charged
      await call(sandbox, { body: { name: '张三', id_card: KNOWN.id_card } }); // -1, charged
      await call(sandbox, { body: { name: '张三', id_card: UNREGISTERED_ID_CARD } }); // -5
      await call(sandbox, { fault: 'db_error' }); // -4
      await call(sandbox, { fault: 'http429' });
      await call(sandbox, { token: null });

      const res = await fetch(`${sandbox.url}/statement`, { headers: { authorization: 'Bearer x' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      const lines = (await res.text()).trimEnd().split('\n');
      expect(lines[0]).toBe('trace_id,called_at,result,charged,amount');
      expect(lines.slice(1).map((l) => l.split(','))).toEqual([
        [
          expect.stringMatching(UUID),
          expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
          '0',
          'true',
          '35',
        ],
        [expect.stringMatching(UUID), expect.any(String), '-1', 'true', '35'],
      ]);

      const stats = await (await fetch(`${sandbox.url}/stats`, { headers: { authorization: 'Bearer x' } })).json();
      expect(stats).toEqual({
        calls: 6,
        charged: 2,
        by_result: { '0': 1, '-1': 1, '-5': 1, '-4': 1, http_429: 1, http_401: 1 },
      });
    });

    it('filters the statement by from (inclusive) and to (exclusive)', async () => {
      let clock = new Date('2024-03-01T10:00:00.000Z');
      const dated = await startSandbox({ now: () => clock });
      try {
        await call(dated);
        clock = new Date('2024-03-02T10:00:00.000Z');
        await call(dated);
        const get = async (query: string) =>
          (await fetch(`${dated.url}/statement${query}`, { headers: { authorization: 'Bearer x' } })).text();
        expect((await get('?from=2024-03-02')).trimEnd().split('\n')).toHaveLength(2);
        expect((await get('?to=2024-03-02')).trimEnd().split('\n')).toHaveLength(2);
        expect((await get('?from=2024-03-01&to=2024-03-03')).trimEnd().split('\n')).toHaveLength(3);
        expect((await get('?from=2024-03-01T10:00:00.000Z&to=2024-03-01T10:00:00.000Z')).trimEnd()).toBe(
          'trace_id,called_at,result,charged,amount',
        );
        const bad = await fetch(`${dated.url}/statement?from=yesterday`, { headers: { authorization: 'Bearer x' } });
        expect(bad.status).toBe(400);
      } finally {
        await dated.close();
      }
    });

    it('charges post-decision faults by default, not with `uncharged`, and never 429 or pre-decision codes', async () => {
      await call(sandbox, { fault: 'http500' }); // decided 0, then failed: charged
      await call(sandbox, { fault: 'garbage' }); // charged
      await call(sandbox, { fault: 'http500,uncharged' }); // failed before deciding
      await call(sandbox, { fault: 'http429' });
      await call(sandbox, { fault: 'upgrading' });
      await call(sandbox, { fault: 'http500', body: { name: '张三', id_card: UNREGISTERED_ID_CARD } }); // -5 underneath
      expect(sandbox.statement().map((e) => e.result)).toEqual(['0', '0']);
    });

    it('can be configured to charge no faulted call; `charged` still forces one', async () => {
      const lenient = await startSandbox({ chargeFaultedCalls: false });
      try {
        await call(lenient, { fault: 'http500' });
        await call(lenient, { fault: 'reset' }).catch(() => undefined);
        expect(lenient.statement()).toHaveLength(0);
        await call(lenient, { fault: 'garbage,charged' });
        expect(lenient.statement()).toHaveLength(1);
      } finally {
        await lenient.close();
      }
    });
  });

  describe('faults', () => {
    it('garbage is a 200 with a body that is not JSON', async () => {
      const res = await call(sandbox, { fault: 'garbage' });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text.startsWith('{"result":"0"')).toBe(true);
      expect(() => JSON.parse(text)).toThrow(SyntaxError);
    });

    it('reset destroys the connection', async () => {
      await expect(call(sandbox, { fault: 'reset' })).rejects.toThrow();
      expect(sandbox.stats().by_result).toEqual({ reset: 1 });
    });

    it('timeout accepts the request and never answers', async () => {
      const controller = new AbortController();
      const pending = fetch(`${sandbox.url}/identity/idcard/ocr`, {
        method: 'POST',
        headers: { authorization: 'Bearer x', 'x-sandbox-fault': 'timeout' },
        body: JSON.stringify(KNOWN),
        signal: controller.signal,
      });
      // Wait until the sandbox holds it, then give up as a client would.
      const deadline = Date.now() + 10_000;
      while (sandbox.stats().by_result.timeout !== 1 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      controller.abort();
      await expect(pending).rejects.toThrow();
      expect(sandbox.stats()).toMatchObject({ calls: 1, by_result: { timeout: 1 } });
    });

    it.each([
      ['daily_limit', '-7'],
      ['db_error', '-4'],
      ['upgrading', '-6'],
      ['latency=25,db_error', '-4'],
    ])('%s answers result %s', async (fault, result) => {
      expect(await (await call(sandbox, { fault })).json()).toMatchObject({ result });
    });

    it('http500 and http429 use the upstream error format', async () => {
      const e500 = await call(sandbox, { fault: 'http500' });
      expect(e500.status).toBe(500);
      expect(await e500.json()).toMatchObject({ success: false, error: { code: 'api_error' } });
      const e429 = await call(sandbox, { fault: 'http429' });
      expect(e429.status).toBe(429);
      expect(await e429.json()).toMatchObject({ success: false, error: { code: 'too_many_requests' } });
    });

    it('draws faults from configured rates (seeded, so the mix is repeatable)', async () => {
      const flaky = await startSandbox({ faults: 'http500=0.5', seed: 7 });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 100; i++)
          statuses.push((await call(flaky, { body: { name: '张三', id_card: '1' } })).status);
        const failures = statuses.filter((s) => s === 500).length;
        expect(failures).toBeGreaterThan(25);
        expect(failures).toBeLessThan(75);
        expect(statuses.every((s) => s === 500 || s === 200)).toBe(true);
      } finally {
        await flaky.close();
      }
    });

    it('refuses impossible rates at start', async () => {
      await expect(startSandbox({ faults: { http500: 0.7, timeout: 0.6 } })).rejects.toThrow(/more than 1/);
      await expect(startSandbox({ faults: 'meteor=0.1' })).rejects.toThrow(/unknown fault/);
    });

    it('applies queued faults to the next calls, in order', async () => {
      sandbox.queueFaults('http429', 'db_error');
      expect((await call(sandbox)).status).toBe(429);
      expect(await (await call(sandbox)).json()).toMatchObject({ result: '-4' });
      expect(await (await call(sandbox)).json()).toMatchObject({ result: '0' });
      expect(() => sandbox.queueFaults('nonsense')).toThrow();
    });
  });
});
