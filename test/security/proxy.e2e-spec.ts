import { createApp } from '../../src/app.factory';
import { AuthFailures } from '../../src/auth/auth-failures.service';
import { ConfigError } from '../../src/config/environment';
import { createTestDatabase, TestDatabase } from '../support/databases';
import { startTestApp, TestApp, testConfig } from '../support/test-app';

/*
 * Issue 12 point 12. Behind a proxy the socket is the proxy: the client's address is in
 * X-Forwarded-For, which anyone can write, so it is believed from TRUST_PROXY's proxies
 * only (default: none). And a caller's X-Request-Id is kept only when well-formed and
 * never taken for unique: audit events carry idgate's own request id.
 */

/** The response's log line is written when the response has gone out: possibly just after the client has it. */
async function eventually<T>(find: () => T | undefined): Promise<T | undefined> {
  for (let i = 0; i < 100; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// First in the file: nestjs-pino keeps one logger per process, writing to the first app's log stream.
describe('X-Request-Id, and log lines behind a proxy', () => {
  let t: TestApp;
  let admin: string;
  beforeAll(async () => {
    t = await startTestApp({ http: { trustProxy: ['loopback'] } });
    admin = (await t.keyFor('admin')).key;
  });
  afterAll(() => t.close());

  type LogLine = { request_id?: string; idgate_request_id?: string; res?: unknown };
  const logLines = () => t.logs.map((l) => JSON.parse(l) as LogLine);

  it('is echoed when well-formed, but the audit trail records idgate’s own id and the caller’s beside it', async () => {
    const res = await t.http
      .get('/v1/clients')
      .set('X-Request-Id', 'trace-abc.1')
      .set('X-Forwarded-For', '203.0.113.60')
      .expect(401);
    expect(res.headers['x-request-id']).toBe('trace-abc.1');
    expect(res.body.request_id).toBe('trace-abc.1');
    const [row] = await t.prisma.auditEvent.findMany({ where: { action: 'auth.failed', ip: '203.0.113.60' } });
    expect(row.requestId).toMatch(UUID);
    expect(row.details).toMatchObject({ reason: 'missing_key', caller_request_id: 'trace-abc.1' });
    // The response's log line carries both, so an operator can go from one to the other.
    const line = await eventually(() => logLines().find((l) => l.res !== undefined && l.request_id === 'trace-abc.1'));
    expect(line?.idgate_request_id).toBe(row.requestId);
  });

  it('is not taken for unique: the same id on several requests gives each its own audit request id', async () => {
    for (const ip of ['203.0.113.61', '203.0.113.62', '203.0.113.63']) {
      await t.http.get('/v1/clients').set('X-Request-Id', 'same-id').set('X-Forwarded-For', ip).expect(401);
    }
    for (const name of ['same-1', 'same-2']) {
      await t.http
        .post('/v1/clients')
        .set('Authorization', `Bearer ${admin}`)
        .set('X-Request-Id', 'same-id')
        .send({ name })
        .expect(201);
    }
    const rows = await t.prisma.auditEvent.findMany({
      where: {
        OR: [
          { action: 'auth.failed', ip: { in: ['203.0.113.61', '203.0.113.62', '203.0.113.63'] } },
          { action: 'client.created', details: { path: ['client_name'], string_starts_with: 'same-' } },
        ],
      },
    });
    expect(rows).toHaveLength(5);
    const ids = rows.map((r) => r.requestId);
    expect(new Set(ids).size).toBe(5);
    for (const id of ids) expect(id).toMatch(UUID);
  });

  it('is replaced when malformed or when it carries an ID number or a key, and then goes nowhere', async () => {
    const key = `idg_live_${'Q'.repeat(40)}`;
    const bad = ['bad id', 'x'.repeat(129), 'a,b', '<script>', '"quoted"', '110101199003071234', `req-${key}`, ''];
    for (const [i, value] of bad.entries()) {
      const ip = `203.0.113.${70 + i}`;
      const res = await t.http.get('/v1/clients').set('X-Request-Id', value).set('X-Forwarded-For', ip).expect(401);
      expect({ value, echoed: res.headers['x-request-id'] }).toEqual({ value, echoed: expect.stringMatching(UUID) });
      expect(res.body.request_id).toBe(res.headers['x-request-id']);
      const [row] = await t.prisma.auditEvent.findMany({ where: { action: 'auth.failed', ip } });
      expect(row.requestId).toBe(res.headers['x-request-id']);
      expect(row.details).not.toHaveProperty('caller_request_id');
    }
    const logs = t.logs.join('\n');
    for (const value of ['110101199003071234', key, 'x'.repeat(129)]) expect(logs).not.toContain(value);
  });

  it('log lines name the client the trusted proxy forwarded', async () => {
    await t.http
      .get('/v1/me')
      .set('Authorization', `Bearer ${admin}`)
      .set('X-Forwarded-For', '198.51.100.20')
      .expect(200);
    const line = await eventually(() =>
      t.logs
        .map((l) => JSON.parse(l) as { req?: { path?: string; remote_address?: string }; res?: unknown })
        .find((l) => l.res !== undefined && l.req?.path === '/v1/me' && l.req.remote_address === '198.51.100.20'),
    );
    expect(line).toBeDefined();
  });
});

describe('client addresses and proxies', () => {
  let db: TestDatabase;
  const apps: TestApp[] = [];
  const start = async (trustProxy: string[], failures = 1000) => {
    const t = await startTestApp({ http: { trustProxy }, abuse: { authFailuresPerMinute: failures } }, db);
    apps.push(t);
    return t;
  };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const t of apps) await t.close();
    await db.drop();
  });

  /** The address the audit trail recorded for a refused request carrying `marker` as its X-Request-Id. */
  const auditedIp = async (t: TestApp, forwardedFor: string | null, marker: string) => {
    // Close the aggregation windows first: a second refusal from one source and minute is only counted.
    await t.app.get(AuthFailures).flush(true);
    let req = t.http.get('/v1/clients').set('X-Request-Id', marker);
    if (forwardedFor !== null) req = req.set('X-Forwarded-For', forwardedFor);
    await req.expect(401);
    const [row] = await t.prisma.auditEvent.findMany({
      where: { action: 'auth.failed', details: { path: ['caller_request_id'], equals: marker } },
    });
    return row?.ip;
  };

  it('trusts no proxy by default: X-Forwarded-For changes neither the audited address nor the limits', async () => {
    const t = await start([], 3);
    expect(await auditedIp(t, '203.0.113.5', 'default-1')).toBe('127.0.0.1');
    expect(await auditedIp(t, null, 'default-2')).toBe('127.0.0.1');
    // A new X-Forwarded-For on every request does not buy a new budget.
    await t.http.get('/v1/clients').set('X-Forwarded-For', '203.0.113.7').expect(401);
    for (const spoofed of ['203.0.113.8', '203.0.113.9', '2001:db8::1'])
      await t.http.get('/v1/clients').set('X-Forwarded-For', spoofed).expect(429);
  });

  it('behind a trusted proxy, records and limits the client it forwards (the rightmost untrusted hop)', async () => {
    const t = await start(['loopback'], 3);
    expect(await auditedIp(t, '203.0.113.5', 'trusted-1')).toBe('203.0.113.5');
    // What the client wrote itself, left of what the proxy appended, is not believed.
    expect(await auditedIp(t, '1.1.1.1, 203.0.113.6', 'trusted-2')).toBe('203.0.113.6');
    expect(await auditedIp(t, 'evil, 203.0.113.7', 'trusted-3')).toBe('203.0.113.7');
    expect(await auditedIp(t, '2001:db8::5', 'trusted-4')).toBe('2001:db8::5');
    // Not an address at all (only a trusted client could send that): the socket's address stands.
    expect(await auditedIp(t, 'not-an-address', 'trusted-5')).toBe('127.0.0.1');
    expect(await auditedIp(t, '110101199003071234', 'trusted-6')).toBe('127.0.0.1');

    // Business events name the client too.
    const admin = await t.keyFor('admin');
    const made = await t.http
      .post('/v1/clients')
      .set('Authorization', `Bearer ${admin.key}`)
      .set('X-Forwarded-For', '198.51.100.20')
      .send({ name: 'behind-proxy' })
      .expect(201);
    const [created] = await t.prisma.auditEvent.findMany({
      where: { action: 'client.created', targetId: made.body.id },
    });
    expect(created.ip).toBe('198.51.100.20');

    // Two clients behind the one proxy have budgets of their own.
    for (let i = 0; i < 3; i++) await t.http.get('/v1/clients').set('X-Forwarded-For', '198.51.100.30').expect(401);
    await t.http.get('/v1/clients').set('X-Forwarded-For', '198.51.100.30').expect(429);
    await t.http.get('/v1/clients').set('X-Forwarded-For', '198.51.100.31').expect(401);
  });

  it('trusts only the proxies it names', async () => {
    const elsewhere = await start(['10.0.0.0/8']);
    expect(await auditedIp(elsewhere, '203.0.113.5', 'named-1')).toBe('127.0.0.1');
    const chain = await start(['127.0.0.1', '198.51.100.7']);
    expect(await auditedIp(chain, '203.0.113.9, 198.51.100.7', 'named-2')).toBe('203.0.113.9');
    expect(await auditedIp(chain, '203.0.113.9, 198.51.100.8', 'named-3')).toBe('198.51.100.8');
  });

  it('refuses to start with a TRUST_PROXY that is not addresses or ranges', async () => {
    for (const bad of [['999.1.1.1'], ['10.0.0.0/40'], ['proxy.internal'], ['*']]) {
      await expect(createApp(testConfig(db.url, { http: { trustProxy: bad } }))).rejects.toThrow(ConfigError);
    }
  });
});
