import { addBodyExamples, OpenApiDocument } from './openapi-examples';

const schemas = {
  Money: {
    type: 'object',
    properties: { amount: { type: 'integer', example: 50 }, currency: { type: 'string', example: 'CNY' } },
  },
  Item: {
    type: 'object',
    properties: {
      id: { type: 'string', example: '8f0c6b0e-1d2a-4c3b-9e4f-5a6b7c8d9e0f' },
      status: { type: 'string', enum: ['charged', 'not_charged'] },
      price: { $ref: '#/components/schemas/Money' },
      tags: { type: 'array', items: { type: 'string', example: 'vip' } },
    },
  },
  Page: { type: 'object', properties: { items: { type: 'array', items: { $ref: '#/components/schemas/Item' } } } },
  Loose: { type: 'object', properties: { note: { type: 'string' } } },
  Node: { type: 'object', properties: { child: { $ref: '#/components/schemas/Node' } } },
};

function documentWith(responses: Record<string, unknown>, requestBody?: unknown): OpenApiDocument {
  return {
    paths: { '/x': { get: { responses, ...(requestBody ? { requestBody } : {}) } } },
    components: { schemas },
  } as OpenApiDocument;
}

describe('addBodyExamples', () => {
  it('composes a whole body from the property examples, through references, arrays and enums', () => {
    const doc = addBodyExamples(
      documentWith({ '200': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Page' } } } } }),
    );
    expect(doc.paths['/x'].get.responses?.['200'].content?.['application/json'].example).toEqual({
      items: [
        {
          id: '8f0c6b0e-1d2a-4c3b-9e4f-5a6b7c8d9e0f',
          status: 'charged',
          price: { amount: 50, currency: 'CNY' },
          tags: ['vip'],
        },
      ],
    });
  });

  it('keeps the examples an operation declares, and adds none it cannot make whole', () => {
    const declared = { one: { value: { id: 'x' } } };
    const doc = addBodyExamples(
      documentWith(
        {
          '200': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Loose' } } } },
          '201': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } } },
          '204': { description: 'no body' },
        },
        { content: { 'application/json': { schema: { $ref: '#/components/schemas/Item' }, examples: declared } } },
      ),
    );
    const op = doc.paths['/x'].get;
    expect(op.requestBody?.content?.['application/json'].examples).toBe(declared);
    expect(op.requestBody?.content?.['application/json'].example).toBeUndefined();
    // A property without an example, or a schema that contains itself: no half-made example.
    expect(op.responses?.['200'].content?.['application/json'].example).toBeUndefined();
    expect(op.responses?.['201'].content?.['application/json'].example).toBeUndefined();
  });
});
