import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { AppConfig } from '../../src/config/app-config';
import { startTestApp, TestApp } from '../support/test-app';
import { KNOWN } from '../support/verification-app';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/**
 * Issue 12, point 7: `image_url` through HTTP. The app talks to the real sandbox
 * through a recording proxy, so each test sees exactly which image_url reached
 * the upstream: nothing for a refused URL, the normalised href for an accepted one.
 */

/** Forwards every call to the sandbox and keeps the image_url each carried. */
async function recordingProxy(target: string): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { image_url?: unknown };
        if (typeof parsed.image_url === 'string') seen.push(parsed.image_url);
      } catch {
        // not JSON: nothing to record
      }
      const headers: Record<string, string> = {};
      for (const name of ['authorization', 'content-type', 'accept', 'x-sandbox-fault']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      fetch(`${target}${req.url}`, { method: req.method, headers, body: body.length ? body : undefined })
        .then(async (answer) => {
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const card = KNOWN[3];
const path = `/idcard/${card.id_card}.jpg`;

/** URLs an attacker would try; each must be refused before anything is sent upstream. */
const ATTACKS: string[] = [
  // trailing dots, cluster-internal and metadata names, single labels
  `https://localhost.${path}`,
  `https://localhost..${path}`,
  `https://LOCALHOST。${path}`,
  `https://ｌｏｃａｌｈｏｓｔ${path}`,
  `https://%6c%6f%63%61%6c%68%6f%73%74${path}`,
  `https://metadata.google.internal.${path}`,
  `https://METADATA.GOOGLE.INTERNAL${path}`,
  `https://metadata${path}`,
  `https://metadata.goog${path}`,
  `https://instance-data.ec2.internal${path}`,
  `https://api.default.svc${path}`,
  `https://api.default.svc.${path}`,
  `https://api.default.svc.cluster.local${path}`,
  `https://api.default.svc.cluster.local.${path}`,
  `https://kubernetes.default${path}`,
  `https://printer.local${path}`,
  `https://app.localhost${path}`,
  `https://nas.lan${path}`,
  `https://nas.home.arpa${path}`,
  `https://wiki.corp${path}`,
  `https://intranet${path}`,
  // IPv4 in every spelling and every non-public block
  `https://127.0.0.1${path}`,
  `https://127.1${path}`,
  `https://2130706433${path}`,
  `https://0x7f000001${path}`,
  `https://0177.0.0.1${path}`,
  `https://0x7f.0.0.1${path}`,
  `https://127.0.0.1.${path}`,
  `https://0${path}`,
  `https://0.0.0.0${path}`,
  `https://10.0.0.1${path}`,
  `https://172.16.0.1${path}`,
  `https://192.168.0.1${path}`,
  `https://169.254.169.254${path}`,
  `https://100.64.0.1${path}`,
  `https://100.100.100.200${path}`,
  `https://198.18.0.1${path}`,
  `https://224.0.0.1${path}`,
  `https://240.0.0.1${path}`,
  `https://255.255.255.255${path}`,
  // IPv6, including forms that carry IPv4
  `https://[::1]${path}`,
  `https://[::]${path}`,
  `https://[::127.0.0.1]${path}`,
  `https://[::ffff:127.0.0.1]${path}`,
  `https://[::ffff:8.8.8.8]${path}`,
  `https://[::ffff:a9fe:a9fe]${path}`,
  `https://[64:ff9b::a9fe:a9fe]${path}`,
  `https://[2002:a9fe:a9fe::1]${path}`,
  `https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]${path}`,
  `https://[fe80::1]${path}`,
  `https://[fe80::1%25eth0]${path}`,
  `https://[fd00:ec2::254]${path}`,
  `https://[ff02::1]${path}`,
  // ports
  `https://images.example.com:8443${path}`,
  `https://images.example.com:80${path}`,
  `https://images.example.com:6379${path}`,
  // raw strings another parser reads differently, credentials
  `https://images.example.com\\@127.0.0.1${path}`,
  `https://images.example.com\\\\169.254.169.254${path}`,
  `https://a@b@127.0.0.1${path}`,
  `https://user:pass@images.example.com${path}`,
  `https://images.example.com%2F@127.0.0.1${path}`,
  `https://127.0.0.1\t.images.example.com${path}`,
  `https://loc\nalhost${path}`,
  ` https://images.example.com${path}`,
  `https:images.example.com${path}`,
  `https:///images.example.com${path}`,
  `http://images.example.com${path}`,
  `file:///etc/passwd`,
];

/** Accepted spellings and the exact href that must reach the upstream. */
const ACCEPTED: Array<[string, string]> = [
  [`https://images.example.com${path}`, `https://images.example.com${path}`],
  [`HTTPS://IMAGES.Example.COM${path}`, `https://images.example.com${path}`],
  [`https://images.example.com.${path}`, `https://images.example.com${path}`],
  [`https://images。example。com${path}?sig=a#frag`, `https://images.example.com${path}?sig=a`],
  [`https://images.example.com:443${path}`, `https://images.example.com${path}`],
  [`https://images.example.com/x/..${path}`, `https://images.example.com${path}`],
  [`https://图片.example.com${path}`, `https://xn--wcsw84d.example.com${path}`],
  [`https://8.8.8.8${path}`, `https://8.8.8.8${path}`],
  [`https://[2606:4700:4700:0:0:0:0:1111]${path}`, `https://[2606:4700:4700::1111]${path}`],
];

describe('image_url SSRF rules through HTTP', () => {
  let sandbox: SandboxHandle;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let t: TestApp;
  let client: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  const start = (overrides: DeepPartial<AppConfig> = {}) =>
    startTestApp({ ...overrides, upstream: { timeoutMs: 3000, baseUrl: proxy.url } });

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, dailyLimits: false });
    proxy = await recordingProxy(sandbox.url);
    t = await start();
    client = (await t.keyFor('client', 'ssrf')).key;
  });
  afterAll(async () => {
    await t.close();
    await proxy.close();
    await sandbox.close();
  });

  it.each(ATTACKS)('refuses %j with 400 on image_url, sending nothing upstream', async (url) => {
    const before = proxy.seen.length;
    const res = await t.http.post('/v1/verifications').set(as(client)).send({ image_url: url }).expect(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.errors).toEqual([{ field: 'image_url', message: expect.any(String) }]);
    // The reason never echoes the value.
    expect(JSON.stringify(res.body)).not.toContain(url.slice(8, 30));

    const dropIn = await t.http.post('/identity/idcard/ocr').set(as(client)).send({ image_url: url }).expect(400);
    expect(dropIn.body).toMatchObject({ success: false, error: { code: 'token_mismatched' } });
    expect(proxy.seen.length).toBe(before);
  });

  it.each(ACCEPTED)('accepts %j and forwards exactly %j, the href it checked', async (url, href) => {
    const res = await t.http.post('/v1/verifications').set(as(client)).send({ image_url: url }).expect(201);
    expect(res.body).toMatchObject({ status: 'completed', result: '0', birth: card.birth });
    expect(proxy.seen[proxy.seen.length - 1]).toBe(href);

    const dropIn = await t.http.post('/identity/idcard/ocr').set(as(client)).send({ image_url: url }).expect(200);
    expect(dropIn.body).toMatchObject({ result: '0', id_card: card.id_card });
    expect(proxy.seen[proxy.seen.length - 1]).toBe(href);
  });

  describe('with IMAGE_URL_PORTS=443,8443', () => {
    let wide: TestApp;
    let wideClient: string;
    beforeAll(async () => {
      wide = await start({ imageUrlPorts: [443, 8443] });
      wideClient = (await wide.keyFor('client', 'ports')).key;
    });
    afterAll(() => wide.close());

    it('accepts the configured ports and no other', async () => {
      await wide.http
        .post('/v1/verifications')
        .set(as(wideClient))
        .send({ image_url: `https://images.example.com:8443${path}` })
        .expect(201);
      expect(proxy.seen[proxy.seen.length - 1]).toBe(`https://images.example.com:8443${path}`);
      await wide.http
        .post('/v1/verifications')
        .set(as(wideClient))
        .send({ image_url: `https://images.example.com${path}` })
        .expect(201);
      const refused = await wide.http
        .post('/v1/verifications')
        .set(as(wideClient))
        .send({ image_url: `https://images.example.com:8080${path}` })
        .expect(400);
      expect(refused.body.errors).toEqual([{ field: 'image_url', message: 'must use port 443 or 8443' }]);
    });
  });
});
