import { API_CSP, DOCS_CSP, securityHeadersFor } from './security-headers';

describe('security headers', () => {
  it('API answers: never cached, nothing allowed to render', () => {
    for (const path of [
      '/v1/verifications',
      '/v1/me',
      '/identity/idcard/ocr',
      '/health/ready',
      '/metrics',
      '/docs-json',
      '/',
    ]) {
      expect(securityHeadersFor(path)).toEqual({
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Content-Security-Policy': API_CSP,
        'Cache-Control': 'no-store',
      });
    }
  });

  it('/docs: a CSP that lets Swagger UI run its own files and nothing inline', () => {
    for (const path of ['/docs', '/docs/', '/docs/index.html', '/docs/swagger-ui-init.js']) {
      expect(securityHeadersFor(path)).toMatchObject({
        'Content-Security-Policy': DOCS_CSP,
        'Cache-Control': 'no-store',
      });
    }
    expect(DOCS_CSP).toMatch(/script-src 'self'(;|$)/);
    expect(DOCS_CSP).not.toMatch(/script-src[^;]*unsafe/);
    expect(DOCS_CSP).toContain("frame-ancestors 'none'");
    // Swagger UI's static files may be cached; the init script holds the document and may not.
    expect(securityHeadersFor('/docs/swagger-ui-bundle.js')['Cache-Control']).toBeUndefined();
    expect(securityHeadersFor('/docs/swagger-ui.css')['Cache-Control']).toBeUndefined();
  });
});
