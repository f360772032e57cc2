import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import { ProblemException, validationProblem } from '../../common/problem';

export interface StatementUpload {
  /** The statement's bytes, as they arrive (never buffered whole). */
  stream: Readable;
  /** Form fields sent before the file part (multipart only). */
  fields: Record<string, string>;
  /** Reads and discards the rest of the request (after a refusal), so the client sees the answer. */
  discard(): void;
}

const FIELD_LIMIT = 200;

/**
 * The uploaded statement, streamed: a `text/csv` body, or the `file` part of a
 * `multipart/form-data` body (fields such as `from`/`to` are read when they come
 * before the file part). Nothing is written to disk or held in memory.
 */
export function openStatementUpload(req: Request): Promise<StatementUpload> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (/^(text\/csv|application\/csv)\b/.test(type)) {
    return Promise.resolve({ stream: req, fields: {}, discard: () => void req.resume() });
  }
  if (!/^multipart\/form-data\b/.test(type)) {
    return Promise.reject(
      new ProblemException(
        'unsupported-media-type',
        'Send the statement as multipart/form-data (field `file`) or as a text/csv body.',
      ),
    );
  }
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { fields: 20, fieldSize: FIELD_LIMIT, files: 1, parts: 30 },
      });
    } catch {
      reject(validationProblem([{ field: 'file', message: 'the multipart body cannot be read (boundary missing?)' }]));
      return;
    }
    const fields: Record<string, string> = {};
    let settled = false;
    const discard = () => {
      req.unpipe(parser);
      req.resume();
    };
    parser.on('field', (name, value) => {
      if (!settled) fields[name] = value;
    });
    parser.on('file', (name, stream) => {
      // A body that ends inside the part makes busboy fail the part's stream ("Unexpected end of
      // form"): without a listener that error would end the process. The reader of the statement
      // still sees it (its async iterator listens too) and answers 400.
      stream.on('error', () => undefined);
      if (settled || name !== 'file') {
        stream.resume();
        return;
      }
      settled = true;
      resolve({ stream, fields, discard });
    });
    parser.on('error', () => {
      if (settled) return;
      settled = true;
      discard();
      reject(validationProblem([{ field: 'file', message: 'the multipart body cannot be read' }]));
    });
    parser.on('close', () => {
      if (settled) return;
      settled = true;
      reject(validationProblem([{ field: 'file', message: 'is required: the vendor statement as a CSV file part' }]));
    });
    req.pipe(parser);
  });
}
