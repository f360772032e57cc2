/*
 * Every request and response body in the OpenAPI document gets an example, composed from the
 * `example` of each schema property (which the DTOs declare beside their description), so that a
 * reader, a mock server or a client generator sees a whole body, not only a schema. Examples an
 * operation declares itself (several request examples, problem examples) are kept as they are.
 */

type Schema = {
  $ref?: string;
  example?: unknown;
  type?: string;
  format?: string;
  enum?: unknown[];
  items?: Schema;
  properties?: Record<string, Schema>;
  allOf?: Schema[];
  oneOf?: Schema[];
  anyOf?: Schema[];
  nullable?: boolean;
  additionalProperties?: boolean | Schema;
};
type MediaType = { schema?: Schema; example?: unknown; examples?: Record<string, unknown> };
type Content = Record<string, MediaType>;
type Operation = { requestBody?: { content?: Content }; responses?: Record<string, { content?: Content }> };
export type OpenApiDocument = {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
};

const NO_EXAMPLE = Symbol('no example');

/** An example of `schema`, or NO_EXAMPLE when some part of it declares none (so nothing half-made is shown). */
function exampleOf(schema: Schema, schemas: Record<string, Schema>, seen: Set<string>): unknown {
  if (schema.example !== undefined) return schema.example;
  if (schema.$ref) {
    const name = schema.$ref.split('/').pop() as string;
    const target = schemas[name];
    if (!target || seen.has(name)) return NO_EXAMPLE; // unknown, or recursive
    return exampleOf(target, schemas, new Set([...seen, name]));
  }
  if (schema.enum && schema.enum.length > 0) return schema.enum[0];
  const variants = schema.allOf ?? schema.oneOf ?? schema.anyOf;
  if (variants) {
    if (!schema.allOf) return exampleOf(variants[0], schemas, seen);
    const parts = variants.map((v) => exampleOf(v, schemas, seen));
    if (parts.some((p) => p === NO_EXAMPLE)) return NO_EXAMPLE;
    return Object.assign({}, ...parts);
  }
  if (schema.type === 'array' && schema.items) {
    const item = exampleOf(schema.items, schemas, seen);
    return item === NO_EXAMPLE ? NO_EXAMPLE : [item];
  }
  if (schema.properties) {
    const entries = Object.entries(schema.properties).map(([k, v]) => [k, exampleOf(v, schemas, seen)] as const);
    if (entries.some(([, v]) => v === NO_EXAMPLE)) return NO_EXAMPLE;
    return Object.fromEntries(entries);
  }
  return NO_EXAMPLE;
}

function exemplify(content: Content | undefined, schemas: Record<string, Schema>): void {
  for (const media of Object.values(content ?? {})) {
    if (media.example !== undefined || media.examples !== undefined || !media.schema) continue;
    const example = exampleOf(media.schema, schemas, new Set());
    if (example !== NO_EXAMPLE) media.example = example;
  }
}

/** Adds an example to every request and response body of `document` that has none (in place; returns it). */
export function addBodyExamples<T extends OpenApiDocument>(document: T): T {
  const schemas = document.components?.schemas ?? {};
  for (const methods of Object.values(document.paths)) {
    for (const operation of Object.values(methods)) {
      exemplify(operation.requestBody?.content, schemas);
      for (const response of Object.values(operation.responses ?? {})) exemplify(response.content, schemas);
    }
  }
  return document;
}
