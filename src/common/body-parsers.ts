import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';
import { idempotencyKeyProblem } from './idempotency-key';
import { ProblemBody, problemBody } from './problem';
import { sendProblem } from './problem.filter';
import { NUL_MESSAGE } from './validation';

/**
 * body-parser reports its errors to Express's own handler, which Nest's
 * exception filters never see; render them as problem+json here instead.
 */
function withProblemErrors(parser: RequestHandler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) =>
    parser(req, res, (err?: unknown) => {
      if (!err) return next();
      const type = (err as { type?: string }).type;
      if (type === 'entity.too.large') {
        const limit = (err as { limit?: number }).limit;
        return sendProblem(req, res, problemBody('payload-too-large', `The body exceeds the limit of ${limit} bytes.`));
      }
      if (type === 'entity.too.complex') {
        return sendProblem(req, res, jsonLimitProblem((err as JsonLimitError).breach));
      }
      if (type === 'entity.parse.failed') {
        return sendProblem(req, res, problemBody('malformed-json', 'The request body is not valid JSON.'));
      }
      if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
        return sendProblem(req, res, problemBody('unsupported-media-type', 'Unsupported body encoding or charset.'));
      }
      return sendProblem(req, res, problemBody('bad-request', 'The request body could not be read.'));
    });
}

/*
 * Limits on the shape of a JSON body, far above anything idgate takes (its largest bodies have a
 * few dozen keys and arrays of two entries) and far below what hurts: class-validator's handling
 * of unknown properties is quadratic in their number (300,000 keys took 28 s of a frozen event
 * loop), and every value is visited by the validation pipe. Counted on the raw text, before
 * JSON.parse builds anything, and checked again on the parsed value (bodies in charsets the
 * scan cannot read).
 */
export const JSON_LIMITS = {
  /** Nesting; deep nesting only serves to exhaust the stack. */
  depth: 32,
  /** Object keys in the whole body. */
  keys: 2_000,
  /** Entries of any one array. */
  arrayEntries: 1_000,
  /** Keys and array entries in the whole body (many arrays of many entries). */
  entries: 10_000,
} as const;

/** No request idgate takes nests deeper than a few levels; deep nesting only serves to exhaust the stack. */
export const MAX_JSON_DEPTH = JSON_LIMITS.depth;

export type JsonLimit = keyof typeof JSON_LIMITS;

/** The first limit a body goes beyond. */
export interface JsonLimitBreach {
  limit: JsonLimit;
  max: number;
}

const breach = (limit: JsonLimit): JsonLimitBreach => ({ limit, max: JSON_LIMITS[limit] });

/**
 * The first limit JSON text (UTF-8 bytes) goes beyond, found without parsing it: one pass,
 * constant work per byte, stopping at the breach. Malformed JSON is left to the parser; the
 * counts only need to be right for JSON it would accept.
 */
export function scanJsonText(bytes: Uint8Array): JsonLimitBreach | null {
  // Per open container: whether it is an array, and how many entries it has.
  const isArray: boolean[] = [];
  const counts: number[] = [];
  let depth = 0;
  let keys = 0;
  let entries = 0;
  let inString = false;
  let escaped = false;
  // After `[` or an array's `,`: the next token starts an entry.
  let expectingEntry = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    if (c === 0x3a) {
      // `:` follows each key of an object, and appears nowhere else outside strings.
      if (++keys > JSON_LIMITS.keys) return breach('keys');
      if (++entries > JSON_LIMITS.entries) return breach('entries');
      continue;
    }
    if (c === 0x2c) {
      expectingEntry = depth > 0 && isArray[depth - 1];
      continue;
    }
    if (c === 0x7d || c === 0x5d) {
      if (depth > 0) depth--;
      expectingEntry = false;
      continue;
    }
    if (expectingEntry) {
      if (++counts[depth - 1] > JSON_LIMITS.arrayEntries) return breach('arrayEntries');
      if (++entries > JSON_LIMITS.entries) return breach('entries');
      expectingEntry = false;
    }
    if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > JSON_LIMITS.depth) return breach('depth');
      isArray[depth - 1] = c === 0x5b;
      counts[depth - 1] = 0;
      expectingEntry = c === 0x5b;
    }
  }
  return null;
}

/** The first limit a parsed JSON value goes beyond. Iterative: the depth is the client's. */
export function jsonValueBreach(value: unknown): JsonLimitBreach | null {
  let keys = 0;
  let entries = 0;
  const stack: Array<[object, number]> = value !== null && typeof value === 'object' ? [[value, 1]] : [];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > JSON_LIMITS.depth) return breach('depth');
    let children: unknown[];
    if (Array.isArray(node)) {
      if (node.length > JSON_LIMITS.arrayEntries) return breach('arrayEntries');
      children = node;
    } else {
      children = Object.values(node);
      keys += children.length;
      if (keys > JSON_LIMITS.keys) return breach('keys');
    }
    entries += children.length;
    if (entries > JSON_LIMITS.entries) return breach('entries');
    for (const child of children) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return null;
}

/** The answer to a body beyond a limit: 400 for nesting (as before), 413 for size in keys or entries. */
export function jsonLimitProblem(found: JsonLimitBreach): ProblemBody {
  const extensions = { limit: `json_${found.limit.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`, max: found.max };
  switch (found.limit) {
    case 'depth':
      return problemBody('bad-request', `JSON nested deeper than ${found.max} levels is refused.`, extensions);
    case 'keys':
      return problemBody(
        'payload-too-large',
        `The JSON body has more than ${found.max} object keys in all.`,
        extensions,
      );
    case 'arrayEntries':
      return problemBody(
        'payload-too-large',
        `A JSON array in the body has more than ${found.max} entries.`,
        extensions,
      );
    case 'entries':
      return problemBody(
        'payload-too-large',
        `The JSON body has more than ${found.max} keys and array entries in all.`,
        extensions,
      );
  }
}

/** The body as UTF-8 bytes for the scan, or null when its charset cannot be decoded here (the parsed value is checked instead). */
function utf8Bytes(body: Buffer, encoding: string | null): Uint8Array | null {
  if (encoding === null || /^utf-?8$/i.test(encoding)) return body;
  try {
    return Buffer.from(new TextDecoder(encoding).decode(body), 'utf8');
  } catch {
    return null;
  }
}

class JsonLimitError extends Error {
  // body-parser passes errors with a `type` on to withProblemErrors.
  readonly type = 'entity.too.complex';
  constructor(readonly breach: JsonLimitBreach) {
    super(`JSON body beyond the ${breach.limit} limit`);
  }
}

/** Request headers idgate reads, as their documentation spells them. */
export const HEADERS_READ = [
  'Idempotency-Key',
  'X-Request-Id',
  'X-Sandbox-Fault',
  'Authorization',
  'X-API-Key',
  'Accept',
];

/**
 * Headers are outside the validation pipe's reach, so the ones idgate stores are checked here,
 * before anything else runs: NUL, and an Idempotency-Key holding an ID number (idempotency-key.ts).
 * Node's parser already refuses
 * NUL in a header (a bare 400 before any handler), but `--insecure-http-parser`
 * lets it through, and PostgreSQL cannot store it (Idempotency-Key is stored).
 */
export function headerWithNul(req: Pick<Request, 'headers'>): string | undefined {
  return HEADERS_READ.find((name) => {
    const value = req.headers[name.toLowerCase()];
    return (Array.isArray(value) ? value : [value]).some((v) => typeof v === 'string' && v.includes('\u0000'));
  });
}

export function jsonBodyParser(limitBytes: number): RequestHandler {
  const parse = withProblemErrors(
    express.json({
      limit: limitBytes,
      type: ['application/json', 'application/*+json'],
      // Runs on the raw body before JSON.parse: a body beyond the limits is refused without being built.
      verify: (_req, _res, body, encoding) => {
        const bytes = utf8Bytes(body, encoding);
        const found = bytes === null ? null : scanJsonText(bytes);
        if (found) throw new JsonLimitError(found);
      },
    }),
  );
  return (req: Request, res: Response, next: NextFunction) => {
    const header = headerWithNul(req);
    if (header) {
      return sendProblem(
        req,
        res,
        problemBody('validation', `${header}: ${NUL_MESSAGE}`, { errors: [{ field: header, message: NUL_MESSAGE }] }),
      );
    }
    const idempotencyKey = req.headers['idempotency-key'];
    const keyProblem = typeof idempotencyKey === 'string' ? idempotencyKeyProblem(idempotencyKey) : null;
    if (keyProblem) {
      return sendProblem(
        req,
        res,
        problemBody('validation', `Idempotency-Key: ${keyProblem}`, {
          errors: [{ field: 'Idempotency-Key', message: keyProblem }],
        }),
      );
    }
    return parse(req, res, () => {
      const found = jsonValueBreach(req.body);
      if (found) return sendProblem(req, res, jsonLimitProblem(found));
      next();
    });
  };
}
