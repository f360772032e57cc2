/* global sessionStorage, URL, window, fetch, document, setTimeout */
// Talking to the idgate API with the signed-in key. The key lives in this tab's
// sessionStorage only and goes out as a bearer header, never in a URL.

const KEY_ITEM = 'idgate.console.key';

export const session = {
  key() {
    return sessionStorage.getItem(KEY_ITEM);
  },
  save(key) {
    sessionStorage.setItem(KEY_ITEM, key);
  },
  clear() {
    sessionStorage.removeItem(KEY_ITEM);
  },
};

/** An API failure, with the problem+json body when there was one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `The request failed (HTTP ${status}).`);
    this.status = status;
    this.problem = problem ?? {};
    this.fieldErrors = Array.isArray(problem?.errors) ? problem.errors : [];
  }
}

let onUnauthorized = () => {};
/** Called when the API answers 401 (key revoked or unknown): the console signs out. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function urlFor(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return url;
}

async function problemOf(res) {
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    try {
      return await res.json();
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * fetch with the bearer key. `body` is sent as JSON, `form` as multipart.
 * Returns the parsed JSON, or the Response itself when `raw` is set.
 */
export async function request(method, path, { query, body, form, raw, key } = {}) {
  const headers = { Accept: raw ? '*/*' : 'application/json' };
  const bearer = key ?? session.key();
  // Signed out meanwhile (a view still loading): nothing is sent without a key.
  if (!bearer) throw new ApiError(401, { detail: 'You are signed out.' });
  headers.Authorization = `Bearer ${bearer}`;
  let payload;
  if (form) payload = form;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(urlFor(path, query), {
      method,
      headers,
      body: payload,
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError(0, { detail: 'idgate could not be reached. Check the connection and try again.' });
  }
  if (!res.ok) {
    const problem = await problemOf(res);
    // Only a refusal of the key still in use signs the console out (not a late answer to an old session's call).
    if (res.status === 401 && !key && session.key() === bearer) onUnauthorized(problem);
    throw new ApiError(res.status, problem);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

export const get = (path, query, options = {}) => request('GET', path, { ...options, query });
export const post = (path, body, options = {}) => request('POST', path, { ...options, body });

/**
 * Downloads an export: fetched with the bearer header (a plain link cannot carry
 * it), then saved from a blob under the name the API gave.
 */
export async function download(path, query, fallbackName) {
  const res = await request('GET', path, { query, raw: true });
  const blob = await res.blob();
  const disposition = res.headers.get('content-disposition') ?? '';
  const match = /filename="?([^";]+)"?/i.exec(disposition);
  const name = match ? match[1] : fallbackName;
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return { name, size: blob.size };
}

/** Every page of a keyset-paginated list (bounded). */
export async function allPages(fetchPage, maxPages = 20) {
  const items = [];
  let cursor;
  for (let i = 0; i < maxPages; i += 1) {
    const page = await fetchPage(cursor);
    items.push(...page.items);
    if (!page.next_cursor) return { items, complete: true };
    cursor = page.next_cursor;
  }
  return { items, complete: false };
}
