import { Controller, Get, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule } from '../src/app.module';
import { AuthFailures } from '../src/auth/auth-failures.service';
import { ROLES, Role } from '../src/auth/roles';
import { ProblemFilter } from '../src/common/problem.filter';
import { concretePath, documentedOperations, Operation } from './support/openapi';
import { startTestApp, TestApp } from './support/test-app';

/** The platform's endpoints and who may call them: the docs must say exactly this. */
const PLATFORM_ENDPOINTS: Array<[string, string, Array<Role | 'public'>]> = [
  ['post', '/v1/api-keys', ['admin']],
  ['get', '/v1/api-keys', ['admin']],
  ['delete', '/v1/api-keys/{id}', ['admin']],
  ['post', '/v1/clients', ['admin']],
  ['get', '/v1/clients', ['admin']],
  ['get', '/health/live', ['public']],
  ['get', '/health/ready', ['public']],
];

describe('authentication and roles', () => {
  let t: TestApp;
  const keys = {} as Record<Role, string>;
  let operations: Operation[];

  beforeAll(async () => {
    t = await startTestApp();
    for (const role of ROLES) keys[role] = (await t.keyFor(role)).key;
    operations = documentedOperations(t.app);
  });
  afterAll(() => t.close());

  const call = (op: Operation, headers: Record<string, string> = {}) => {
    let req = t.http[op.method](concretePath(op.path));
    for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
    return op.method === 'get' || op.method === 'delete' ? req : req.send({});
  };

  it('documents the platform endpoints with exactly the intended roles', () => {
    for (const [method, path, roles] of PLATFORM_ENDPOINTS) {
      const op = operations.find((o) => o.method === method && o.path === path);
      expect({ method, path, roles: op?.roles }).toEqual({ method, path, roles });
    }
  });

  it('declares roles on every documented operation', () => {
    expect(operations.length).toBeGreaterThanOrEqual(PLATFORM_ENDPOINTS.length);
    for (const op of operations) {
      expect({ op: `${op.method} ${op.path}`, declared: op.roles.length > 0 }).toEqual({
        op: `${op.method} ${op.path}`,
        declared: true,
      });
      if (!op.roles.includes('public')) {
        expect(String(op.spec.description)).toContain(`Roles: ${op.roles.join(', ')}.`);
        expect(op.spec.security).toEqual(expect.arrayContaining([{ bearer: [] }, { 'api-key': [] }]));
      }
    }
  });

  it('enforces on every endpoint exactly the roles it documents', async () => {
    for (const op of operations.filter((o) => !o.roles.includes('public'))) {
      const where = `${op.method.toUpperCase()} ${op.path}`;
      const anonymous = await call(op);
      expect({ where, status: anonymous.status }).toEqual({ where, status: 401 });
      for (const role of ROLES) {
        const res = await call(op, { Authorization: `Bearer ${keys[role]}` });
        if (op.roles.includes(role)) {
          expect({ where, role, passedGuard: ![401, 403].includes(res.status) }).toEqual({
            where,
            role,
            passedGuard: true,
          });
        } else {
          expect({ where, role, status: res.status }).toEqual({ where, role, status: 403 });
        }
      }
    }
  });

  it('accepts the key as X-API-Key too', async () => {
    await t.http.get('/v1/clients').set('X-API-Key', keys.admin).expect(200);
  });

  it('answers 401 problem+json for a missing, malformed, unknown or revoked key', async () => {
    const missing = await t.http.get('/v1/clients').expect(401);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(missing.body).toMatchObject({ type: 'urn:idgate:problem:unauthorized', status: 401 });

    await t.http.get('/v1/clients').set('Authorization', 'Bearer not-a-key').expect(401);
    const unknown = await t.http
      .get('/v1/clients')
      .set('Authorization', `Bearer idg_test_${'A'.repeat(40)}`)
      .expect(401);
    expect(unknown.body.detail).toBe('Unknown API key.');

    const doomed = await t.keyFor('admin');
    await t.http.get('/v1/clients').set('Authorization', `Bearer ${doomed.key}`).expect(200);
    await t.http.delete(`/v1/api-keys/${doomed.id}`).set('Authorization', `Bearer ${keys.admin}`).expect(200);
    const revoked = await t.http.get('/v1/clients').set('Authorization', `Bearer ${doomed.key}`).expect(401);
    expect(revoked.body.detail).toBe('This API key has been revoked.');
  });

  it('answers 403 problem+json for a role outside the declaration', async () => {
    const res = await t.http.get('/v1/api-keys').set('Authorization', `Bearer ${keys.finance}`).expect(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: 'urn:idgate:problem:forbidden', status: 403 });
    expect(res.body.detail).toBe('This endpoint is for: admin.');
  });
});

@Controller('v1/undeclared')
class UndeclaredController {
  @Get()
  secret() {
    return { leaked: true };
  }
}

@Module({ controllers: [UndeclaredController] })
class UndeclaredModule {}

describe('default deny', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('refuses an endpoint that declares no roles, even to an admin', async () => {
    const admin = (await t.keyFor('admin')).key;
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.forRoot(t.config), UndeclaredModule],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    app.useGlobalFilters(new ProblemFilter());
    await app.init();
    try {
      const res = await request(app.getHttpServer()).get('/v1/undeclared').set('Authorization', `Bearer ${admin}`);
      expect(res.status).toBe(403);
      expect(res.body).not.toHaveProperty('leaked');
    } finally {
      await app.close();
    }
  });
});

describe('ambiguous credentials are refused, never guessed at', () => {
  let t: TestApp;
  let admin: string;
  let other: string;
  beforeAll(async () => {
    t = await startTestApp();
    admin = (await t.keyFor('admin')).key;
    other = (await t.keyFor('admin')).key;
  });
  afterAll(() => t.close());

  const reasonOf = async (requestId: string) => {
    const [row] = await t.prisma.auditEvent.findMany({
      where: { action: 'auth.failed', details: { path: ['caller_request_id'], equals: requestId } },
    });
    return row?.details as Record<string, unknown> | undefined;
  };

  it('two different keys in Authorization and X-API-Key: 401, whichever is valid', async () => {
    const unknown = `idg_test_${'U'.repeat(40)}`;
    const cases: Array<[string, string, string]> = [
      ['both-valid', `Bearer ${admin}`, other],
      ['bearer-valid', `Bearer ${admin}`, unknown],
      ['header-valid', `Bearer ${unknown}`, admin],
      ['case-differs', `Bearer ${admin}`, admin.toLowerCase()],
    ];
    for (const [id, authorization, apiKey] of cases) {
      const res = await t.http
        .get('/v1/clients')
        .set('Authorization', authorization)
        .set('X-API-Key', apiKey)
        .set('X-Request-Id', `conflict-${id}`);
      expect({ id, status: res.status }).toEqual({ id, status: 401 });
      expect(res.body).toMatchObject({ type: 'urn:idgate:problem:unauthorized' });
      expect(res.body.detail).toMatch(/different keys/);
    }
    const details = await reasonOf('conflict-both-valid');
    expect(details).toMatchObject({
      reason: 'conflicting_credentials',
      key_prefixes: [admin.slice(0, 17), other.slice(0, 17)],
    });
    // The same key in both is one key.
    await t.http.get('/v1/clients').set('Authorization', `Bearer ${admin}`).set('X-API-Key', admin).expect(200);
  });

  it('a malformed Bearer does not fall back to X-API-Key', async () => {
    for (const [i, authorization] of [
      'Bearer',
      `Bearer ${admin} ${admin}`,
      `Bearer ${admin},${other}`,
      `Bearer${admin}`,
      admin, // a key without a scheme
      `Token ${admin}`, // an idgate key under another scheme
    ].entries()) {
      // Each on its own in the audit trail: refusals from one source and minute are otherwise summarised.
      await t.app.get(AuthFailures).flush(true);
      const res = await t.http
        .get('/v1/clients')
        .set('Authorization', authorization)
        .set('X-API-Key', admin)
        .set('X-Request-Id', `malformed-${i}`);
      expect({ i, status: res.status }).toEqual({ i, status: 401 });
      expect(await reasonOf(`malformed-${i}`)).toMatchObject({ reason: 'malformed_credentials' });
    }
  });

  it('two X-API-Key headers are refused; another scheme (a proxy’s Basic) is not ours and is ignored', async () => {
    // An array becomes two header lines (the typings admit arrays for Cookie only); Node joins them with ", ".
    const twice = (a: string, b: string) => [a, b] as unknown as string;
    await t.http.get('/v1/clients').set('X-API-Key', twice(admin, other)).expect(401);
    await t.http.get('/v1/clients').set('X-API-Key', twice(admin, admin)).expect(401);
    await t.http.get('/v1/clients').set('Authorization', 'Basic dXNlcjpwYXNz').set('X-API-Key', admin).expect(200);
    await t.http.get('/v1/clients').set('Authorization', 'Basic dXNlcjpwYXNz').expect(401);
  });

  it('the drop-in endpoint refuses them too, in the upstream’s format', async () => {
    const res = await t.http
      .post('/identity/idcard/ocr')
      .set('Authorization', `Bearer ${admin}`)
      .set('X-API-Key', other)
      .send({ name: '张三', id_card: '110101199003071234' })
      .expect(401);
    expect(res.body).toMatchObject({ success: false, error: { code: 'invalid_token' } });
  });
});
