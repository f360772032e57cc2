import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Controller, Get, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule } from '../../src/app.module';
import { ApiKeysService } from '../../src/auth/api-keys.service';
import { AuthFailures } from '../../src/auth/auth-failures.service';
import { Authenticated } from '../../src/auth/authenticated.decorator';
import { ProblemException } from '../../src/common/problem';
import { ProblemFilter } from '../../src/common/problem.filter';
import { RateLimitStore } from '../../src/auth/rate-limit-store';
import { createTestDatabase, TestDatabase } from '../support/databases';
import { startTestApp, TestApp } from '../support/test-app';

/*
 * Issue 12 point 10: refused requests (401, 403) are counted per client address and per
 * key; past AUTH_FAILURES_PER_MINUTE they get 429, and they cannot flood the audit trail
 * (one event per source, reason and minute, then a summary with the count). The app trusts
 * the loopback proxy so that each test can speak from addresses of its own (X-Forwarded-For).
 */

const LIMIT = 5;

type Row = { action: string; outcome: string; requestId: string | null; details: Record<string, unknown> };

describe('refused traffic is counted, limited and aggregated', () => {
  let t: TestApp;
  const keys: Record<string, { key: string; id: string }> = {};

  beforeAll(async () => {
    t = await startTestApp({ abuse: { authFailuresPerMinute: LIMIT }, http: { trustProxy: ['loopback'] } });
    for (const role of ['admin', 'finance', 'compliance'] as const) keys[role] = await t.keyFor(role);
  });
  afterAll(() => t.close());

  const from = (ip: string) => ({ 'X-Forwarded-For': ip });
  const unknownKey = () => `idg_test_${randomBytes(30).toString('base64url')}`;
  const rows = async (ip: string): Promise<Row[]> =>
    (await t.prisma.auditEvent.findMany({
      where: { ip },
      orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }],
      select: { action: true, outcome: true, requestId: true, details: true },
    })) as Row[];
  const flush = () => t.app.get(AuthFailures).flush(true);

  /** Every kind of refusal an anonymous caller can produce, in turn. */
  const refusals = [
    (ip: string, _finance: string) => t.http.get('/v1/clients').set(from(ip)),
    (ip: string) => t.http.get('/v1/audit/events').set(from(ip)).set('Authorization', `Bearer ${unknownKey()}`),
    (ip: string) => t.http.post('/v1/verifications').set(from(ip)).set('X-API-Key', unknownKey()).send({}),
    (ip: string) => t.http.get('/v1/me').set(from(ip)).set('Authorization', 'Bearer a b'),
    (ip: string) =>
      t.http
        .get('/v1/me')
        .set(from(ip))
        .set('Authorization', `Bearer ${keys.admin.key}`)
        .set('X-API-Key', unknownKey()),
    (ip: string) => t.http.post('/identity/idcard/ocr').set(from(ip)).send({}),
    (ip: string, finance: string) => t.http.get('/v1/api-keys').set(from(ip)).set('Authorization', `Bearer ${finance}`),
  ];

  it('answers the first refusals as usual, then 429 with Retry-After, for every kind of refusal', async () => {
    const ip = '203.0.113.10';
    const finance = (await t.keyFor('finance')).key;
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await refusals[i % refusals.length](ip, finance);
      statuses.push(res.status);
      if (i >= LIMIT) {
        expect(res.headers['www-authenticate']).toBeUndefined();
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
        if (!res.headers['content-type']?.startsWith('application/problem+json')) {
          // The drop-in endpoint answers in the upstream's format.
          expect(res.body.error.code).toBe('too_many_requests');
        } else {
          expect(res.body).toMatchObject({ type: 'urn:idgate:problem:rate-limited', status: 429 });
        }
      }
    }
    expect(statuses.slice(0, LIMIT)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses[6]).toBe(429); // the 403 of a valid key's role too
    expect(new Set(statuses.slice(LIMIT))).toEqual(new Set([429]));
    // Another address is not affected.
    await t.http.get('/v1/clients').set(from('203.0.113.11')).expect(401);
  });

  it('writes one event per source, reason and minute, plus one summary with the count: not one per request', async () => {
    const ip = '203.0.113.20';
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) await t.http.get('/v1/clients').set(from(ip));
    };
    await send(LIMIT); // 401s
    await send(300); // 429s
    const before = await rows(ip);
    expect(before.map((r) => [r.action, r.details.reason])).toEqual([
      ['auth.failed', 'missing_key'],
      ['security.alert', 'auth_failures_exceeded'],
      ['auth.failed', 'too_many_failures'],
    ]);
    expect(before[1].details).toEqual({
      reason: 'auth_failures_exceeded',
      dimension: 'address',
      source: ip,
      limit: LIMIT,
      window_seconds: 60,
    });
    // Hundreds more refusals in the same minute add nothing.
    await send(100);
    expect(await rows(ip)).toHaveLength(3);

    await flush(); // the window closes (at shutdown, or by the minute)
    const after = await rows(ip);
    const summaries = after.filter((r) => r.details.aggregated === true);
    expect(summaries.map((r) => [r.action, r.details.reason, r.details.count])).toEqual(
      expect.arrayContaining([
        ['auth.failed', 'missing_key', LIMIT - 1],
        ['auth.failed', 'too_many_failures', 399],
      ]),
    );
    expect(after).toHaveLength(5);
    for (const s of summaries) {
      expect(s.requestId).toBeNull();
      expect(s.details).toMatchObject({ endpoints: ['GET /v1/clients'], window_start: expect.any(String) });
    }
  });

  it('never counts successful requests: a benchmark from one address is not limited', async () => {
    const ip = '203.0.113.30';
    for (let i = 0; i < 200; i++) {
      await t.http.get('/v1/me').set(from(ip)).set('Authorization', `Bearer ${keys.admin.key}`).expect(200);
    }
    for (let i = 0; i < LIMIT; i++) await t.http.get('/v1/clients').set(from(ip)).expect(401);
    await t.http.get('/v1/clients').set(from(ip)).expect(429);
    // A valid key on an endpoint its role may use still passes from that address (a shared proxy or
    // NAT must not lock out everyone behind it); what would have been refused gets 429.
    await t.http.get('/v1/me').set(from(ip)).set('Authorization', `Bearer ${keys.admin.key}`).expect(200);
    await t.http.get('/v1/clients').set(from(ip)).set('X-API-Key', keys.admin.key).expect(200);
    await t.http.get('/v1/api-keys').set(from(ip)).set('Authorization', `Bearer ${keys.finance.key}`).expect(429);
  });

  it('counts per key across addresses: a known key refused by role, an unknown key, a revoked key', async () => {
    const finance = await t.keyFor('finance');
    for (let i = 0; i < LIMIT; i++) {
      await t.http
        .get('/v1/api-keys')
        .set(from(`198.51.100.${i}`))
        .set('Authorization', `Bearer ${finance.key}`)
        .expect(403);
    }
    const limited = await t.http
      .get('/v1/api-keys')
      .set(from('198.51.100.99'))
      .set('Authorization', `Bearer ${finance.key}`)
      .expect(429);
    expect(limited.body.type).toBe('urn:idgate:problem:rate-limited');
    // Its allowed endpoints still work.
    await t.http.get('/v1/me').set(from('198.51.100.99')).set('Authorization', `Bearer ${finance.key}`).expect(200);
    const [alert] = await t.prisma.auditEvent.findMany({
      where: { action: 'security.alert', actorId: finance.id },
    });
    expect(alert.details).toMatchObject({ dimension: 'key', key_prefix: finance.key.slice(0, 17), limit: LIMIT });

    const unknown = unknownKey();
    for (let i = 0; i < LIMIT; i++) {
      await t.http
        .get('/v1/me')
        .set(from(`198.51.101.${i}`))
        .set('Authorization', `Bearer ${unknown}`)
        .expect(401);
    }
    const lookups = jest.spyOn(t.app.get(ApiKeysService), 'authenticate');
    try {
      await t.http.get('/v1/me').set(from('198.51.101.99')).set('X-API-Key', unknown).expect(429);
      // Refused on its count alone: the database is not asked about a key that keeps failing.
      expect(lookups).not.toHaveBeenCalled();
    } finally {
      lookups.mockRestore();
    }

    const revoked = await t.keyFor('admin');
    await t.http.delete(`/v1/api-keys/${revoked.id}`).set('Authorization', `Bearer ${keys.admin.key}`).expect(200);
    for (let i = 0; i < LIMIT; i++) {
      await t.http
        .get('/v1/me')
        .set(from(`198.51.102.${i}`))
        .set('Authorization', `Bearer ${revoked.key}`)
        .expect(401);
    }
    await t.http.get('/v1/me').set(from('198.51.102.99')).set('Authorization', `Bearer ${revoked.key}`).expect(429);
  });

  it('counts an IPv6 client by its /64', async () => {
    for (let i = 1; i <= LIMIT; i++)
      await t.http
        .get('/v1/clients')
        .set(from(`2001:db8:1:2::${i}`))
        .expect(401);
    await t.http.get('/v1/clients').set(from('2001:db8:1:2:ffff::77')).expect(429);
    await t.http.get('/v1/clients').set(from('2001:db8:1:3::1')).expect(401);
    const [alert] = await t.prisma.auditEvent.findMany({
      where: { action: 'security.alert', ip: '2001:db8:1:2:ffff::77' },
    });
    expect(alert.details).toMatchObject({ dimension: 'address', source: '2001:db8:1:2::/64' });
  });

  it('raises one security alert per source and minute, counted in /metrics', async () => {
    const alertsMetric = async () => {
      const text = (await t.http.get('/metrics').expect(200)).text;
      return Number(/idgate_security_alerts_total\{reason="auth_failures_exceeded"\} (\d+)/.exec(text)?.[1]);
    };
    const before = await alertsMetric();
    const ip = '203.0.113.40';
    for (let i = 0; i < LIMIT + 50; i++) await t.http.get('/v1/clients').set(from(ip));
    expect(await alertsMetric()).toBe(before + 1);
    expect(await t.prisma.auditEvent.count({ where: { action: 'security.alert', ip } })).toBe(1);
  });

  it('never writes the presented key, only its visible prefix', async () => {
    const secret = unknownKey();
    const ip = '203.0.113.50';
    for (let i = 0; i < 20; i++) await t.http.get('/v1/me').set(from(ip)).set('Authorization', `Bearer ${secret}`);
    await flush();
    const text = JSON.stringify(await rows(ip));
    expect(text).toContain(secret.slice(0, 17));
    expect(text).not.toContain(secret);
    expect(t.logs.join('\n')).not.toContain(secret);
  });
});

describe('a key at its request limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ rateLimit: { perMinute: 3 } });
  });
  afterAll(() => t.close());

  it('gets 429 on endpoints its role may not use too, and no audit row for them', async () => {
    const finance = await t.keyFor('finance');
    for (let i = 0; i < 3; i++) await t.http.get('/v1/me').set('Authorization', `Bearer ${finance.key}`).expect(200);
    for (let i = 0; i < 20; i++) {
      const res = await t.http.get('/v1/api-keys').set('Authorization', `Bearer ${finance.key}`).expect(429);
      expect(res.body.detail).toMatch(/This API key may make 3 requests/);
    }
    expect(await t.prisma.auditEvent.count({ where: { action: 'auth.denied', actorId: finance.id } })).toBe(0);
  });
});

@Controller('v1/handler-refusals')
class HandlerRefusalsController {
  @Get()
  @Authenticated({ roles: ['admin'], summary: 'test only' })
  refuse(): never {
    throw new ProblemException('forbidden', 'Refused by the handler.');
  }
}

@Module({ controllers: [HandlerRefusalsController] })
class HandlerRefusalsModule {}

describe('refusals answered by a handler', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ abuse: { authFailuresPerMinute: LIMIT } });
  });
  afterAll(() => t.close());

  it('count against the address and the key like the guard’s own', async () => {
    const admin = (await t.keyFor('admin')).key;
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.forRoot(t.config), HandlerRefusalsModule],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    app.useGlobalFilters(new ProblemFilter());
    await app.init();
    try {
      const http = request(app.getHttpServer());
      for (let i = 0; i < LIMIT; i++) {
        await http.get('/v1/handler-refusals').set('Authorization', `Bearer ${admin}`).expect(403);
      }
      // The address is now past its limit: the next refusal, of any kind, is a 429.
      await http.get('/v1/clients').expect(429);
      await http.get('/v1/clients').set('Authorization', `Bearer ${admin}`).expect(200);
    } finally {
      await app.close();
    }
  });
});

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('failure counts shared through Redis', () => {
  let db: TestDatabase;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db.drop();
  });

  it('hold across two instances when Redis is up, and per instance when it is down', async () => {
    const redisUp = await reachable(6379);
    if (!redisUp)
      process.stderr.write('Redis not reachable on 127.0.0.1:6379: testing the per-process fallback only\n');
    const redisUrl = redisUp ? 'redis://127.0.0.1:6379' : 'redis://127.0.0.1:1';
    const config = {
      rateLimit: { redisUrl },
      abuse: { authFailuresPerMinute: 4 },
      http: { trustProxy: ['loopback'] },
    };
    const one = await startTestApp(config, db);
    apps.push(one);
    const two = await startTestApp(config, db);
    apps.push(two);
    for (const app of [one, two])
      expect(await app.app.get(RateLimitStore).whenShared(redisUp ? 5000 : 50)).toBe(redisUp);
    // A source address new in every run: counters in a shared Redis outlive a run by a minute.
    const ip = `10.${randomBytes(1)[0]}.${randomBytes(1)[0]}.${randomBytes(1)[0]}`;
    const statuses: number[] = [];
    for (const app of [one, two, one, two, one, two]) {
      statuses.push((await app.http.get('/v1/clients').set('X-Forwarded-For', ip)).status);
    }
    if (redisUp) {
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    } else {
      expect(statuses).toEqual([401, 401, 401, 401, 401, 401]);
      expect((await one.http.get('/v1/clients').set('X-Forwarded-For', ip)).status).toBe(401);
      expect((await one.http.get('/v1/clients').set('X-Forwarded-For', ip)).status).toBe(429);
    }
  });
});
