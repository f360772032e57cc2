import { startTestApp, TestApp } from './support/test-app';

describe('operations: logs and API docs', () => {
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    t = await startTestApp();
    admin = (await t.keyFor('admin')).key;
  });
  afterAll(() => t.close());

  it('writes JSON log lines with a request id and never the API key', async () => {
    const res = await t.http
      .get('/v1/clients')
      .set('Authorization', `Bearer ${admin}`)
      .set('X-Request-Id', 'ops-req-1')
      .expect(200);
    await t.http.get('/v1/clients').set('X-API-Key', admin).expect(200);
    await t.http
      .get('/v1/clients')
      .set('Authorization', `Bearer idg_test_${'Z'.repeat(40)}`)
      .expect(401);
    expect(res.headers['x-request-id']).toBe('ops-req-1');

    const lines = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const requestLines = lines.filter((l) => l.req !== undefined);
    expect(requestLines.length).toBeGreaterThanOrEqual(3);
    for (const line of requestLines) expect(line.request_id).toEqual(expect.any(String));
    expect(requestLines.some((l) => l.request_id === 'ops-req-1')).toBe(true);

    const all = t.logs.join('\n');
    expect(all).not.toContain(admin);
    expect(all).not.toContain('Z'.repeat(40));
  });

  it('serves the OpenAPI document with both API-key schemes and described DTO properties', async () => {
    const res = await t.http.get('/docs-json').expect(200);
    const doc = res.body;
    expect(doc.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      'api-key': expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
    });
    const undescribed: string[] = [];
    for (const [schemaName, schema] of Object.entries<Record<string, unknown>>(doc.components.schemas)) {
      for (const [prop, spec] of Object.entries<Record<string, unknown>>(
        (schema.properties as Record<string, Record<string, unknown>>) ?? {},
      )) {
        if (!spec.description) undescribed.push(`${schemaName}.${prop}`);
      }
    }
    expect(undescribed).toEqual([]);
    const html = await t.http.get('/docs').redirects(1).expect(200);
    expect(html.text).toContain('swagger-ui');
  });
});
