import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { INestApplication } from '@nestjs/common';
import { buildOpenApiDocument } from '../../src/app.factory';

/*
 * Every status the e2e suites see, per method and path, so that global-teardown can
 * fail the run when an operation answers a status its OpenAPI entry does not document
 * (docs that drift from behaviour are caught by the tests that exercise it).
 * Each jest worker appends to a file of its own under IDGATE_TEST_STATUS_DIR.
 */

const seen = new Set<string>();

/** Records the status of every request `app` answers, for as long as it runs. */
export function recordStatuses(app: INestApplication): void {
  const dir = process.env.IDGATE_TEST_STATUS_DIR;
  if (!dir) return;
  const server = app.getHttpServer() as Server;
  server.prependListener('request', (req, res) => {
    res.once('finish', () => {
      const pathOnly = (req.url ?? '/').split('?')[0];
      seen.add(`${req.method} ${res.statusCode} ${pathOnly}`);
    });
  });
  // The document the statuses are checked against: the one this code builds (written once per worker).
  const docFile = path.join(dir, 'openapi.json');
  if (!existsSync(docFile)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(docFile, JSON.stringify(buildOpenApiDocument(app)));
  }
}

/** Appends what this worker saw since the last flush (called when an app closes). */
export function flushStatuses(): void {
  const dir = process.env.IDGATE_TEST_STATUS_DIR;
  if (!dir || seen.size === 0) return;
  appendFileSync(path.join(dir, `statuses-${process.pid}.txt`), [...seen].join('\n') + '\n');
  seen.clear();
}
