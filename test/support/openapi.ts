import { INestApplication } from '@nestjs/common';
import { buildOpenApiDocument } from '../../src/app.factory';

export interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI path with `{param}` placeholders. */
  path: string;
  roles: string[];
  spec: Record<string, unknown>;
}

/** Every operation the running app documents, with the roles its decorator declared. */
export function documentedOperations(app: INestApplication): Operation[] {
  const doc = buildOpenApiDocument(app);
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const spec = (item as Record<string, unknown>)[method] as Record<string, unknown> | undefined;
      if (spec) ops.push({ method, path, roles: (spec['x-idgate-roles'] as string[]) ?? [], spec });
    }
  }
  return ops;
}

/** A concrete URL for an OpenAPI path: every `{param}` becomes a syntactically valid id that exists nowhere. */
export function concretePath(path: string): string {
  return path.replace(/\{[^}]+\}/g, '00000000-0000-7000-8000-000000000000');
}
