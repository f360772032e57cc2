import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../database/project-paths';
import type { NextFunction, Request, Response } from 'express';

/*
 * The staff console (/console) is a handful of static files, loaded into memory
 * at start and served by a tiny handler of our own: an exact-name lookup (no
 * path ever reaches the file system), strict Content-Security-Policy, and no
 * caching of the page itself. It runs as middleware, outside the API's guard:
 * the files hold no data, and every call the page makes goes through /v1 with
 * the signed-in key.
 */

export const CONSOLE_PATH = '/console';

/** No inline script or style, nothing from elsewhere, no framing. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

export interface ConsoleAsset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The console's own files (copied next to the compiled module by nest-cli `assets`). */
export function staticDir(): string {
  // nest build copies the files next to this module; other builds (benchmarks) read them from src/.
  const beside = path.join(__dirname, 'static');
  return existsSync(beside) ? beside : path.join(projectRoot(), 'src', 'console', 'static');
}

/** Chart.js's self-contained UMD build, from node_modules (a runtime dependency). */
export function chartJsFile(): string {
  return path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');
}

function walk(dir: string, prefix = ''): Array<[string, string]> {
  const files: Array<[string, string]> = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) files.push(...walk(full, `${prefix}${name}/`));
    else files.push([`${prefix}${name}`, full]);
  }
  return files;
}

/** Every served file by its URL path below /console/ ('' is the page itself). */
export function loadConsoleAssets(dir = staticDir(), chartJs = chartJsFile()): Map<string, ConsoleAsset> {
  const assets = new Map<string, ConsoleAsset>();
  const add = (urlPath: string, file: string) => {
    const type = TYPES[path.extname(file)];
    if (!type) return;
    const body = readFileSync(file);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    assets.set(urlPath, { body, type, etag });
  };
  for (const [urlPath, file] of walk(dir)) add(urlPath, file);
  add('vendor/chart.umd.min.js', chartJs);
  const index = assets.get('index.html');
  if (!index) throw new Error(`idgate: the console's index.html is missing from ${dir}`);
  assets.set('', index);
  return assets;
}

/** Express middleware answering GET/HEAD under /console; anything else falls through (404 problem). */
export function consoleHandler(assets: Map<string, ConsoleAsset>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const pathname = req.path;
    if (pathname === CONSOLE_PATH) {
      // Relative asset URLs in the page need the trailing slash.
      res.redirect(301, `${CONSOLE_PATH}/`);
      return;
    }
    if (!pathname.startsWith(`${CONSOLE_PATH}/`)) return next();
    const asset = assets.get(pathname.slice(CONSOLE_PATH.length + 1));
    if (!asset) return next();
    res.setHeader('Content-Type', asset.type);
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cache-Control', asset.type.startsWith('text/html') ? 'no-store' : 'no-cache');
    res.setHeader('ETag', asset.etag);
    if (req.headers['if-none-match'] === asset.etag) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Length', String(asset.body.length));
    res.status(200);
    if (req.method === 'HEAD') res.end();
    else res.end(asset.body);
  };
}
