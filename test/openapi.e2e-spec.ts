import { startTestApp, TestApp } from './support/test-app';

/*
 * The served OpenAPI document (/docs-json) as a client developer reads it: every operation
 * documents its errors with a schema and an example, every body it takes or returns has an
 * example, and the examples say only what the schemas declare. (That the e2e suites never see
 * a status an operation does not document is checked at the end of the run: status-recorder.ts.)
 */

type Schema = {
  $ref?: string;
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  allOf?: Schema[];
  additionalProperties?: boolean | Schema;
};
type Media = { schema?: Schema; example?: unknown; examples?: Record<string, { value: unknown }> };
type Operation = {
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { description?: string; content?: Record<string, Media> }>;
  'x-idgate-roles'?: string[];
};
type Document = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Schema> } };

let t: TestApp;
let doc: Document;

beforeAll(async () => {
  t = await startTestApp();
  doc = (await t.http.get('/docs-json').expect(200)).body;
});
afterAll(async () => {
  await t?.close();
});

function operations(): { name: string; path: string; operation: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      name: `${method.toUpperCase()} ${path}`,
      path,
      operation,
    })),
  );
}

function examplesOf(media: Media): unknown[] {
  if (media.example !== undefined) return [media.example];
  return Object.values(media.examples ?? {}).map((e) => e.value);
}

function resolve(schema: Schema): Schema {
  if (!schema.$ref) return schema;
  return doc.components.schemas[schema.$ref.split('/').pop() as string] ?? {};
}

/** Keys of `example` that its schema does not declare, as dotted paths (extensions of a problem are allowed). */
function undeclared(example: unknown, schema: Schema, at: string): string[] {
  let s = resolve(schema);
  // allOf (a nullable reference): the union of what its parts declare.
  if (s.allOf) s = { properties: Object.assign({}, ...s.allOf.map((part) => resolve(part).properties ?? {})) };
  if (Array.isArray(example))
    return s.items ? example.flatMap((item, i) => undeclared(item, s.items!, `${at}[${i}]`)) : [];
  if (example === null || typeof example !== 'object' || !s.properties) return [];
  if (schema.$ref?.endsWith('/ProblemDto')) return []; // problem+json admits extension members (RFC 9457 §3.2)
  return Object.entries(example as Record<string, unknown>).flatMap(([key, value]) =>
    s.properties![key] ? undeclared(value, s.properties![key], `${at}.${key}`) : [`${at}.${key}`],
  );
}

describe('the OpenAPI document', () => {
  it('documents, for every operation with an API key, the errors every request can get', () => {
    const missing: string[] = [];
    for (const { name, operation } of operations()) {
      if (operation['x-idgate-roles']?.includes('public')) continue;
      for (const status of ['400', '401', '403', '429', '503']) {
        if (!operation.responses[status]) missing.push(`${name} ${status}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('gives every error a schema: problem+json on /v1, the upstream’s own shape on the drop-in', () => {
    const wrong: string[] = [];
    for (const { name, path, operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        const expected = path.startsWith('/identity/')
          ? ['application/json', '#/components/schemas/UpstreamErrorDto']
          : path === '/health/ready' && status === '503'
            ? ['application/json', '#/components/schemas/ReadinessDto'] // the probe's report, whatever it says
            : ['application/problem+json', '#/components/schemas/ProblemDto'];
        const types = Object.keys(response.content ?? {});
        const ref = response.content?.[expected[0]]?.schema?.$ref;
        if (types.length !== 1 || ref !== expected[1]) wrong.push(`${name} ${status}: ${types.join(',') || 'no body'}`);
        if (!response.description) wrong.push(`${name} ${status}: no description`);
      }
    }
    expect(wrong).toEqual([]);
    expect(Object.keys(doc.components.schemas.ProblemDto.properties ?? {})).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail', 'instance', 'request_id', 'errors']),
    );
  });

  it('has an example for every request body and every response body', () => {
    const without: string[] = [];
    for (const { name, operation } of operations()) {
      for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
        if (examplesOf(media).length === 0) without.push(`${name} request ${type}`);
      }
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 300 && status !== '204' && !response.content) without.push(`${name} ${status}: no body`);
        for (const [type, media] of Object.entries(response.content ?? {})) {
          if (examplesOf(media).length === 0) without.push(`${name} ${status} ${type}`);
        }
      }
    }
    expect(without).toEqual([]);
  });

  it('has examples that agree with their response: the status, the problem type, the upstream codes', () => {
    const wrong: string[] = [];
    const upstreamCodes = [
      'token_mismatched',
      'invalid_token',
      'api_not_implemented',
      'too_many_requests',
      'api_error',
    ];
    for (const { name, operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          for (const example of examplesOf(media)) {
            const e = example as Record<string, unknown>;
            if (type === 'application/problem+json') {
              if (e.status !== Number(status)) wrong.push(`${name} ${status}: example status ${String(e.status)}`);
              if (typeof e.type !== 'string' || !e.type.startsWith('urn:idgate:problem:'))
                wrong.push(`${name} ${status}: example type ${String(e.type)}`);
              if (e.type === 'urn:idgate:problem:validation' && !(Array.isArray(e.errors) && e.errors.length > 0))
                wrong.push(`${name} ${status}: a validation example names no field`);
            }
            if (media.schema?.$ref?.endsWith('/UpstreamErrorDto')) {
              const code = (e.error as { code?: string } | undefined)?.code;
              if (e.success !== false || !upstreamCodes.includes(code ?? ''))
                wrong.push(`${name} ${status}: upstream-style example ${JSON.stringify(e)}`);
            }
          }
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has examples that say only what their schema declares', () => {
    const found: string[] = [];
    for (const { name, operation } of operations()) {
      const bodies = [
        ...Object.values(operation.requestBody?.content ?? {}).map((m) => ['request', m] as const),
        ...Object.entries(operation.responses).flatMap(([status, r]) =>
          Object.values(r.content ?? {}).map((m) => [status, m] as const),
        ),
      ];
      for (const [where, media] of bodies) {
        if (!media.schema) continue;
        for (const example of examplesOf(media)) {
          found.push(...undeclared(example, media.schema, '').map((k) => `${name} ${where}: ${k}`));
        }
      }
    }
    expect(found).toEqual([]);
  });

  it('documents the drop-in’s request with the upstream documentation’s own examples', () => {
    const dropIn = doc.paths['/identity/idcard/ocr'].post;
    const examples = examplesOf(dropIn.requestBody!.content['application/json']);
    expect(examples).toEqual(
      expect.arrayContaining([
        { name: '张三', id_card: '360426199101010071' },
        expect.objectContaining({ image_url: expect.any(String) }),
      ]),
    );
    // Its 401 is in the upstream's shape, as it answers.
    const unauthorized = dropIn.responses['401'].content!['application/json'];
    expect(examplesOf(unauthorized)[0]).toMatchObject({ success: false, error: { code: 'invalid_token' } });
  });
});

describe('what the drop-in answers matches what it documents', () => {
  it('answers 401 in the upstream’s shape, not problem+json', async () => {
    const res = await t.http.post('/identity/idcard/ocr').send({ name: '张三', id_card: '360426199101010071' });
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ success: false, error: { code: 'invalid_token', message: expect.any(String) } });
    expect(Object.keys(res.body).sort()).toEqual(['error', 'success', 'trace_id']);
  });
});
