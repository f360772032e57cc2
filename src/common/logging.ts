import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';

/** Fields that hold personal data or secrets, redacted wherever they appear in a log line (up to 3 levels deep). */
const SENSITIVE_KEYS = [
  'name',
  'id_card',
  'idCard',
  'address',
  'sex',
  'nation',
  'birth',
  'image_url',
  'image_base64',
  'imageUrl',
  'imageBase64',
  'encryption',
  'key',
  'token',
  'password',
];

export function redactPaths(): string[] {
  const headers = ['authorization', 'x-api-key', 'cookie', 'idempotency-key'].map((h) => `req.headers["${h}"]`);
  const fields = SENSITIVE_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  return [...headers, 'res.headers["set-cookie"]', ...fields];
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id: the caller's `X-Request-Id` when it is a safe token, otherwise a new UUID. Echoed back. */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

/** nestjs-pino options: JSON lines, request id on every line of a request, secrets and PII redacted. */
export function loggerParams(level: string, stream?: DestinationStream): Params {
  return {
    pinoHttp: {
      level,
      stream,
      genReqId: requestId,
      quietReqLogger: true,
      customAttributeKeys: { reqId: 'request_id' },
      redact: { paths: redactPaths(), censor: '[redacted]' },
      serializers: {
        // Paths only: query strings never carry PII by design, but they are not needed in logs either.
        req: (req: { id: string; method: string; url: string; remoteAddress?: string }) => ({
          method: req.method,
          path: String(req.url).split('?')[0],
          remote_address: req.remoteAddress,
        }),
        res: (res: { statusCode: number }) => ({ status: res.statusCode }),
      },
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    },
  };
}
