import type { NextFunction, Request, Response } from 'express';

/*
 * Response headers every answer gets before any handler runs (a handler may still set its
 * own: the console does). API answers carry personal data and must not sit in a browser's
 * or a proxy's cache; none of them is a page, so their CSP allows nothing at all.
 */

/** API answers are data, never a document to render, frame or run. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Swagger UI at /docs: its scripts are files of ours (the bundle, the preset and
 * swagger-ui-init.js); its index page has inline <style> blocks and a style attribute,
 * hence 'unsafe-inline' for styles only (never for scripts). Images and fonts include
 * data: URIs (its CSS icons); "Try it out" and the document are same-origin fetches.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const DOCS = /^\/docs(?:\/|$)/;
// Swagger UI's own files: static, the same for every caller; the init script holds the document and is not one.
const DOCS_STATIC_ASSET = /^\/docs\/(?!swagger-ui-init\.js$)[^/]+\.(?:js|css|png|map)$/;

/** The headers for a request path (query string excluded). */
export function securityHeadersFor(path: string): Record<string, string> {
  const headers: Record<string, string> = {
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': DOCS.test(path) ? DOCS_CSP : API_CSP,
  };
  if (!DOCS_STATIC_ASSET.test(path)) headers['Cache-Control'] = 'no-store';
  return headers;
}

export function securityHeaders() {
  return (req: Request, res: Response, next: NextFunction) => {
    for (const [name, value] of Object.entries(securityHeadersFor(req.path))) res.setHeader(name, value);
    next();
  };
}
