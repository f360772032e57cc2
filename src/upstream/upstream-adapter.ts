import http from 'node:http';
import https from 'node:https';
import axios, {
  AxiosAdapter,
  AxiosError,
  AxiosResponse,
  CanceledError,
  InternalAxiosRequestConfig,
  RawAxiosResponseHeaders,
} from 'axios';

/**
 * The axios adapter of the upstream client: one HTTP/1.1 request on `node:http`/`node:https`
 * through the configured agents, the answer read as UTF-8 text. It stands in for axios'
 * own Node adapter, which costs about three times a plain `http.request` per call in CPU
 * (a `URL` and `AxiosHeaders` per request and per answer, a proxy look-up in the
 * environment, a `setKeepAlive` system call on every request, an event emitter, two
 * timers and a socket timeout): at 64 concurrent callers that held the upstream client to
 * about a fifth of what plain HTTP does (`npm run bench:upstream`).
 *
 * What it does, and the error codes it fails with (as axios' adapter does, so that
 * `interpretTransportError` reads them the same way):
 * - `timeout` (ms, 0 none) is a hard deadline on the whole exchange, from the request
 *   to the last byte of the answer: `ECONNABORTED` (`ETIMEDOUT` with
 *   `transitional.clarifyTimeoutError`), and the request is destroyed.
 * - `signal` / `cancelToken`: `ERR_CANCELED`, the request destroyed.
 * - a failure of the request or its socket: `AxiosError.from(err)`, which keeps the
 *   socket error's `code` and puts it in `cause`; `err.request` is the `ClientRequest`
 *   (`reusedSocketEvidence` reads what the agent recorded on it).
 * - an answer larger than `maxContentLength`: `ERR_BAD_RESPONSE`, the request destroyed;
 *   an answer cut short: `ERR_BAD_RESPONSE`.
 * - every status resolves unless `validateStatus` refuses it (axios' `settle`).
 * It never follows a redirect (a 3xx is an answer, whatever `maxRedirects` says), reads every
 * answer as text (whatever `responseType` says), sends `Accept-Encoding: identity` (no
 * compressed answers to decode), and refuses anything but http: and https:. `data` must be a
 * string or a Buffer (the upstream client sends JSON text).
 */

const USER_AGENT = `axios/${axios.VERSION}`;

interface Target {
  readonly url: string;
  readonly https: boolean;
  readonly hostname: string;
  readonly port: string;
  readonly path: string;
}

/** The last URL parsed: the upstream client calls one URL, so parsing it once per call is waste. */
let lastTarget: Target | undefined;

function targetOf(url: string): Target {
  if (lastTarget?.url === url) return lastTarget;
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new AxiosError(`Unsupported protocol ${parsed.protocol}`, AxiosError.ERR_BAD_REQUEST);
  }
  if (parsed.username || parsed.password) {
    // Credentials in the URL would have to become an Authorization header; the upstream uses a token.
    throw new AxiosError('Credentials in the URL are not supported', AxiosError.ERR_BAD_OPTION_VALUE);
  }
  const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  lastTarget = {
    url,
    https: parsed.protocol === 'https:',
    hostname,
    port: parsed.port,
    path: parsed.pathname + parsed.search,
  };
  return lastTarget;
}

function bodyOf(data: unknown): string | Buffer | undefined {
  if (data === undefined || data === null) return undefined;
  if (typeof data === 'string' || Buffer.isBuffer(data)) return data;
  throw new AxiosError('The upstream adapter sends a string or a Buffer', AxiosError.ERR_BAD_REQUEST);
}

function headersOf(config: InternalAxiosRequestConfig, body: string | Buffer | undefined): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {};
  const given = config.headers;
  for (const name of Object.keys(given)) {
    const value: unknown = given[name];
    if (value === undefined || value === null || value === false) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.map(String) : String(value);
  }
  headers['user-agent'] ??= USER_AGENT;
  headers['accept-encoding'] = 'identity';
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
  else delete headers['content-length'];
  return headers;
}

export const upstreamAdapter: AxiosAdapter = (config) =>
  new Promise<AxiosResponse>((resolve, reject) => {
    let target: Target;
    let body: string | Buffer | undefined;
    let headers: http.OutgoingHttpHeaders;
    try {
      target = targetOf(config.url ?? '');
      body = bodyOf(config.data);
      headers = headersOf(config, body);
    } catch (err) {
      reject(AxiosError.from(err, (err as AxiosError).code, config));
      return;
    }

    let req: http.ClientRequest | undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const { signal, cancelToken } = config;
    const maxBytes = config.maxContentLength ?? -1;

    const finish = () => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener?.('abort', onAbort);
      cancelToken?.unsubscribe(onAbort);
    };
    const fail = (err: AxiosError) => {
      if (settled) return;
      finish();
      reject(err);
      // After the rejection: the error destroying the request emits is ignored.
      req?.destroy();
    };
    const answer = (res: http.IncomingMessage, text: string) => {
      const response: AxiosResponse<string> = {
        data: text,
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        headers: res.headers as RawAxiosResponseHeaders,
        config,
        request: req,
      };
      finish();
      // axios' settle(): every status is an answer unless validateStatus says otherwise.
      const validateStatus = config.validateStatus;
      if (!response.status || !validateStatus || validateStatus(response.status)) return resolve(response);
      const code =
        response.status >= 400 && response.status < 500 ? AxiosError.ERR_BAD_REQUEST : AxiosError.ERR_BAD_RESPONSE;
      reject(new AxiosError(`Request failed with status code ${response.status}`, code, config, req, response));
    };
    function onAbort(): void {
      fail(new CanceledError(undefined, config, req));
    }

    try {
      req = (target.https ? https : http).request(
        {
          protocol: target.https ? 'https:' : 'http:',
          hostname: target.hostname,
          port: target.port,
          path: target.path,
          method: (config.method ?? 'get').toUpperCase(),
          headers,
          agent: target.https ? config.httpsAgent : config.httpAgent,
          insecureHTTPParser: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let received = 0;
          const cutShort = () =>
            fail(new AxiosError('stream has been aborted', AxiosError.ERR_BAD_RESPONSE, config, req));
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (maxBytes < 0 || received <= maxBytes) return void chunks.push(chunk);
            fail(
              new AxiosError(`maxContentLength size of ${maxBytes} exceeded`, AxiosError.ERR_BAD_RESPONSE, config, req),
            );
          });
          res.on('end', () => {
            if (settled) return;
            const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8');
            answer(res, text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
          });
          // A connection lost mid-answer: 'aborted' comes first (as in axios' adapter), then 'error'.
          res.on('aborted', cutShort);
          res.on('error', (err) => fail(AxiosError.from(err, undefined, config, req)));
          res.on('close', () => {
            if (!res.complete) cutShort();
          });
        },
      );
    } catch (err) {
      // Refused before anything was sent (an invalid header value, say).
      fail(AxiosError.from(err, undefined, config));
      return;
    }
    req.on('error', (err) => fail(AxiosError.from(err, undefined, config, req)));

    const timeoutMs = config.timeout ?? 0;
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        const code = config.transitional?.clarifyTimeoutError ? AxiosError.ETIMEDOUT : AxiosError.ECONNABORTED;
        fail(new AxiosError(config.timeoutErrorMessage || `timeout of ${timeoutMs}ms exceeded`, code, config, req));
      }, timeoutMs);
    }
    if (signal?.aborted || cancelToken?.reason) return onAbort();
    signal?.addEventListener?.('abort', onAbort, { once: true });
    cancelToken?.subscribe(onAbort);

    req.end(body);
  });
