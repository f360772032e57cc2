import { startTestApp, TestApp } from './support/test-app';

describe('errors are RFC 9457 problem+json', () => {
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    t = await startTestApp({ bodyLimitBytes: 4096 });
    admin = (await t.keyFor('admin')).key;
  });
  afterAll(() => t.close());

  const expectProblem = (
    res: { status: number; headers: Record<string, string>; body: Record<string, unknown>; text: string },
    status: number,
    type: string,
  ) => {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: `urn:idgate:problem:${type}`, status, title: expect.any(String) });
    expect(res.body.request_id).toBe(res.headers['x-request-id']);
    expect(res.text).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
  };

  it('validation errors name the field', async () => {
    const res = await t.http.post('/v1/clients').set('Authorization', `Bearer ${admin}`).send({ name: '' });
    expectProblem(res, 400, 'validation');
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'name' })]);
    expect(res.body.detail).toContain('name');
  });

  it('unknown fields are refused, by name', async () => {
    const res = await t.http
      .post('/v1/clients')
      .set('Authorization', `Bearer ${admin}`)
      .send({ name: 'ok', admin: true });
    expectProblem(res, 400, 'validation');
    expect(res.body.errors).toEqual([{ field: 'admin', message: 'property admin should not exist' }]);
  });

  it('malformed JSON is a 400, not a 500', async () => {
    const res = await t.http
      .post('/v1/clients')
      .set('Authorization', `Bearer ${admin}`)
      .set('Content-Type', 'application/json')
      .send('{"name": "x",');
    expectProblem(res, 400, 'malformed-json');
  });

  it('an oversized body is a 413 and is not processed', async () => {
    const res = await t.http
      .post('/v1/clients')
      .set('Authorization', `Bearer ${admin}`)
      .send({ name: 'big', padding: 'x'.repeat(10_000) });
    expectProblem(res, 413, 'payload-too-large');
    expect(await t.prisma.client.count({ where: { name: 'big' } })).toBe(0);
  });

  it('deeply nested JSON is a 400, not a stack overflow', async () => {
    const deep = '{"a":'.repeat(600) + '1' + '}'.repeat(600); // under this suite's 4 KB body limit
    const res = await t.http
      .post('/v1/clients')
      .set('Authorization', `Bearer ${admin}`)
      .set('Content-Type', 'application/json')
      .send(deep);
    expectProblem(res, 400, 'bad-request');
    const arrays = await t.http
      .post('/v1/clients')
      .set('Authorization', `Bearer ${admin}`)
      .set('Content-Type', 'application/json')
      .send('['.repeat(1500) + ']'.repeat(1500));
    expectProblem(arrays, 400, 'bad-request');
  });

  it('unknown routes are 404 problem+json', async () => {
    expectProblem(await t.http.get('/v1/nothing-here'), 404, 'not-found');
    expectProblem(await t.http.get('/nothing'), 404, 'not-found');
  });

  it('echoes a caller-supplied safe request id and replaces an unsafe one', async () => {
    const own = await t.http.get('/v1/nothing').set('X-Request-Id', 'trace-123_abc');
    expect(own.headers['x-request-id']).toBe('trace-123_abc');
    expect(own.body.request_id).toBe('trace-123_abc');
    const unsafe = await t.http.get('/v1/nothing').set('X-Request-Id', 'bad id {with} "quotes"');
    expect(unsafe.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('refusals past the limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ abuse: { authFailuresPerMinute: 2 } });
  });
  afterAll(() => t.close());

  it('are a 429 problem+json with Retry-After and the request id, not another 401', async () => {
    await t.http.get('/v1/clients').expect(401);
    await t.http.get('/v1/clients').set('Authorization', 'Bearer nope').expect(401);
    const res = await t.http.get('/v1/clients').set('X-Request-Id', 'limited-1');
    expect(res.status).toBe(429);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({
      type: 'urn:idgate:problem:rate-limited',
      status: 429,
      request_id: 'limited-1',
      instance: '/v1/clients',
      retry_after_seconds: Number(res.headers['retry-after']),
    });
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.text).not.toMatch(/\bat .+\.(ts|js):\d+/);
  });
});
