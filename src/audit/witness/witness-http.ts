import { parseWitnessRecord, serializeWitnessRecord, WitnessRecord } from './witness-record';

/*
 * An HTTP witness (AUDIT_WITNESS_URL), e.g. the sandbox's /witness or a service run by
 * someone else. Protocol (docs/audit.md):
 *   POST <url>  one record (JSON)  → 201 appended | 200 already held | 409 {count, latest_digest}: it does not
 *                                    follow the witness's latest record (the witness keeps one history, as CT logs do)
 *   GET <url>?after=<n>&limit=<m>  → 200 {count, records: [...]}: records n+1 … n+m (1-based positions), in order
 */

export type PostOutcome = 'appended' | 'held' | 'conflict';

const TIMEOUT_MS = 5_000;
const PAGE = 5_000;

export class WitnessHttpError extends Error {}

export class HttpWitness {
  constructor(readonly url: string) {}

  /** The URL without credentials or query, for reports and logs. */
  get shownAs(): string {
    const u = new URL(this.url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  }

  async post(record: WitnessRecord): Promise<PostOutcome> {
    const res = await this.fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: serializeWitnessRecord(record),
    });
    await res.text().catch(() => '');
    if (res.status === 201) return 'appended';
    if (res.status === 200) return 'held';
    if (res.status === 409) return 'conflict';
    throw new WitnessHttpError(`HTTP witness answered ${res.status} to a record`);
  }

  /** How many records it holds. */
  async count(): Promise<number> {
    return (await this.page(0, 0)).count;
  }

  /** Records after position `after` (0: from the first), up to `limit`. */
  async page(after: number, limit: number): Promise<{ count: number; records: (WitnessRecord | string)[] }> {
    const u = new URL(this.url);
    u.searchParams.set('after', String(after));
    u.searchParams.set('limit', String(limit));
    const res = await this.fetch(u.toString(), { method: 'GET' });
    if (res.status !== 200) throw new WitnessHttpError(`HTTP witness answered ${res.status} to a listing`);
    const body = (await res.json()) as { count?: unknown; records?: unknown };
    if (typeof body.count !== 'number' || !Array.isArray(body.records)) {
      throw new WitnessHttpError('HTTP witness listing is not {count, records}');
    }
    return { count: body.count, records: body.records.map((r) => parseWitnessRecord(r)) };
  }

  /** Records 1 … upTo, in order (a malformed one as its problem). */
  async *records(upTo: number): AsyncGenerator<WitnessRecord | string> {
    let after = 0;
    while (after < upTo) {
      const { records } = await this.page(after, Math.min(PAGE, upTo - after));
      if (records.length === 0) throw new WitnessHttpError(`HTTP witness stopped at ${after} of ${upTo} records`);
      for (const r of records) yield r;
      after += records.length;
    }
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      throw new WitnessHttpError(`HTTP witness unreachable: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
