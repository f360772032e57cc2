import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Role } from '../../src/auth/roles';
import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { createTestDatabase, databaseEnv, TestDatabase } from '../support/databases';
import { runCli } from '../support/processes';
import { Reply, send } from './support/http';
import { Cleanup, clientKey, Idgate, staffKey, startIdgate } from './support/processes';

/*
 * (d) Fuzzing every operation the running server documents at /docs-json (so a
 * new endpoint is covered without touching this file), in two phases:
 * 1. Targeted, enumerated: every body field, form field, query parameter and
 *    documented header gets each extreme value (null, NUL, very long strings,
 *    ±2^31, ±2^53, 1e308, -0, "NaN", years 0 / 10000 / 275760, 2024-02-30, epoch
 *    strings, wrong types, nested objects and arrays). A value the field can
 *    never accept must be refused, and a 400 must name that field.
 * 2. Random (fast-check, fixed seed): arbitrary JSON, odd content types, odd
 *    query strings, path parameters and headers.
 * Whatever is sent: never a 5xx, no stack trace; /v1 errors are problem+json,
 * the drop-in's are the upstream's `{success:false,error:{code,message},trace_id}`;
 * a validation 400 names its fields.
 * Deterministic: FUZZ_SEED (default 7) fixes the random phase; it is printed.
 */

interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  roles: string[];
  spec: Record<string, unknown>;
}

interface Schema {
  type?: string;
  format?: string;
  nullable?: boolean;
  enum?: unknown[];
  $ref?: string;
  properties?: Record<string, Schema>;
  allOf?: Schema[];
}

interface Parameter {
  name: string;
  in: string;
  schema?: Schema;
}

type OpenApi = {
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components?: { schemas?: Record<string, Schema> };
};

const SEED = Number(process.env.FUZZ_SEED ?? 7);
/** Random cases in all, spread over the operations (at least MIN_RUNS_PER_OP each). */
const RANDOM_CASES = 5000;
const MIN_RUNS_PER_OP = 25;
/**
 * Per operation in the random phase: a bound in time as well as in count, so that
 * the suite stays under a minute on 2 cores (about 35 operations × 1.5 s at worst).
 */
const TIME_LIMIT_PER_OP_MS = 1_500;
/** Targeted requests in flight at once (the server has 2 cores at most in CI). */
const CONCURRENCY = 4;
const BODY_LIMIT = 64 * 1024;
const PLAUSIBLE_ID = '00000000-0000-7000-8000-000000000000';

/** What a stack trace, a source path or an internal error class looks like in a response. */
const LEAK =
  /\n\s+at |\bat \S+ \(\S+:\d+:\d+\)|node_modules|\/src\/\S+\.ts|\.ts:\d+|PrismaClient|TypeError|ReferenceError/;

const UPSTREAM_COMPATIBLE = '/identity/';

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

// ── the extreme values ───────────────────────────────────────────────────────

/**
 * What a value is, for deciding whether a field may accept it.
 * nul: holds U+0000; null; long: a string longer than any field takes;
 * badDate: no instant PostgreSQL can store, or no real date; notInteger: no
 * integer (as JSON or as query text); hugeInteger: an integer beyond 2^53;
 * type: an object, array or boolean; other: may be fine for some field.
 */
type Kind = 'nul' | 'null' | 'long' | 'badDate' | 'notInteger' | 'hugeInteger' | 'type' | 'other';

interface Extreme {
  label: string;
  value: unknown;
  kinds: Kind[];
}

const LONG = `LONG${'x'.repeat(9_996)}`;

const EXTREMES: Extreme[] = [
  { label: 'null', value: null, kinds: ['null'] },
  { label: 'NUL', value: '\u0000', kinds: ['nul'] },
  { label: 'NUL inside', value: 'ab\u0000cd', kinds: ['nul'] },
  { label: 'NUL in a date', value: '2024-01-01T00:00:00Z\u0000', kinds: ['nul'] },
  { label: 'NUL in CJK', value: '张\u0000三', kinds: ['nul'] },
  { label: '10k chars', value: LONG, kinds: ['long', 'badDate', 'notInteger'] },
  { label: '5k CJK', value: '中'.repeat(5_000), kinds: ['long', 'badDate', 'notInteger'] },
  { label: '2^31', value: 2 ** 31, kinds: ['other'] },
  { label: '-2^31', value: -(2 ** 31), kinds: ['other'] },
  { label: '-2^31-1', value: -(2 ** 31) - 1, kinds: ['other'] },
  { label: '2^53', value: 2 ** 53, kinds: ['hugeInteger'] },
  { label: '-2^53', value: -(2 ** 53), kinds: ['hugeInteger'] },
  { label: '1e308', value: 1e308, kinds: ['hugeInteger'] },
  { label: '-1e308', value: -1e308, kinds: ['hugeInteger'] },
  { label: '-0', value: -0, kinds: ['other'] },
  { label: '0.5', value: 0.5, kinds: ['notInteger'] },
  { label: '5e-324', value: 5e-324, kinds: ['notInteger'] },
  { label: '"NaN"', value: 'NaN', kinds: ['notInteger', 'badDate'] },
  { label: '"Infinity"', value: 'Infinity', kinds: ['notInteger', 'badDate'] },
  { label: '"-0"', value: '-0', kinds: ['badDate'] },
  { label: '"1e308"', value: '1e308', kinds: ['notInteger', 'badDate'] },
  { label: '"2147483648"', value: '2147483648', kinds: ['badDate'] },
  { label: '"9007199254740993"', value: '9007199254740993', kinds: ['hugeInteger', 'badDate'] },
  { label: '"0x10"', value: '0x10', kinds: ['notInteger', 'badDate'] },
  { label: 'empty', value: '', kinds: ['notInteger', 'badDate'] },
  { label: 'year 0', value: '0000-01-01T00:00:00Z', kinds: ['badDate', 'notInteger'] },
  { label: 'year 0 date', value: '0000-01-01', kinds: ['badDate', 'notInteger'] },
  { label: 'year 1 east of UTC', value: '0001-01-01T00:00:00+08:00', kinds: ['badDate', 'notInteger'] },
  { label: 'year 10000', value: '10000-01-01T00:00:00Z', kinds: ['badDate', 'notInteger'] },
  { label: 'JS expanded year', value: '+010000-01-01T00:00:00.000Z', kinds: ['badDate', 'notInteger'] },
  { label: 'year 275760', value: '275760-09-13T00:00:00Z', kinds: ['badDate', 'notInteger'] },
  { label: 'JS max date', value: '+275760-09-13T00:00:00.000Z', kinds: ['badDate', 'notInteger'] },
  { label: 'JS min date', value: '-271821-04-20T00:00:00.000Z', kinds: ['badDate', 'notInteger'] },
  { label: 'Feb 30', value: '2024-02-30', kinds: ['badDate', 'notInteger'] },
  { label: 'Feb 30 time', value: '2024-02-30T00:00:00Z', kinds: ['badDate', 'notInteger'] },
  { label: 'hour 25', value: '2024-01-01T25:00:00Z', kinds: ['badDate', 'notInteger'] },
  { label: 'zone 99', value: '2024-01-01T00:00:00+99:99', kinds: ['badDate', 'notInteger'] },
  { label: 'epoch s', value: '1700000000', kinds: ['badDate'] },
  { label: 'epoch ms', value: '1700000000000', kinds: ['badDate'] },
  { label: 'Invalid Date', value: 'Invalid Date', kinds: ['badDate', 'notInteger'] },
  { label: 'last instant', value: '9999-12-31T23:59:59.999Z', kinds: ['notInteger'] },
  { label: 'epoch number', value: 1700000000000, kinds: ['badDate'] },
  { label: 'true', value: true, kinds: ['type', 'notInteger', 'badDate'] },
  { label: '{}', value: {}, kinds: ['type', 'notInteger', 'badDate'] },
  { label: '[]', value: [], kinds: ['type', 'notInteger', 'badDate'] },
  { label: '[null]', value: [null], kinds: ['type', 'notInteger', 'badDate'] },
  { label: '[1,2]', value: [1, 2], kinds: ['type', 'notInteger', 'badDate'] },
  {
    label: 'nested object',
    value: { a: { b: { c: [1, { d: '\u0000' }] } } },
    kinds: ['type', 'notInteger', 'badDate'],
  },
  { label: 'nested arrays', value: [[[[['x']]]]], kinds: ['type', 'notInteger', 'badDate'] },
  { label: 'operator object', value: { $gt: '' }, kinds: ['type', 'notInteger', 'badDate'] },
];

// ── fields of an operation ───────────────────────────────────────────────────

type Location = 'body' | 'query' | 'form' | 'header';

interface Field {
  name: string;
  in: Location;
  schema: Schema;
}

function resolve(schema: Schema | undefined, components: Record<string, Schema>): Schema {
  if (!schema) return {};
  if (schema.$ref) return resolve(components[schema.$ref.split('/').pop()!], components);
  if (schema.allOf) {
    const parts = schema.allOf.map((s) => resolve(s, components));
    return { ...schema, properties: Object.assign({}, ...parts.map((p) => p.properties ?? {})) };
  }
  return schema;
}

/** Every input an operation documents: query parameters, headers, and the fields of its JSON or form body. */
function fieldsOf(op: Operation, components: Record<string, Schema>): Field[] {
  const fields: Field[] = [];
  for (const p of (op.spec.parameters as Parameter[] | undefined) ?? []) {
    if (p.in === 'query' || p.in === 'header') {
      fields.push({ name: p.name, in: p.in, schema: resolve(p.schema, components) });
    }
  }
  const content = (op.spec.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)?.content ?? {};
  const json = resolve(content['application/json']?.schema, components);
  for (const [name, schema] of Object.entries(json.properties ?? {})) {
    fields.push({ name, in: 'body', schema: resolve(schema, components) });
  }
  const form = resolve(content['multipart/form-data']?.schema, components);
  for (const [name, schema] of Object.entries(form.properties ?? {})) {
    if (schema.format !== 'binary') fields.push({ name, in: 'form', schema: resolve(schema, components) });
  }
  return fields;
}

const isDateField = (f: Field) =>
  f.schema.format === 'date-time' || ['from', 'to', 'valid_from'].includes(f.name) || f.name.endsWith('_at');
const isIntegerField = (f: Field) => f.schema.type === 'integer' || f.schema.type === 'number';
const isScalarField = (f: Field) => ['string', 'integer', 'number', 'boolean'].includes(f.schema.type ?? '');

/** How a value travels as text (query, form, header). Objects and arrays are sent otherwise (see textCase). */
function asText(value: unknown): string {
  if (Object.is(value, -0)) return '-0';
  return typeof value === 'string' ? value : String(value);
}

/** Whether no field like `f` may accept `extreme` as sent in `f.in`. */
function mustRefuse(f: Field, extreme: Extreme): boolean {
  const kinds = new Set(extreme.kinds);
  if (kinds.has('nul')) return true;
  const text = f.in !== 'body';
  if (text) {
    // null, numbers and booleans arrive as their text; objects and arrays as repeated or bracketed names.
    if (isDateField(f) && (kinds.has('badDate') || kinds.has('null') || kinds.has('type'))) return true;
    if (isIntegerField(f) && (kinds.has('notInteger') || kinds.has('hugeInteger') || kinds.has('null'))) {
      return true;
    }
    return kinds.has('long') && f.schema.type === 'string';
  }
  if (kinds.has('null')) return f.schema.nullable !== true;
  // A string enum that spells booleans ("true"/"false") may take the JSON boolean too.
  if (typeof extreme.value === 'boolean' && f.schema.enum?.includes(String(extreme.value))) return false;
  if (kinds.has('type') && isScalarField(f)) return true;
  if (isDateField(f) && kinds.has('badDate')) return true;
  if (isIntegerField(f))
    return kinds.has('notInteger') || kinds.has('hugeInteger') || typeof extreme.value !== 'number';
  if (f.schema.type === 'string' && typeof extreme.value !== 'string') return true;
  return kinds.has('long') && f.schema.type === 'string';
}

// ── the random phase's arbitraries ───────────────────────────────────────────

const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const deepObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** Values of every JSON type, the awkward ones among them, and the extremes. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom(...EXTREMES.map((e) => e.value)),
  fc.constantFrom(
    true,
    false,
    0,
    -1,
    '',
    ' ',
    '\ud800',
    '😀'.repeat(60),
    '张·三'.repeat(30),
    '../../etc/passwd',
    "' OR 1=1 --",
    '%00',
    '-1',
    '11010519491231002X',
    '00000000-0000-0000-0000-000000000000',
    'https://127.0.0.1/idcard/11010519491231002X.jpg',
    { __proto__: { admin: true } },
  ),
);

/** A concrete path: placeholders filled with a plausible id or with anything at all. */
function pathArb(op: Operation): fc.Arbitrary<string> {
  const holes = op.path.match(/\{[^}]+\}/g) ?? [];
  if (holes.length === 0) return fc.constant(op.path);
  const segment = fc.oneof(
    fc.constant(PLAUSIBLE_ID),
    fc.uuid(),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map(encodeURIComponent),
    fc.constantFrom('%', '%zz', '..', '-1', '0', '9'.repeat(400), 'null', '%2F', '%00', 'a%00b'),
  );
  return fc.array(segment, { minLength: holes.length, maxLength: holes.length }).map((values) => {
    let i = 0;
    return op.path.replace(/\{[^}]+\}/g, () => values[i++]);
  });
}

const plausiblePath = (op: Operation) => op.path.replace(/\{[^}]+\}/g, PLAUSIBLE_ID);

/** Node refuses to send characters outside 0x21–0xff in a path: encode those, keep the rest raw (odd escapes included). */
const rawish = (s: string) => s.replace(/[^\u0021-\u007e]|[#?&=]/g, percent);

/** A lone surrogate has no UTF-8: send the bytes it would have had (malformed UTF-8, a fine input too). */
function percent(c: string): string {
  try {
    return encodeURIComponent(c);
  } catch {
    return '%ED%A0%80';
  }
}

function queryArb(op: Operation): fc.Arbitrary<string> {
  const documented = ((op.spec.parameters as Parameter[] | undefined) ?? [])
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
      // Up to a few KB each: eight of them must stay under Node's 16 KB request head (else 431 before idgate).
      ...EXTREMES.filter((e) => typeof e.value !== 'object')
        .map((e) => encodeURIComponent(asText(e.value)))
        .filter((text) => text.length <= 1_500),
    ),
    fc.constantFrom('', '%', '%zz', '%E4%B8', '[]', '{}', 'true', 'null', '-1', '0', '1e309', '2024-01-01', 'a,b'),
  );
  const pair = fc.tuple(name.map(rawish), value, fc.constantFrom('=', '=', '', '=='));
  return fc.oneof(
    fc.constant(''),
    fc.array(pair, { maxLength: 8 }).map((pairs) => pairs.map(([k, v, eq]) => `${k}${eq}${eq ? v : ''}`).join('&')),
    fc.constantFrom('&&&', '=', '==&=', 'limit[]=1&limit[]=2', 'limit=1&limit=2', 'cursor=%ZZ', '?', 'a[b][c]=1'),
  );
}

interface Body {
  contentType?: string;
  payload?: string;
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
              '{"name":"\\u0000"}',
              'trace_id,called_at,result,charged,amount\nx,y,z,w,v\n',
              'trace_id,called_at,result,charged,amount\na\u0000b,0000-01-01T00:00:00Z,0,true,99999999999\n',
              '--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nbad\r\n--x--\r\n',
              '--x\r\nContent-Disposition: form-data; name="from"\r\n\r\n0000-01-01\r\n--x--\r\n',
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

// ── the targeted phase's requests ────────────────────────────────────────────

interface Case {
  op: Operation;
  field: Field;
  extreme: Extreme;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const STATEMENT_HEADER = 'trace_id,called_at,result,charged,amount\n';

function multipart(fields: Array<[string, string]>, boundary: string): string {
  const parts = fields.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  const file = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\nContent-Type: text/csv\r\n\r\n${STATEMENT_HEADER}\r\n`;
  return `${parts.join('')}${file}--${boundary}--\r\n`;
}

/** A text location (query, form, header) holds a string: objects and arrays go as repeated or bracketed names. */
function textPairs(name: string, value: unknown): Array<[string, string]> {
  if (Array.isArray(value)) return value.length ? value.map((v) => [name, asText(v)]) : [[`${name}[]`, '']];
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    return keys.length ? keys.map((k) => [`${name}[${k}]`, '1']) : [[name, '{}']];
  }
  return [[name, asText(value)]];
}

function caseFor(op: Operation, field: Field, extreme: Extreme, key: string, all: Field[]): Case | null {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  let path = plausiblePath(op);
  let body: string | undefined;
  switch (field.in) {
    case 'body':
      headers['content-type'] = 'application/json';
      body = JSON.stringify({ [field.name]: extreme.value });
      break;
    case 'query':
      path += `?${textPairs(field.name, extreme.value)
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join('&')}`;
      break;
    case 'form': {
      headers['content-type'] = 'multipart/form-data; boundary=fuzzboundary';
      const pairs = textPairs(field.name, extreme.value);
      // `from[]` or `from[a]` is another form field, which the upload ignores: the field itself was not sent.
      if (!pairs.some(([k]) => k === field.name)) return null;
      // The other date fields get a good value, so that a rule about them together (from needs to) does not speak first.
      const others = all
        .filter((f) => f.in === 'form' && f.name !== field.name && isDateField(f))
        .map((f): [string, string] => [f.name, '2024-01-01T00:00:00Z']);
      body = multipart([...others, ...pairs], 'fuzzboundary');
      break;
    }
    case 'header': {
      const text = asText(extreme.value);
      // HTTP itself cannot carry these in a header (Node refuses to send them); the server never sees them.
      if (typeof extreme.value === 'object' || /[^\t\u0020-\u007e\u0080-\u00ff]/.test(text)) return null;
      if (Buffer.byteLength(text) > 12_000) return null; // Node's 16 KB header limit answers 431 before idgate.
      headers[field.name.toLowerCase()] = text;
      if (op.method !== 'get' && op.method !== 'delete') {
        headers['content-type'] = 'application/json';
        body = '{}';
      }
      break;
    }
  }
  // Node's 16 KB limit on the request head answers 431 before idgate sees the request.
  if (path.length > 12_000) return null;
  return { op, field, extreme, path, headers, body };
}

/** Runs `work` over `items`, at most `limit` at a time, in order of start. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

describe('reliability: fuzzing every body, form, query and header of every operation', () => {
  const cleanup = new Cleanup();
  let db: TestDatabase;
  let sandbox: SandboxHandle;
  let idgate: Idgate;
  let url: string;
  let operations: Operation[];
  let components: Record<string, Schema>;
  const keys = new Map<Role, string>();

  beforeAll(async () => {
    db = await createTestDatabase();
    cleanup.defer(() => db.drop());
    // A fuzzed body may be a valid verification: it goes to a healthy sandbox.
    sandbox = await startSandbox({ port: 0, dailyLimits: false });
    cleanup.defer(() => sandbox.close());
    // The real server, as deployed: the same process, middleware and error handling as `npm start`.
    const env = {
      ...databaseEnv(db),
      PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      PII_HMAC_KEY: randomBytes(32).toString('base64'),
      AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
    };
    idgate = await startIdgate(cleanup, {
      ...env,
      UPSTREAM_TOKEN: 'reliability',
      UPSTREAM_BASE_URL: sandbox.url,
      UPSTREAM_BREAKER_THRESHOLD: '1000',
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      RATE_LIMIT_PER_MINUTE: '1000000',
      PII_SEARCH_PER_HOUR: '1000000',
      AUTH_FAILURES_PER_MINUTE: '1000000',
      LOG_LEVEL: 'error',
    });
    url = idgate.url;
    const admin = idgate.bootstrapKey!;
    keys.set('admin', admin);
    keys.set('client', await clientKey(url, admin, 'fuzz'));
    // A key that reads personal data in full is made from the CLI: one admin key alone may not mint it.
    const cli = await runCli(['keys', 'create', '--role', 'compliance', '--name', 'fuzz compliance', '--json'], env);
    if (cli.code !== 0) throw new Error(`keys create: ${cli.stderr}`);
    keys.set('compliance', (JSON.parse(cli.stdout.trim().split('\n').pop()!) as { key: string }).key);
    keys.set('finance', await staffKey(url, admin, 'finance'));
    const doc = (await send(url, 'GET', '/docs-json')).json as OpenApi;
    operations = operationsOf(doc);
    components = doc.components?.schemas ?? {};
    console.log(`fuzz: seed ${SEED} (FUZZ_SEED to replay), ${operations.length} operations`);
  });
  afterAll(() => cleanup.run());

  it('derives the operations and their inputs from the OpenAPI document', () => {
    const names = operations.map((op) => `${op.method.toUpperCase()} ${op.path}`);
    for (const expected of [
      'POST /v1/verifications',
      'GET /v1/verifications',
      'POST /v1/verifications/search',
      'POST /identity/idcard/ocr',
      'PUT /v1/clients/{id}/policy',
      'GET /v1/billing/usage',
      'POST /v1/billing/prices',
    ]) {
      expect(names).toContain(expected);
    }
    const inputs = (method: string, path: string) =>
      fieldsOf(
        operations.find((op) => op.method === method && op.path === path)!,
        components,
      ).map((f) => `${f.in}:${f.name}`);
    expect(inputs('post', '/v1/verifications')).toEqual(
      expect.arrayContaining(['body:name', 'body:id_card', 'body:image_url', 'header:Idempotency-Key']),
    );
    expect(inputs('get', '/v1/verifications')).toEqual(expect.arrayContaining(['query:from', 'query:limit']));
    expect(inputs('put', '/v1/clients/{id}/policy')).toEqual(expect.arrayContaining(['body:daily_limit']));
    expect(inputs('post', '/v1/billing/reconciliations')).toEqual(expect.arrayContaining(['form:from', 'query:to']));
  });

  const label = (op: Operation) => `${op.method.toUpperCase()} ${op.path}`;

  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  /** The checks every answer passes; `field`: a 400 must name it. Returns what is wrong, or null. */
  const verdict = (op: Operation, res: Reply, field?: string, refuse?: boolean): string | null => {
    if (res.status >= 500) return 'a 5xx';
    const leak = LEAK.exec(res.text)?.[0];
    if (leak) return `a leak: ${leak}`;
    if (refuse && res.status < 300) return 'accepted a value no field like this may take';
    if (res.status < 400) return null;
    const body = res.json as Record<string, unknown> | undefined;
    if (op.path.startsWith(UPSTREAM_COMPATIBLE)) {
      const error = body?.error as { code?: unknown; message?: unknown } | undefined;
      const shape =
        body?.success === false &&
        typeof error?.code === 'string' &&
        typeof error.message === 'string' &&
        typeof body.trace_id === 'string';
      if (!shape) return 'not the upstream’s error shape';
      const names = new RegExp(`(^|; )${escape(field ?? '')}[:.[]`);
      if (res.status === 400 && field && refuse && !names.test(String(error.message))) {
        return `a 400 not naming ${field}`;
      }
      return null;
    }
    if (!op.path.startsWith('/v1/')) return null;
    if (!/^application\/problem\+json/.test(String(res.headers['content-type']))) return 'not problem+json';
    if (body?.type === 'urn:idgate:problem:validation') {
      const errors = body.errors as Array<{ field?: unknown; message?: unknown }> | undefined;
      if (!errors?.length || errors.some((e) => typeof e.field !== 'string' || !e.field || !e.message)) {
        return 'a validation 400 without named fields';
      }
      // `limit[]=` or `limit[a]=` is a parameter of its own for the query parser: naming it counts.
      const names = (f: unknown) => f === field || [`${field}.`, `${field}[`].some((p) => String(f).startsWith(p));
      if (field && refuse && !errors.some((e) => names(e.field))) {
        return `a 400 not naming ${field}`;
      }
    } else if (res.status === 400 && field && refuse && body?.type !== 'urn:idgate:problem:malformed-json') {
      return `a 400 of type ${String(body?.type)}, not a validation problem naming ${field}`;
    }
    return null;
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

  const keyFor = (op: Operation) => {
    const role = op.roles.find((r) => keys.has(r as Role)) as Role | undefined;
    return keys.get(role ?? 'admin')!;
  };

  it('targeted: each extreme value in each input is refused where it must be, naming the field', async () => {
    const started = Date.now();
    const cases: Case[] = [];
    for (const op of operations) {
      const fields = fieldsOf(op, components);
      for (const field of fields) {
        for (const extreme of EXTREMES) {
          const c = caseFor(op, field, extreme, keyFor(op), fields);
          if (c) cases.push(c);
        }
      }
    }
    const failures: unknown[] = [];
    await pool(cases, CONCURRENCY, async (c) => {
      const where = { op: label(c.op), input: `${c.field.in}:${c.field.name}`, value: c.extreme.label };
      let res: Reply;
      try {
        res = await send(url, c.op.method.toUpperCase(), c.path, {
          headers: c.headers,
          body: c.body,
          timeoutMs: 20_000,
        });
      } catch (err) {
        failures.push({ ...where, wrong: `no answer: ${(err as Error).message}` });
        return;
      }
      const wrong = verdict(c.op, res, c.field.name, mustRefuse(c.field, c.extreme));
      const echoed =
        res.status >= 400 && typeof c.extreme.value === 'string' && c.extreme.value.length >= 8
          ? res.text.includes(JSON.stringify(c.extreme.value).slice(1, -1))
          : false;
      if (wrong || echoed) {
        failures.push({
          ...where,
          wrong: wrong ?? 'echoed the value',
          status: res.status,
          answer: res.text.slice(0, 300),
          cause: res.status >= 500 ? await lastUnhandled() : undefined,
        });
      }
    });
    console.log(`fuzz: targeted ${cases.length} cases in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(failures).toEqual([]);
    expect(cases.length).toBeGreaterThan(500);
  });

  it('random: never a 5xx, errors in the right shape, never a stack trace', async () => {
    const started = Date.now();
    const runsPerOp = Math.max(MIN_RUNS_PER_OP, Math.ceil(RANDOM_CASES / operations.length));
    const failures: unknown[] = [];
    let totalRuns = 0;
    for (const op of operations) {
      const roles = op.roles.filter((r): r is Role => keys.has(r as Role));
      const key = roles.length ? fc.constantFrom(...roles).map((r) => keys.get(r)!) : fc.constant(keys.get('admin')!);
      const hasBody = op.method !== 'get' && op.method !== 'delete';
      const bodyFields = fieldsOf(op, components)
        .filter((f) => f.in === 'body')
        .map((f) => f.name);
      const arb = fc.record({
        path: pathArb(op),
        query: queryArb(op),
        body: hasBody ? bodyArb(op, bodyFields) : fc.constant<Body>({}),
        key,
        idempotencyKey: fc.option(fc.string({ maxLength: 300 }).map(rawish), { freq: 4 }),
        requestId: fc.option(fc.string({ unit: 'binary', maxLength: 200 }).map(rawish), { freq: 4 }),
      });
      let failure: { reply: Reply; wrong: string; cause: string | null } | null = null;
      const property = fc.asyncProperty(arb, async (c) => {
        const headers: Record<string, string> = { authorization: `Bearer ${c.key}` };
        if (c.body.contentType) headers['content-type'] = c.body.contentType;
        if (c.idempotencyKey !== null && c.idempotencyKey !== '') headers['idempotency-key'] = c.idempotencyKey;
        if (c.requestId !== null && c.requestId !== '') headers['x-request-id'] = c.requestId;
        const res = await send(url, op.method.toUpperCase(), c.path + (c.query ? `?${c.query}` : ''), {
          headers,
          body: c.body.payload,
        });
        const wrong = verdict(op, res);
        if (wrong) {
          failure = { reply: res, wrong, cause: res.status >= 500 ? await lastUnhandled() : null };
          throw new Error(wrong);
        }
      });
      let details = await fc.check(property, {
        numRuns: runsPerOp,
        interruptAfterTimeLimit: TIME_LIMIT_PER_OP_MS,
        markInterruptAsFailure: false,
        seed: SEED,
      });
      if (!details.failed && details.numRuns < MIN_RUNS_PER_OP) {
        // A busy machine ran out the time limit first: the minimum is run anyway, however long it takes.
        const more = await fc.check(property, { numRuns: MIN_RUNS_PER_OP - details.numRuns, seed: SEED + 1 });
        details = { ...more, numRuns: details.numRuns + more.numRuns };
      }
      totalRuns += details.numRuns;
      if (details.failed && details.counterexample) {
        const f = failure as { reply: Reply; wrong: string; cause: string | null } | null;
        const c = details.counterexample[0];
        const text = c.body.payload ?? '';
        failures.push({
          op: label(op),
          wrong: f?.wrong,
          status: f?.reply.status,
          answer: f?.reply.text.slice(0, 300),
          cause: f?.cause,
          request: `${c.path}${c.query ? `?${c.query.slice(0, 200)}` : ''}`,
          contentType: c.body.contentType ?? null,
          body: text.length > 300 ? `${text.slice(0, 150)}… (${text.length} chars)` : text,
        });
        continue;
      }
      // Bounded in time, but never so short that an operation goes untested.
      expect({ op: op.path, enough: details.numRuns >= MIN_RUNS_PER_OP }).toEqual({ op: op.path, enough: true });
    }
    console.log(`fuzz: random ${totalRuns} cases (seed ${SEED}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(failures).toEqual([]);
    expect(totalRuns).toBeGreaterThanOrEqual(Math.min(RANDOM_CASES, operations.length * MIN_RUNS_PER_OP));
  });
});
