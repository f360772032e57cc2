import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Role } from '../../src/auth/roles';
import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { createTestDatabase, TestDatabase } from '../support/databases';
import { Reply, send } from './support/http';
import { Cleanup, clientKey, Idgate, staffKey, startIdgate } from './support/processes';

interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  roles: string[];
  spec: Record<string, unknown>;
}

type OpenApi = {
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components?: { schemas?: Record<string, { properties?: Record<string, unknown> }> };
};

/** Every operation the running server documents at /docs-json, with the roles it declares. */
function operationsOf(doc: OpenApi): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const spec = item[method];
      if (spec) ops.push({ method, path, roles: (spec['x-idgate-roles'] as string[]) ?? [], spec });
    }
  }
  return ops;
}

/** Cases in all, spread over the documented /v1 operations (at least MIN_RUNS_PER_OP each). */
const TOTAL_CASES = 4000;
const MIN_RUNS_PER_OP = 60;
/** Per operation: a bound in time as well as in count. */
const TIME_LIMIT_PER_OP_MS = 12_000;
const BODY_LIMIT = 64 * 1024;

/** What a stack trace, a source path or an internal error class looks like in a response. */
const LEAK =
  /\n\s+at |\bat \S+ \(\S+:\d+:\d+\)|node_modules|\/src\/\S+\.ts|\.ts:\d+|PrismaClient|TypeError|ReferenceError/;

const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const deepObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** Values of every JSON type, and the awkward ones among them. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    -0,
    1e308,
    -1e308,
    2 ** 53 + 1,
    0.5,
    '',
    ' ',
    '\u0000',
    '\ud800',
    '😀'.repeat(60),
    '张·三'.repeat(30),
    '../../etc/passwd',
    "' OR 1=1 --",
    '%00',
    '2024-02-30',
    '9999-12-31T23:59:59Z',
    '-1',
    'NaN',
    'Infinity',
    '11010519491231002X',
    '00000000-0000-0000-0000-000000000000',
    'https://127.0.0.1/idcard/11010519491231002X.jpg',
    'x'.repeat(5000),
    [],
    {},
    [[[[[]]]]],
    { $gt: '' },
    { __proto__: { admin: true } },
  ),
);

/** A concrete path: placeholders filled with a plausible id or with anything at all. */
function pathArb(op: Operation): fc.Arbitrary<string> {
  const holes = op.path.match(/\{[^}]+\}/g) ?? [];
  if (holes.length === 0) return fc.constant(op.path);
  const segment = fc.oneof(
    fc.constant('00000000-0000-7000-8000-000000000000'),
    fc.uuid(),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map(encodeURIComponent),
    fc.constantFrom('%', '%zz', '..', '-1', '0', '9'.repeat(400), 'null', '%2F', '%00'),
  );
  return fc.array(segment, { minLength: holes.length, maxLength: holes.length }).map((values) => {
    let i = 0;
    return op.path.replace(/\{[^}]+\}/g, () => values[i++]);
  });
}

/** Node refuses to send characters outside 0x21–0xff in a path: encode those, keep the rest raw (odd escapes included). */
const rawish = (s: string) => s.replace(/[^\u0021-\u007e]|[#?&=]/g, (c) => encodeURIComponent(c));

function queryArb(op: Operation): fc.Arbitrary<string> {
  const documented = ((op.spec.parameters as Array<{ name: string; in: string }> | undefined) ?? [])
    .filter((p) => p.in === 'query')
    .map((p) => p.name);
  const name = documented.length
    ? fc.oneof(fc.constantFrom(...documented), fc.string({ maxLength: 12 }))
    : fc.string({ maxLength: 12 });
  const value = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 60 }).map(encodeURIComponent),
    fc.string({ maxLength: 60 }).map(rawish),
    fc.integer().map(String),
    fc.double().map(String),
    fc.constantFrom(
      '',
      '%',
      '%zz',
      '%E4%B8',
      '[]',
      '{}',
      'true',
      'null',
      '-1',
      '0',
      '1e309',
      'x'.repeat(3000),
      '2024-01-01',
      'a,b',
    ),
  );
  const pair = fc.tuple(name.map(rawish), value, fc.constantFrom('=', '=', '', '=='));
  return fc.oneof(
    fc.constant(''),
    fc.array(pair, { maxLength: 8 }).map((pairs) => pairs.map(([k, v, eq]) => `${k}${eq}${eq ? v : ''}`).join('&')),
    fc.constantFrom('&&&', '=', '==&=', 'limit[]=1&limit[]=2', 'limit=1&limit=2', 'cursor=%ZZ', '?', 'a[b][c]=1'),
  );
}

/** The properties the operation's body schema documents (resolving one $ref), to aim wrong types at. */
function documentedFields(
  op: Operation,
  components: Record<string, { properties?: Record<string, unknown> }>,
): string[] {
  const body = op.spec.requestBody as
    { content?: Record<string, { schema?: { $ref?: string; properties?: Record<string, unknown> } }> } | undefined;
  const schema = body?.content?.['application/json']?.schema;
  if (!schema) return [];
  const resolved = schema.$ref ? components[schema.$ref.split('/').pop()!] : schema;
  return Object.keys(resolved?.properties ?? {});
}

interface Body {
  contentType?: string;
  payload?: unknown;
}

function bodyArb(op: Operation, fields: string[]): fc.Arbitrary<Body> {
  const json = (payload: unknown): Body => ({ contentType: 'application/json', payload: JSON.stringify(payload) });
  const raw = (contentType: string | undefined, payload: string): Body => ({ contentType, payload });
  const fieldObject = fields.length
    ? fc
        .dictionary(fc.oneof(fc.constantFrom(...fields), fc.string({ maxLength: 10 })), oddValue, { maxKeys: 8 })
        .map(json)
    : fc.constant(json({}));
  const contentTypes = Object.keys(
    (op.spec.requestBody as { content?: Record<string, unknown> } | undefined)?.content ?? {},
  );
  return fc.oneof(
    { arbitrary: fieldObject, weight: 5 },
    { arbitrary: fc.jsonValue({ maxDepth: 5 }).map(json), weight: 3 },
    { arbitrary: fc.constant<Body>({}), weight: 1 },
    {
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            'application/json',
            'text/csv',
            'text/plain',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x',
            'multipart/form-data',
            'application/xml',
            undefined,
            ...contentTypes,
          ),
          fc.oneof(
            fc.string({ unit: 'grapheme', maxLength: 200 }),
            fc.constantFrom(
              '{"name": "x",',
              '{',
              'null',
              '"string"',
              '[1,2,3]',
              '\u0000\u0001',
              'trace_id,called_at,result,charged,amount\nx,y,z,w,v\n',
              '--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nbad\r\n--x--\r\n',
              deep(5000),
              deepObject(5000),
              '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}',
              JSON.stringify({ name: 'x'.repeat(BODY_LIMIT) }),
              JSON.stringify({ image_url: 'https://a.example/' + '中'.repeat(30_000) }),
            ),
          ),
        )
        .map(([type, text]) => raw(type, text)),
      weight: 3,
    },
  );
}

/**
 * (d) Property-based fuzzing of every documented /v1 operation (derived from the
 * OpenAPI document, so new endpoints are covered without touching this file):
 * arbitrary JSON, wrong types on documented fields, huge and unicode strings,
 * deep nesting, odd content types, odd query strings and path parameters.
 * Whatever is sent: never a 5xx, every 4xx is application/problem+json, and no
 * response carries a stack trace.
 */
describe('reliability: fuzzing every /v1 body and query', () => {
  const cleanup = new Cleanup();
  let db: TestDatabase;
  let sandbox: SandboxHandle;
  let idgate: Idgate;
  let url: string;
  let operations: Operation[];
  let components: Record<string, { properties?: Record<string, unknown> }>;
  const keys = new Map<Role, string>();
  let totalRuns = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    cleanup.defer(() => db.drop());
    // A fuzzed body may be a valid verification: it goes to a healthy sandbox.
    sandbox = await startSandbox({ port: 0, dailyLimits: false });
    cleanup.defer(() => sandbox.close());
    // The real server, as deployed: the same process, middleware and error handling as `npm start`.
    idgate = await startIdgate(cleanup, {
      DATABASE_URL: db.url,
      PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      PII_HMAC_KEY: randomBytes(32).toString('base64'),
      AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
      UPSTREAM_TOKEN: 'reliability',
      UPSTREAM_BASE_URL: sandbox.url,
      UPSTREAM_BREAKER_THRESHOLD: '1000',
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      RATE_LIMIT_PER_MINUTE: '1000000',
      LOG_LEVEL: 'error',
    });
    url = idgate.url;
    const admin = idgate.bootstrapKey!;
    keys.set('admin', admin);
    keys.set('client', await clientKey(url, admin, 'fuzz'));
    keys.set('compliance', await staffKey(url, admin, 'compliance'));
    keys.set('finance', await staffKey(url, admin, 'finance'));
    const doc = (await send(url, 'GET', '/docs-json')).json as OpenApi;
    operations = operationsOf(doc).filter((op) => op.path.startsWith('/v1/'));
    components = doc.components?.schemas ?? {};
  });
  afterAll(() => cleanup.run());

  it('derives the operations from the OpenAPI document', () => {
    const names = operations.map((op) => `${op.method.toUpperCase()} ${op.path}`);
    for (const expected of ['POST /v1/verifications', 'GET /v1/verifications', 'POST /v1/verifications/search']) {
      expect(names).toContain(expected);
    }
    expect(operations.length).toBeGreaterThanOrEqual(10);
  });

  const check = (op: Operation, res: Reply) => {
    const summary = { op: `${op.method.toUpperCase()} ${op.path}`, status: res.status, body: res.text.slice(0, 400) };
    expect({ ...summary, serverError: res.status >= 500 }).toEqual({ ...summary, serverError: false });
    if (res.status >= 400) {
      expect({ ...summary, type: res.headers['content-type'] }).toEqual({
        ...summary,
        type: expect.stringMatching(/^application\/problem\+json/),
      });
    }
    expect({ ...summary, leak: LEAK.exec(res.text)?.[0] ?? null }).toEqual({ ...summary, leak: null });
  };

  /** What the server logged about its last unhandled error (type and first frames), to say where a 500 came from. */
  const lastUnhandled = async (): Promise<string | null> => {
    await new Promise((r) => setTimeout(r, 50)); // the log line may trail the response
    const lines = idgate.proc.stdout().split('\n');
    const line = lines.reverse().find((l) => l.includes('"unhandled error"') || l.includes('"request failed"'));
    if (!line) return null;
    const err = (JSON.parse(line) as { err?: { type?: string; stack?: string } }).err;
    return `${err?.type}: ${(err?.stack ?? '').split('\n').slice(0, 4).join(' | ')}`;
  };

  const describeCase = (c: { path: string; query: string; body: Body }) => {
    const text = typeof c.body.payload === 'string' ? c.body.payload : '';
    return {
      request: `${c.path}${c.query ? `?${c.query.slice(0, 200)}` : ''}`,
      contentType: c.body.contentType ?? null,
      body: text.length > 300 ? `${text.slice(0, 150)}… (${text.length} chars)` : text,
    };
  };

  it('never answers 5xx, always problem+json for 4xx, never a stack trace', async () => {
    const runsPerOp = Math.max(MIN_RUNS_PER_OP, Math.ceil(TOTAL_CASES / operations.length));
    const failures: unknown[] = [];
    for (const op of operations) {
      const roles = op.roles.filter((r): r is Role => keys.has(r as Role));
      const key = roles.length ? fc.constantFrom(...roles).map((r) => keys.get(r)!) : fc.constant(keys.get('admin')!);
      const hasBody = op.method !== 'get' && op.method !== 'delete';
      const arb = fc.record({
        path: pathArb(op),
        query: queryArb(op),
        body: hasBody ? bodyArb(op, documentedFields(op, components)) : fc.constant<Body>({}),
        key,
        idempotencyKey: fc.option(fc.string({ maxLength: 300 }).map(rawish), { freq: 4 }),
      });
      let failure: { reply: Reply; cause: string | null } | null = null;
      const details = await fc.check(
        fc.asyncProperty(arb, async (c) => {
          const headers: Record<string, string> = { authorization: `Bearer ${c.key}` };
          if (c.body.contentType) headers['content-type'] = c.body.contentType;
          if (c.idempotencyKey !== null && c.idempotencyKey !== '') headers['idempotency-key'] = c.idempotencyKey;
          const res = await send(url, op.method.toUpperCase(), c.path + (c.query ? `?${c.query}` : ''), {
            headers,
            body: c.body.payload as string | undefined,
          });
          try {
            check(op, res);
          } catch (err) {
            failure = { reply: res, cause: res.status >= 500 ? await lastUnhandled() : null };
            throw err;
          }
        }),
        { numRuns: runsPerOp, interruptAfterTimeLimit: TIME_LIMIT_PER_OP_MS, markInterruptAsFailure: false, seed: 7 },
      );
      totalRuns += details.numRuns;
      if (details.failed && details.counterexample) {
        const f = failure as { reply: Reply; cause: string | null } | null;
        failures.push({
          op: `${op.method.toUpperCase()} ${op.path}`,
          status: f?.reply.status,
          answer: f?.reply.text.slice(0, 300),
          cause: f?.cause,
          counterexample: describeCase(details.counterexample[0]),
        });
        continue;
      }
      // Bounded in time, but never so short that an operation goes untested.
      expect({ op: op.path, enough: details.numRuns >= MIN_RUNS_PER_OP }).toEqual({ op: op.path, enough: true });
    }
    expect(failures).toEqual([]);
    expect(totalRuns).toBeGreaterThanOrEqual(Math.min(TOTAL_CASES, operations.length * MIN_RUNS_PER_OP));
  });
});
