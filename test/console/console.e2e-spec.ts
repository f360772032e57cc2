import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CONSOLE_CSP } from '../../src/console/console-assets';
import { asAttacker, rewriteChainTimeFrom } from '../audit/support';
import { startTestApp, TestApp } from '../support/test-app';
import { KNOWN, startWithSandbox, UNKNOWN_VALID_ID, VerificationHarness } from '../support/verification-app';

/*
 * The staff console (/console): how it is served, GET /v1/me, and — in real
 * headless Chromium (Debian's package, driven by playwright-core; nothing is
 * downloaded) — each role's pages. Screenshots go to test-artifacts/console/.
 */

// Browser globals used inside page.evaluate() (this project compiles without the DOM lib).
interface PageElement {
  outerHTML: string;
  scrollWidth: number;
  clientWidth: number;
  parentElement: PageElement | null;
  getBoundingClientRect(): { right: number };
  querySelector(selector: string): PageElement | null;
  textContent: string | null;
  labels?: { length: number } | null;
  width: number;
  getAttribute(name: string): string | null;
  toDataURL(): string;
}
declare const document: {
  activeElement: PageElement | null;
  documentElement: PageElement;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
};
declare const sessionStorage: { length: number; getItem(key: string): string | null };
declare const history: { length: number };
declare const window: { Chart: { getChart(el: PageElement): unknown } };

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SHOTS = path.join(__dirname, '..', '..', 'test-artifacts', 'console');
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  // One line, not jest's console block with a stack trace.
  process.stderr.write(
    `console browser tests skipped: ${CHROMIUM} not installed (apt-get install chromium, or .ci/install-browser)\n`,
  );
}
/** The browser suite exists only where Chromium does (no skipped tests are registered otherwise). */
const describeInChromium: (name: string, fn: () => void) => void = hasChromium ? describe : () => undefined;

describe('console: served at /console', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('redirects /console to /console/ and serves the page with a strict CSP and no caching', async () => {
    await t.http.get('/console').expect(301).expect('Location', '/console/');
    const res = await t.http.get('/console/').expect(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toContain('unsafe-inline');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.text).toContain('<script type="module" src="js/main.js"></script>');
    // No inline script: every <script> has a src.
    expect(res.text.match(/<script(?![^>]*\ssrc=)[^>]*>/g)).toBeNull();
  });

  it('serves its modules, its stylesheet and Chart.js from node_modules, without an API key', async () => {
    const js = await t.http.get('/console/js/main.js').expect(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    await t.http.get('/console/styles.css').expect(200).expect('Content-Type', 'text/css; charset=utf-8');
    const chart = await t.http.get('/console/vendor/chart.umd.min.js').expect(200);
    expect(chart.text.length).toBeGreaterThan(100_000);
    const etag = chart.headers['etag'];
    await t.http.get('/console/vendor/chart.umd.min.js').set('If-None-Match', etag).expect(304);
    await t.http.head('/console/js/api.js').expect(200);
  });

  it('answers anything else under /console with the API’s 404 problem, and never reads outside its files', async () => {
    for (const p of ['/console/nope.js', '/console/../package.json', '/console/%2e%2e/package.json', '/console/js/']) {
      const res = await t.http.get(p);
      expect(res.status).toBe(404);
    }
    await t.http.post('/console/').expect(404);
  });

  it('GET /v1/me tells any key its role and prefix; no key is 401', async () => {
    for (const role of ['client', 'compliance', 'finance', 'admin'] as const) {
      const k = await t.keyFor(role);
      const res = await t.http.get('/v1/me').set('Authorization', `Bearer ${k.key}`).expect(200);
      expect(res.body).toEqual({ role, prefix: k.key.slice(0, res.body.prefix.length), client_id: k.clientId });
      expect(res.body.prefix.length).toBeLessThan(k.key.length);
    }
    await t.http.get('/v1/me').expect(401);
  });
});

describeInChromium('console in headless Chromium', () => {
  let h: VerificationHarness;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const keys: Record<string, string> = {};
  const problems: string[] = [];
  /** HTTP error statuses the current test provokes on purpose (the browser logs each failed fetch). */
  let expectedStatuses: number[] = [];
  const expectHttpErrors = (...statuses: number[]) => {
    expectedStatuses = statuses;
  };
  const visited: string[] = [];
  const verificationIds: string[] = [];
  const person = KNOWN[0];
  let statementFile: string;

  /** A screenshot at the context's 1,280 px, and nothing wider than that: no table overflows its place. */
  async function shot(name: string) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
    const overflow = await page.evaluate(() => {
      const out: string[] = [];
      const width = document.documentElement.clientWidth;
      if (document.documentElement.scrollWidth > width) out.push(`page ${document.documentElement.scrollWidth}px`);
      for (const t of Array.from(document.querySelectorAll('table'))) {
        const name = t.querySelector('caption')?.textContent ?? '(table)';
        const room = t.parentElement?.clientWidth ?? width;
        if (t.getBoundingClientRect().right > width + 1 || t.scrollWidth > room + 1)
          out.push(`${name}: ${t.scrollWidth}px in ${room}px`);
      }
      return out;
    });
    expect({ shot: name, overflow }).toEqual({ shot: name, overflow: [] });
  }

  async function signIn(key: string) {
    await page.goto(`${base}/console/`);
    await page.getByLabel('API key').fill(key);
    await page.getByLabel('API key').press('Enter');
  }

  /** Every input and select on the page has a label. */
  async function unlabelledFields(): Promise<string[]> {
    return page.evaluate(() =>
      Array.from(document.querySelectorAll('input, select, textarea'))
        .filter((el) => el.labels?.length === 0 && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML),
    );
  }

  beforeAll(async () => {
    h = await startWithSandbox();
    await h.t.app.listen(0, '127.0.0.1');
    base = (await h.t.app.getUrl()).replace('[::1]', '127.0.0.1');
    const client = await h.t.keyFor('client', 'acme');
    keys.client = client.key;
    for (const role of ['compliance', 'finance', 'admin'] as const) keys[role] = (await h.t.keyFor(role)).key;

    // Some history to look at: consistent, inconsistent, no record, and a local rejection.
    const submit = async (body: Record<string, string>) => {
      const res = await h.t.http.post('/v1/verifications').set('Authorization', `Bearer ${keys.client}`).send(body);
      expect(res.status).toBe(201);
      verificationIds.push(res.body.id);
    };
    await submit({ name: person.name, id_card: person.id_card, reference: 'order-1' });
    for (const [i, p] of KNOWN.slice(1, 5).entries())
      await submit({ name: p.name, id_card: p.id_card, reference: `order-${i + 2}` });
    await submit({ name: '王小明', id_card: KNOWN[5].id_card, reference: 'order-mismatch' });
    await submit({ name: '李四', id_card: UNKNOWN_VALID_ID, reference: 'order-norecord' });
    await submit({ name: '张三', id_card: '110101199003071234', reference: 'order-bad-id' });

    // The vendor's statement of what it charged, plus one line that is not ours.
    statementFile = path.join(os.tmpdir(), `idgate-statement-${process.pid}.csv`);
    const csv = h.sandbox.statementCsv();
    writeFileSync(statementFile, `${csv.trimEnd()}\nforeign-trace-1,${new Date().toISOString()},0,true,50\n`);

    browser = await (
      await import('playwright-core')
    ).chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
  });

  beforeEach(async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
    });
    page.on('request', (req) => visited.push(req.url()));
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) visited.push(`navigated: ${frame.url()}`);
    });
  });

  afterEach(async () => {
    await context.close();
    const expected = new RegExp(`status of (${expectedStatuses.join('|') || 'none'}) `);
    const unexpected = problems.filter((p) => !expected.test(p));
    problems.length = 0;
    expectedStatuses = [];
    // No CSP violation, script error or unexpected failed request logged in the page.
    expect(unexpected).toEqual([]);
  });

  afterAll(async () => {
    for (const l of h.t.logs) if (/"level":(50|60)/.test(l)) console.error(l.slice(0, 3000));
    await browser?.close();
    await h?.close();
    // No ID number or name ever went into a URL the browser asked for or showed.
    const urls = visited.join('\n');
    for (const secret of [
      person.id_card,
      encodeURIComponent(person.name),
      person.name,
      keys.compliance,
      keys.finance,
    ]) {
      expect(urls).not.toContain(secret);
    }
  });

  it('signs in with the keyboard alone; an unknown key and a client key are refused with the API’s reason', async () => {
    expectHttpErrors(401); // the page reports them; it does not crash
    await page.goto(`${base}/console/`);
    await expect(page.evaluate(() => document.activeElement?.getAttribute('name'))).resolves.toBe('key');
    // This instance runs the sandbox: its keys are idg_test_ (the placeholder follows the mode).
    await page.waitForFunction(
      () => document.querySelector('input[name=key]')?.getAttribute('placeholder') === 'idg_test_…',
    );
    await shot('01-sign-in');
    await page.keyboard.type('idg_test_notakey0000000000000000');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').getByText('Unknown API key.').waitFor();
    await expect(page.getByLabel('API key').getAttribute('aria-invalid')).resolves.toBeNull();

    await page.getByLabel('API key').fill(keys.client);
    await page.keyboard.press('Enter');
    await page.getByRole('alert').getByText('this is a client key').waitFor();
    await shot('02-sign-in-refused');
    await expect(page.evaluate(() => sessionStorage.length)).resolves.toBe(0);
  });

  it('compliance: sees only its sections, searches by exact ID number (POST, nothing in the URL) and pages', async () => {
    await signIn(keys.compliance);
    await page.getByText('Signed in as compliance').waitFor();
    const nav = page.getByRole('navigation', { name: 'Console sections' });
    await expect(nav.getByRole('button').allTextContents()).resolves.toEqual(['Verifications', 'Audit trail']);
    await expect(page.evaluate(() => Object.keys(sessionStorage as object))).resolves.toEqual(['idgate.console.key']);
    await expect(unlabelledFields()).resolves.toEqual([]);

    // On open, without a search: the newest verifications (25 a page is more than we have), masked.
    const rows = page.locator('table tbody tr');
    await page.getByText('8 verification(s) on this page.').waitFor();
    await expect(rows.count()).resolves.toBe(8);
    const listed = (await rows.allTextContents()).join('\n');
    expect(listed).toContain(`${person.id_card.slice(0, 6)}********${person.id_card.slice(-4)}`);
    for (const p of KNOWN.slice(0, 5)) expect(listed).not.toContain(p.id_card);
    // So opening the page read no personal data: nothing recorded as viewed.
    await expect(h.t.prisma.auditEvent.count({ where: { action: 'verification.viewed' } })).resolves.toBe(0);

    // Exact ID number: found, still masked in the list, and the URL has not changed.
    const urlBefore = page.url();
    const historyBefore = await page.evaluate(() => history.length);
    await page.getByLabel('ID number (exact)').fill(person.id_card);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText('1 verification(s) on this page.').waitFor();
    await expect(rows.first().textContent()).resolves.toContain(person.id_card.slice(-4));
    await expect(rows.first().textContent()).resolves.not.toContain(person.id_card);
    expect(page.url()).toBe(urlBefore);
    expect(page.url()).toBe(`${base}/console/`);
    await expect(page.evaluate(() => history.length)).resolves.toBe(historyBefore);
    await shot('03-verifications-search');

    // A field error from the API is shown and pinned on its field.
    expectHttpErrors(400);
    await page.getByLabel('ID number (exact)').fill('');
    await page.getByLabel('Client id').fill('not-a-uuid');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByRole('alert').getByText('client: must be a UUID').first().waitFor();
    await expect(page.getByLabel('Client id').getAttribute('aria-invalid')).resolves.toBe('true');
    await page.getByLabel('Client id').fill('');

    // A filter on the result code.
    await page.getByLabel('Result', { exact: true }).selectOption('0');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText('5 verification(s) on this page.').waitFor();
  });

  it('compliance: keyset paging steps older and back newer through the API’s cursor', async () => {
    await signIn(keys.compliance);
    await page.getByText('Signed in as compliance').waitFor();
    await page.getByLabel('Rows per page').selectOption('5');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText('5 verification(s) on this page.').waitFor();
    const newest = await page.locator('table tbody tr').first().textContent();
    await expect(page.getByRole('button', { name: '← Newer' }).isDisabled()).resolves.toBe(true);
    await page.getByRole('button', { name: 'Older →' }).click();
    await page.getByText('3 verification(s) on this page.').waitFor();
    await page.getByText('Page 2 (last)').waitFor();
    await expect(page.getByRole('button', { name: 'Older →' }).isDisabled()).resolves.toBe(true);
    const older = await page.locator('table tbody tr').allTextContents();
    expect(older).not.toContain(newest);
    await page.getByRole('button', { name: '← Newer' }).click();
    await page.getByText('Page 1', { exact: true }).waitFor();
    await expect(page.locator('table tbody tr').first().textContent()).resolves.toBe(newest);
  });

  it('compliance: a verification’s page shows the full record, its state history and its audit events', async () => {
    await signIn(keys.compliance);
    await page.getByText('Signed in as compliance').waitFor();
    await page.getByLabel('Reference').fill('order-1');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText('1 verification(s) on this page.').waitFor();
    await page.getByRole('button', { name: `Open verification ${verificationIds[0]}` }).click();
    await page.getByRole('heading', { name: `Verification ${verificationIds[0]}` }).waitFor();
    const record = page.locator('dl.record');
    await expect(record.textContent()).resolves.toContain(person.id_card);
    await expect(record.textContent()).resolves.toContain('0 (consistent)');
    const history = page.locator('ol.timeline');
    await history.getByText('created').first().waitFor();
    await history.getByText('completed').first().waitFor();
    // The view itself was audited by the API, and shows up among the events.
    const events = page.getByRole('table', { name: /event\(s\) about this verification/ });
    await events.getByText('verification.viewed').first().waitFor();
    await expect(events.textContent()).resolves.toContain('verification.created');
    expect(page.url()).toBe(`${base}/console/`);
    await shot('04-verification');
    await page.getByRole('button', { name: '← Back to results' }).click();
    await page.getByText('1 verification(s) on this page.').waitFor();
  });

  it('compliance: the audit trail filters, shows a green integrity badge, and exports CSV and NDJSON', async () => {
    await signIn(keys.compliance);
    await page.getByText('Signed in as compliance').waitFor();
    await page
      .getByRole('navigation', { name: 'Console sections' })
      .getByRole('button', { name: 'Audit trail' })
      .click();
    await page.locator('[data-integrity="ok"]').waitFor();
    await expect(page.locator('.integrity').textContent()).resolves.toMatch(
      /Audit chain intact: \d+ event\(s\) checked/,
    );
    await page.getByText(/event\(s\) on this page/).waitFor();
    await expect(unlabelledFields()).resolves.toEqual([]);

    await page.getByLabel('Action').selectOption('verification.completed');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    // Every verification that was recorded was completed (the local -2 rejection too).
    await page.getByText('8 event(s) on this page.').waitFor();
    const actions = await page.locator('table tbody tr td:nth-child(4)').allTextContents();
    expect(new Set(actions)).toEqual(new Set(['verification.completed']));
    await shot('05-audit-trail');

    for (const format of ['csv', 'ndjson']) {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: `Export ${format.toUpperCase()}` }).click(),
      ]);
      expect(download.suggestedFilename()).toMatch(new RegExp(`^idgate-audit-.*\\.${format}$`));
      const text = readFileSync((await download.path())!, 'utf8');
      expect(text).toContain('verification.completed');
      expect(text).not.toContain('verification.created');
      await page.getByText(/^Saved idgate-audit-/).waitFor();
    }
  });

  it('finance: sees usage and reconciliation only; the chart renders per day, stacked by result, amount on a second axis', async () => {
    await signIn(keys.finance);
    await page.getByText('Signed in as finance').waitFor();
    const nav = page.getByRole('navigation', { name: 'Console sections' });
    await expect(nav.getByRole('button').allTextContents()).resolves.toEqual(['Usage', 'Reconciliation']);
    await page.getByText(/call\(s\), \d+ charged/).waitFor();
    await expect(page.getByRole('status').filter({ hasText: 'call(s)' }).textContent()).resolves.toContain(
      '8 call(s), 6 charged, CN¥3.00',
    );
    await expect(unlabelledFields()).resolves.toEqual([]);
    const chart = await page.evaluate(() => {
      const c = window.Chart.getChart(document.querySelector('canvas')!) as {
        data: { labels: string[]; datasets: Array<{ label: string; type: string; yAxisID: string; data: number[] }> };
      };
      const canvas = document.querySelector('canvas')!;
      return {
        labels: c.data.labels.length,
        datasets: c.data.datasets.map((d) => ({
          label: d.label,
          type: d.type,
          axis: d.yAxisID,
          sum: d.data.reduce((a, b) => a + b, 0),
        })),
        width: canvas.width,
        painted: canvas.toDataURL().length,
      };
    });
    expect(chart.labels).toBe(14);
    expect(chart.datasets).toEqual(
      expect.arrayContaining([
        { label: '0 consistent', type: 'bar', axis: 'y', sum: 5 },
        { label: '-1 inconsistent', type: 'bar', axis: 'y', sum: 1 },
        { label: '-2 illegal ID number', type: 'bar', axis: 'y', sum: 1 },
        { label: '-5 no record', type: 'bar', axis: 'y', sum: 1 },
        { label: 'Charged calls', type: 'line', axis: 'y', sum: 6 },
        { label: 'Amount (CNY)', type: 'line', axis: 'y1', sum: 3 },
      ]),
    );
    expect(chart.width).toBeGreaterThan(600);
    expect(chart.painted).toBeGreaterThan(5000);
    const byClient = page.locator('table').filter({ hasText: 'Client id' });
    await expect(byClient.locator('tbody tr').count()).resolves.toBe(1);
    await expect(byClient.locator('tfoot').textContent()).resolves.toContain('CN¥3.00');
    await shot('06-usage');

    // A zone the API does not know: its error is shown on the field. Then UTC, and the CSV by client.
    expectHttpErrors(400);
    await page.getByLabel('Time zone').fill('Mars/Olympus');
    await page.getByRole('button', { name: 'Show usage' }).click();
    await page.getByRole('alert').waitFor();
    await expect(page.getByLabel('Time zone').getAttribute('aria-invalid')).resolves.toBe('true');
    await page.getByLabel('Time zone').fill('UTC');
    await page.getByRole('button', { name: 'Show usage' }).click();
    await page.getByText(/\(UTC\)\.$/).waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export clients (CSV)' }).click(),
    ]);
    expect(readFileSync((await download.path())!, 'utf8')).toMatch(/^key,calls,charged_calls/);
  });

  it('finance: uploads the vendor statement, reads the summary and the lines by status, exports CSV', async () => {
    await signIn(keys.finance);
    await page.getByText('Signed in as finance').waitFor();
    await page
      .getByRole('navigation', { name: 'Console sections' })
      .getByRole('button', { name: 'Reconciliation' })
      .click();
    await expect(unlabelledFields()).resolves.toEqual([]);
    await page.getByLabel('Vendor statement (CSV)').setInputFiles(statementFile);
    await page.getByRole('button', { name: 'Upload and reconcile' }).click();
    await page.getByRole('heading', { name: /^Reconciliation [0-9a-f-]{36}$/ }).waitFor();
    await page.getByText('1 difference(s) to look into.').waitFor();
    const grid = page.getByRole('group', { name: /Lines by status/ });
    await expect(grid.getByRole('button', { name: /Matched/ }).textContent()).resolves.toMatch(/^6/);
    await expect(grid.getByRole('button', { name: /On the bill, not ours/ }).textContent()).resolves.toMatch(/^1/);
    await page.getByText('7 line(s) on this page').waitFor();
    await shot('07-reconciliation');

    await grid.getByRole('button', { name: /On the bill, not ours/ }).click();
    await page.getByText('1 line(s) on this page').waitFor();
    await expect(page.locator('table').last().textContent()).resolves.toContain('foreign-trace-1');
    await shot('08-reconciliation-lines');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv).toContain('foreign-trace-1');
    expect(csv.trim().split('\n')).toHaveLength(2);

    // Not a statement: the API's reason is shown.
    expectHttpErrors(400);
    const bogus = path.join(os.tmpdir(), `idgate-not-a-statement-${process.pid}.csv`);
    writeFileSync(bogus, 'hello,world\n1,2\n');
    await page.getByLabel('Vendor statement (CSV)').setInputFiles(bogus);
    await page.getByRole('button', { name: 'Upload and reconcile' }).click();
    await page.getByRole('alert').first().waitFor();
    await expect(page.getByRole('alert').first().textContent()).resolves.toMatch(/header|statement/i);
  });

  it('admin sees usage only; sign-out clears the key, and a reload stays signed out', async () => {
    await signIn(keys.admin);
    await page.getByText('Signed in as admin').waitFor();
    const nav = page.getByRole('navigation', { name: 'Console sections' });
    await expect(nav.getByRole('button').allTextContents()).resolves.toEqual(['Usage']);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are signed out.').waitFor();
    await expect(page.evaluate(() => sessionStorage.length)).resolves.toBe(0);
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to the idgate console' }).waitFor();
  });

  it('a reload keeps the tab signed in, a new tab is not; a revoked key signs the console out with the reason', async () => {
    await signIn(keys.compliance);
    await page.getByText('Signed in as compliance').waitFor();
    await page.reload();
    await page.getByText('Signed in as compliance').waitFor();
    // A new tab (a new session storage) is signed out.
    const other = await context.newPage();
    await other.goto(`${base}/console/`);
    await other.getByRole('heading', { name: 'Sign in to the idgate console' }).waitFor();
    await other.close();

    // Revoked while signed in: the next call is refused, and the console signs out saying why.
    const doomed = await h.t.keyFor('compliance');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(doomed.key);
    await page.getByText('Signed in as compliance').waitFor();
    const revoked = await h.t.http.delete(`/v1/api-keys/${doomed.id}`).set('Authorization', `Bearer ${keys.admin}`);
    expect(revoked.status).toBeLessThan(300);
    expectHttpErrors(401);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText('Signed out: This API key has been revoked.').waitFor();
    await expect(page.evaluate(() => sessionStorage.length)).resolves.toBe(0);
  });

  it('compliance: the integrity badge turns red with the first bad seq after tampering', async () => {
    // Tamper like a database superuser with the protections off (see test/audit).
    await h.t.http.post('/v1/audit/checkpoints').set('Authorization', `Bearer ${keys.compliance}`);
    const seq = await asAttacker(h.t.db.adminUrl, async (c) => {
      const { rows } = await c.query(`SELECT seq, event_id FROM audit_chain ORDER BY seq LIMIT 1 OFFSET 2`);
      await c.query(`UPDATE audit_events SET outcome = 'denied' WHERE id = $1`, [rows[0].event_id]);
      return Number(rows[0].seq);
    });
    await signIn(keys.compliance);
    await page.getByText('Signed in as compliance').waitFor();
    await page
      .getByRole('navigation', { name: 'Console sections' })
      .getByRole('button', { name: 'Audit trail' })
      .click();
    await page.locator('[data-integrity="bad"]').waitFor();
    await expect(page.locator('.integrity').textContent()).resolves.toContain(`BROKEN at seq ${seq}`);
    await shot('09-audit-integrity-broken');
  });

  it('compliance: the integrity badge says when checkpoint signing stopped on a chain that does not verify', async () => {
    // A rewrite with every later hash recomputed, which the signer finds when it checks from the witness's last record.
    const head = Number((await h.t.prisma.auditChainLink.findFirstOrThrow({ orderBy: { seq: 'desc' } })).seq);
    await rewriteChainTimeFrom(h.t, head - 1);
    const refused = await h.t.http.post('/v1/audit/checkpoints').set('Authorization', `Bearer ${keys.compliance}`);
    expect(refused.status).toBe(409);
    await signIn(keys.compliance);
    await page.getByText('Signed in as compliance').waitFor();
    await page
      .getByRole('navigation', { name: 'Console sections' })
      .getByRole('button', { name: 'Audit trail' })
      .click();
    await page.locator('[data-signing="refused"]').waitFor();
    await expect(page.locator('[data-signing="refused"]').textContent()).resolves.toMatch(
      /Checkpoint signing stopped since .*: the chain does not verify at seq \d+ .*An audit_chain_broken alert was raised/,
    );
    await shot('10-audit-signing-refused');
  });
});
