import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { AuthFailures } from '../../src/auth/auth-failures.service';
import { startTestApp, TestApp } from '../support/test-app';

/*
 * Finding 2 of the outside security test: Node keeps only the first of two `Authorization`
 * headers (and joins repeated `X-API-Key` with ", "), so a client key followed by an admin key
 * was served as the client, and a valid key followed by a bogus one got 200. Credentials that
 * come twice are ambiguous: 401 `conflicting_credentials`, whatever the values, on every
 * authenticated endpoint and on /metrics. Requests are written on a raw socket so that the
 * headers arrive exactly as listed (names, case, order, repetition).
 */

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

interface RawAnswer {
  status: number;
  body: Record<string, unknown>;
}

type Header = [string, string];

describe('a credential header sent more than once is refused, whatever the values', () => {
  let t: TestApp;
  let port: number;
  let admin: string;
  let client: string;
  let finance: string;

  beforeAll(async () => {
    t = await startTestApp({ http: { metricsToken: METRICS_TOKEN } });
    const server = t.app.getHttpServer() as net.Server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    admin = (await t.keyFor('admin')).key;
    client = (await t.keyFor('client')).key;
    finance = (await t.keyFor('finance')).key;
  });
  afterAll(() => t.close());

  /** One request, its headers written as given, on a connection of its own. */
  function send(method: string, path: string, headers: Header[]): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
      for (const [name, value] of headers) lines.push(`${name}: ${value}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      const chunks: Buffer[] = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const [head, ...rest] = text.split('\r\n\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
        // Bodies here are small problem+json documents, sent with Content-Length.
        const raw = rest.join('\r\n\r\n');
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          body = { raw };
        }
        resolve({ status, body });
      });
    });
  }

  const reasonsOf = async (requestIds: string[]) =>
    Object.fromEntries(
      (
        await t.prisma.auditEvent.findMany({
          where: { action: 'auth.failed', details: { path: ['caller_request_id'], string_starts_with: 'dup-' } },
        })
      )
        .map((row) => row.details as Record<string, unknown>)
        .filter((d) => requestIds.includes(String(d.caller_request_id)))
        .map((d) => [String(d.caller_request_id), d]),
    );

  it('refuses two Authorization or two X-API-Key headers on every kind of endpoint', async () => {
    const cases: Array<[string, Header[]]> = [
      // A client key then an admin key: used to be served as the client (403 here), never as the admin.
      [
        'client-then-admin',
        [
          ['Authorization', `Bearer ${client}`],
          ['Authorization', `Bearer ${admin}`],
        ],
      ],
      // An admin key then a client key: used to be 200.
      [
        'admin-then-client',
        [
          ['Authorization', `Bearer ${admin}`],
          ['Authorization', `Bearer ${client}`],
        ],
      ],
      [
        'valid-then-bogus',
        [
          ['Authorization', `Bearer ${admin}`],
          ['Authorization', 'Bearer bogus'],
        ],
      ],
      [
        'same-twice',
        [
          ['Authorization', `Bearer ${admin}`],
          ['Authorization', `Bearer ${admin}`],
        ],
      ],
      [
        'mixed-case-names',
        [
          ['authorization', `Bearer ${admin}`],
          ['AUTHORIZATION', `Bearer ${admin}`],
        ],
      ],
      [
        'other-scheme-first',
        [
          ['Authorization', 'Basic dXNlcjpwYXNz'],
          ['Authorization', `Bearer ${admin}`],
        ],
      ],
      [
        'empty-first',
        [
          ['Authorization', ''],
          ['Authorization', `Bearer ${admin}`],
        ],
      ],
      [
        'x-api-key-twice',
        [
          ['X-API-Key', admin],
          ['X-API-Key', admin],
        ],
      ],
      [
        'x-api-key-different',
        [
          ['X-API-Key', admin],
          ['x-api-key', client],
        ],
      ],
      [
        'both-headers-one-repeated',
        [
          ['Authorization', `Bearer ${admin}`],
          ['X-API-Key', admin],
          ['X-API-Key', admin],
        ],
      ],
    ];
    const ids: string[] = [];
    for (const [name, headers] of cases) {
      for (const [method, path] of [
        ['GET', '/v1/clients'], // admin only
        ['GET', '/v1/me'], // any key
        ['GET', '/v1/billing/prices'], // admin, and finance to read
      ]) {
        // Each refusal on its own in the audit trail (they are otherwise summarised per source and minute).
        await t.app.get(AuthFailures).flush(true);
        const id = `dup-${name}-${path.split('/').pop()}`;
        ids.push(id);
        const res = await send(method, path, [...headers, ['X-Request-Id', id]]);
        expect({ name, path, status: res.status }).toEqual({ name, path, status: 401 });
        expect(res.body).toMatchObject({ type: 'urn:idgate:problem:unauthorized', request_id: id });
        expect(String(res.body.detail)).toMatch(/sent more than once/);
      }
    }
    await t.app.get(AuthFailures).flush(true);
    const reasons = await reasonsOf(ids);
    for (const id of ids) {
      expect({ id, reason: reasons[id]?.reason }).toEqual({ id, reason: 'conflicting_credentials' });
      expect(reasons[id].repeated_header).toMatch(/^(Authorization|X-API-Key)$/);
    }
  });

  it('still serves one key sent once, or the same key in both headers', async () => {
    expect((await send('GET', '/v1/clients', [['Authorization', `Bearer ${admin}`]])).status).toBe(200);
    expect((await send('GET', '/v1/clients', [['X-API-Key', admin]])).status).toBe(200);
    expect(
      (
        await send('GET', '/v1/clients', [
          ['Authorization', `Bearer ${admin}`],
          ['X-API-Key', admin],
        ])
      ).status,
    ).toBe(200);
    expect((await send('GET', '/v1/billing/prices', [['X-API-Key', finance]])).status).toBe(200);
    // Public endpoints read no credentials: a repeated header changes nothing there.
    const live = await send('GET', '/health/live', [
      ['Authorization', 'Bearer a'],
      ['Authorization', 'Bearer b'],
    ]);
    expect(live.status).toBe(200);
  });

  it('refuses a repeated Authorization on /metrics, even carrying the right token', async () => {
    expect((await send('GET', '/metrics', [['Authorization', `Bearer ${METRICS_TOKEN}`]])).status).toBe(200);
    for (const headers of [
      [
        ['Authorization', `Bearer ${METRICS_TOKEN}`],
        ['Authorization', `Bearer ${METRICS_TOKEN}`],
      ],
      [
        ['Authorization', `Bearer ${METRICS_TOKEN}`],
        ['Authorization', 'Bearer wrong'],
      ],
      [
        ['Authorization', 'Bearer wrong'],
        ['authorization', `Bearer ${METRICS_TOKEN}`],
      ],
    ] as Header[][]) {
      const res = await send('GET', '/metrics', headers);
      expect({ headers, status: res.status }).toEqual({ headers, status: 401 });
    }
    await t.app.get(AuthFailures).flush(true);
    const rows = await t.prisma.auditEvent.findMany({ where: { action: 'auth.failed', targetId: 'GET /metrics' } });
    expect(rows.map((r) => (r.details as Record<string, unknown>).reason)).toContain('conflicting_credentials');
  });
});
