import { undocumentedStatuses } from './documented-statuses';

const document = {
  paths: {
    '/v1/verifications': { post: { responses: { '201': {}, '400': {} } }, get: { responses: { '200': {} } } },
    '/v1/verifications/{id}': { get: { responses: { '200': {}, '404': {} } } },
    '/v1/verifications/search': { post: { responses: { '200': {} } } },
  },
};

describe('undocumentedStatuses', () => {
  it('reports a status the matching operation does not document, once per operation and status', () => {
    const found = undocumentedStatuses(document, [
      'POST 201 /v1/verifications',
      'POST 409 /v1/verifications',
      'POST 409 /v1/verifications/',
      'GET 404 /v1/verifications/8f0c6b0e-0000-4000-8000-000000000000',
      'GET 400 /v1/verifications/not-a-uuid',
    ]);
    expect(found).toEqual([
      { operation: 'GET /v1/verifications/{id}', status: 400, example: '/v1/verifications/not-a-uuid' },
      { operation: 'POST /v1/verifications', status: 409, example: '/v1/verifications' },
    ]);
  });

  it('prefers a literal path to a template, and ignores what is no API operation', () => {
    expect(
      undocumentedStatuses(document, [
        'POST 200 /v1/verifications/search',
        'GET 404 /console/index.html',
        'DELETE 404 /v1/verifications',
        'GET 404 /v1/%E0%A4%A',
        'garbage',
      ]),
    ).toEqual([]);
    expect(undocumentedStatuses(document, ['POST 429 /v1/verifications/search'])).toEqual([
      { operation: 'POST /v1/verifications/search', status: 429, example: '/v1/verifications/search' },
    ]);
  });
});
