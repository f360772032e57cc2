import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import axios, { AxiosError, AxiosRequestConfig } from 'axios';
import { upstreamAdapter } from './upstream-adapter';
import { interpretTransportError } from './upstream-response';

/*
 * The upstream adapter under axios, against a plain HTTP server on loopback whose behaviour each
 * test picks: what it sends, the failures it reports (with the codes interpretTransportError reads).
 */
describe('upstream adapter', () => {
  let server: http.Server;
  let url: string;
  let handle: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true });
  const client = axios.create({});

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => handle(req, res, body));
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/identity/idcard/ocr?x=1`;
  });
  afterAll(async () => {
    agent.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const call = (config: AxiosRequestConfig = {}) =>
    client.request<string>({
      url,
      method: 'post',
      data: '{"name":"张伟"}',
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      timeout: 2_000,
      transformRequest: [],
      transformResponse: [],
      validateStatus: null,
      maxContentLength: 1024,
      httpAgent: agent,
      adapter: upstreamAdapter,
      ...config,
    });

  const failure = async (promise: Promise<unknown>): Promise<AxiosError> => {
    try {
      await promise;
    } catch (err) {
      return err as AxiosError;
    }
    throw new Error('expected a failure');
  };

  it('sends the request as given, with its length, and reads the answer as text', async () => {
    let seen: { method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string } | undefined;
    handle = (req, res, body) => {
      seen = { method: req.method, url: req.url, headers: req.headers, body };
      res.writeHead(201, { 'content-type': 'application/json', 'x-trace-id': 'abc' });
      res.end('\ufeff{"result":"0","description":"一致"}');
    };
    const response = await call();
    expect(response.status).toBe(201);
    expect(response.data).toBe('{"result":"0","description":"一致"}');
    expect(response.headers['x-trace-id']).toBe('abc');
    expect(seen).toMatchObject({
      method: 'POST',
      url: '/identity/idcard/ocr?x=1',
      body: '{"name":"张伟"}',
      headers: {
        authorization: 'Bearer t',
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength('{"name":"张伟"}')),
        'accept-encoding': 'identity',
        'user-agent': `axios/${axios.VERSION}`,
      },
    });
  });

  it('every status is an answer with validateStatus null; a refused one fails as axios does', async () => {
    handle = (_req, res) => {
      res.writeHead(503);
      res.end('busy');
    };
    await expect(call()).resolves.toMatchObject({ status: 503, data: 'busy' });
    const err = await failure(call({ validateStatus: (s) => s < 500 }));
    expect(err.code).toBe('ERR_BAD_RESPONSE');
    expect(err.response?.status).toBe(503);
  });

  it('the timeout is a deadline on the whole exchange: an answer still arriving is cut, as a timeout', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"result":');
      // The rest never comes: headers and a first chunk arrived in time, the answer did not.
    };
    const started = Date.now();
    const err = await failure(call({ timeout: 300 }));
    expect(err.code).toBe('ECONNABORTED');
    expect(Date.now() - started).toBeLessThan(1_800);
    expect(err.request).toBeInstanceOf(http.ClientRequest);
    expect(interpretTransportError(err)).toMatchObject({ kind: 'indeterminate', reason: 'timeout' });
  });

  it('an answer larger than maxContentLength fails as a bad response', async () => {
    handle = (_req, res) => res.end('x'.repeat(4096));
    const err = await failure(call());
    expect(err.code).toBe('ERR_BAD_RESPONSE');
    expect(interpretTransportError(err)).toMatchObject({ kind: 'indeterminate', reason: 'malformed_response' });
  });

  it('a connection lost in the middle of the answer fails, never as an answer', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"result":"0"');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const err = await failure(call());
    expect(interpretTransportError(err).kind).toBe('indeterminate');
  });

  it('a reset after the request was read keeps its code and the request (for the reused-socket evidence)', async () => {
    handle = (req) => req.socket.resetAndDestroy();
    const err = await failure(call());
    expect(err.code).toBe('ECONNRESET');
    expect(err.request).toBeInstanceOf(http.ClientRequest);
    expect(interpretTransportError(err)).toMatchObject({ kind: 'indeterminate', reason: 'connection_reset' });
  });

  it('connection refused: the code says nothing was sent', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await failure(call({ url: `http://127.0.0.1:${port}/x` }));
    expect(interpretTransportError(err)).toMatchObject({ kind: 'unsent', reason: 'connection_refused' });
  });

  it('a signal or cancel token cancels the call', async () => {
    handle = () => undefined; // never answers
    const controller = new AbortController();
    const pending = call({ signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect((await failure(pending)).code).toBe('ERR_CANCELED');
    const source = axios.CancelToken.source();
    const cancelled = call({ cancelToken: source.token });
    setTimeout(() => source.cancel(), 50);
    expect((await failure(cancelled)).code).toBe('ERR_CANCELED');
  });

  it('refuses what it does not do, before sending anything', async () => {
    let requests = 0;
    handle = (_req, res) => {
      requests++;
      res.end('{}');
    };
    expect((await failure(call({ url: url.replace('http://', 'http://user:pw@') }))).code).toBe('ERR_BAD_OPTION_VALUE');
    expect((await failure(call({ url: 'ftp://127.0.0.1/x' }))).code).toBe('ERR_BAD_REQUEST');
    expect((await failure(call({ data: { name: 'x' } }))).code).toBe('ERR_BAD_REQUEST');
    expect(requests).toBe(0);
  });
});
