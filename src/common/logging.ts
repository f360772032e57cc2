import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { clientAddress, ClientAddressSource } from './client-address';
import { requestIdsOf, visibleRequestId } from './request-id';
import { safePath } from './safe-path';

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

/**
 * pino-http's request id: the caller's `X-Request-Id` when it may be kept (see request-id.ts),
 * otherwise idgate's own. Echoed back as X-Request-Id.
 */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const id = visibleRequestId(requestIdsOf(req));
  res.setHeader('X-Request-Id', id);
  return id;
}

/** The client's address for a log line: Express's `req.ip` (honours TRUST_PROXY) when it is a real address. */
function logAddress(raw: unknown): string | undefined {
  return raw ? (clientAddress(raw as ClientAddressSource) ?? undefined) : undefined;
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
      // When the caller chose the request id, the response line also names idgate's own (the audit trail's).
      customProps: (req) => {
        const ids = requestIdsOf(req);
        return ids.caller === null ? {} : { idgate_request_id: ids.own };
      },
      redact: { paths: redactPaths(), censor: '[redacted]' },
      serializers: {
        // Paths only, and only the segments that cannot be personal data or a key (safe-path.ts): a caller
        // may put an ID number or a key in a URL, and operators read the logs. Query strings are never logged.
        req: (req: { id: string; method: string; url: string; remoteAddress?: string; raw?: unknown }) => ({
          method: req.method,
          path: safePath(String(req.url)),
          remote_address: logAddress(req.raw) ?? req.remoteAddress,
        }),
        res: (res: { statusCode: number }) => ({ status: res.statusCode }),
      },
      // 503 is idgate refusing for load or an outage on purpose (nothing was done): a warning,
      // not an error, and without the stand-in Error (and stack) pino-http makes up for a 5xx.
      customLogLevel: (_req, res, err) =>
        err
          ? 'error'
          : res.statusCode === 503
            ? 'warn'
            : res.statusCode >= 500
              ? 'error'
              : res.statusCode >= 400
                ? 'warn'
                : 'info',
      customErrorObject: (_req, res, _error, value: Record<string, unknown>) => {
        if (res.statusCode !== 503 || (res as { err?: unknown }).err) return value;
        const { err: _madeUp, ...rest } = value;
        return rest;
      },
    },
  };
}
