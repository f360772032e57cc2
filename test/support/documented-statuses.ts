/*
 * Which statuses the e2e suites saw that the OpenAPI document does not document (pure: the
 * global teardown uses it without loading the app). The lines come from status-recorder.ts.
 */

export interface UndocumentedStatus {
  operation: string;
  status: number;
  example: string;
}

type OpenApiDocument = { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> };

/** Seen statuses (`METHOD STATUS /path` lines) that the operation they belong to does not document. */
export function undocumentedStatuses(document: OpenApiDocument, lines: string[]): UndocumentedStatus[] {
  const operations = Object.entries(document.paths).flatMap(([template, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      method: method.toUpperCase(),
      template,
      pattern: new RegExp('^' + template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '/?$'),
      documented: new Set(Object.keys(operation.responses ?? {})),
    })),
  );
  const found = new Map<string, UndocumentedStatus>();
  for (const line of lines) {
    const match = /^(\S+) (\d{3}) (.*)$/.exec(line);
    if (!match) continue;
    const [, method, statusText, rawPath] = match;
    let decoded: string;
    try {
      decoded = decodeURIComponent(rawPath);
    } catch {
      continue; // a malformed path matches no operation
    }
    // Literal paths before templated ones (/v1/audit/events/search is not /v1/audit/events/{id}).
    const candidates = operations.filter((o) => o.method === method && o.pattern.test(decoded));
    const operation = candidates.find((o) => !o.template.includes('{')) ?? candidates[0];
    if (!operation) continue; // not an API operation: the console, /docs, unknown routes
    if (operation.documented.has(statusText) || operation.documented.has('default')) continue;
    const key = `${operation.method} ${operation.template} ${statusText}`;
    if (!found.has(key))
      found.set(key, {
        operation: `${operation.method} ${operation.template}`,
        status: Number(statusText),
        example: rawPath,
      });
  }
  return [...found.values()].sort((a, b) => a.operation.localeCompare(b.operation) || a.status - b.status);
}
