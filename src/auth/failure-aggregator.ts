/*
 * Keeps refused requests from flooding the audit trail. Per bucket (action, reason,
 * source, subject) and window, the first refusal is recorded on its own as before; the
 * rest of the window only increments a counter, and when the window closes one summary
 * event carries the count. The trail then grows with sources × windows, not requests.
 *
 * Two more bounds, because sources are cheap (a botnet, an IPv6 range): no more than
 * `maxIndividualPerWindow` refusals are recorded on their own per window, whatever their
 * source (beyond it a new bucket starts with its first refusal counted, not recorded); and
 * no more than `maxBuckets` buckets are held (beyond it refusals from new sources share
 * one overflow bucket per action, summarised without a source).
 */

export interface Occurrence {
  action: string;
  reason: string;
  /** Where it came from (address, or IPv6 /64). */
  source: string;
  /** What it concerns when that set is small (a key id): buckets per subject. Null otherwise. */
  subject: string | null;
  endpoint: string;
  /** A visible key prefix to remember as a sample (unknown keys), or null. */
  keyPrefix: string | null;
}

export interface AggregatorOptions {
  windowMs: number;
  maxIndividualPerWindow: number;
  maxBuckets: number;
  /** Distinct endpoints and key prefixes kept as samples per summary. */
  maxSamples?: number;
}

export interface Summary<T> {
  /** The first occurrence of the bucket's window (who and where). */
  first: T;
  action: string;
  reason: string;
  /** True for the overflow bucket: many sources, none named. */
  overflow: boolean;
  /** Occurrences not recorded on their own. */
  count: number;
  windowStart: number;
  windowEnd: number;
  endpoints: string[];
  keyPrefixes: string[];
}

interface Bucket<T> {
  first: T;
  action: string;
  reason: string;
  overflow: boolean;
  opened: number;
  suppressed: number;
  endpoints: Set<string>;
  keyPrefixes: Set<string>;
}

export interface NoteResult<T> {
  /** Record this occurrence on its own now. */
  recordNow: boolean;
  /** Windows that had closed and are to be written as summaries. */
  closed: Summary<T>[];
}

export class FailureAggregator<T> {
  private readonly buckets = new Map<string, Bucket<T>>();
  private globalWindowStart = -Infinity;
  private individualInWindow = 0;
  private readonly maxSamples: number;

  constructor(
    private readonly options: AggregatorOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.maxSamples = options.maxSamples ?? 10;
  }

  get size(): number {
    return this.buckets.size;
  }

  note(occurrence: Occurrence, payload: T): NoteResult<T> {
    const now = this.now();
    const closed: Summary<T>[] = [];
    let key = bucketKey(occurrence);
    let existing = this.live(key, now, closed);
    let overflow = false;
    if (!existing && this.buckets.size >= this.options.maxBuckets) {
      closed.push(...this.closeExpired());
      if (this.buckets.size >= this.options.maxBuckets) {
        overflow = true;
        key = `${occurrence.action}\u0000overflow`;
        existing = this.live(key, now, closed);
      }
    }
    if (existing) {
      existing.suppressed++;
      this.sample(existing, occurrence);
      return { recordNow: false, closed };
    }
    if (now >= this.globalWindowStart + this.options.windowMs) {
      this.globalWindowStart = now;
      this.individualInWindow = 0;
    }
    const recordNow = !overflow && this.individualInWindow < this.options.maxIndividualPerWindow;
    if (recordNow) this.individualInWindow++;
    const bucket: Bucket<T> = {
      first: payload,
      action: occurrence.action,
      reason: occurrence.reason,
      overflow,
      opened: now,
      suppressed: recordNow ? 0 : 1,
      endpoints: new Set(),
      keyPrefixes: new Set(),
    };
    if (!recordNow) this.sample(bucket, occurrence);
    this.buckets.set(key, bucket);
    return { recordNow, closed };
  }

  /** The bucket under `key` if its window is still open; a closed one is summarised into `closed`. */
  private live(key: string, now: number, closed: Summary<T>[]): Bucket<T> | undefined {
    const bucket = this.buckets.get(key);
    if (!bucket || now < bucket.opened + this.options.windowMs) return bucket;
    this.buckets.delete(key);
    const summary = this.summarise(bucket, now);
    if (summary) closed.push(summary);
    return undefined;
  }

  /** Summaries of windows that have ended (buckets without suppressed occurrences are just dropped). */
  closeExpired(): Summary<T>[] {
    const now = this.now();
    const out: Summary<T>[] = [];
    for (const [key, bucket] of this.buckets) {
      if (now < bucket.opened + this.options.windowMs) continue;
      this.buckets.delete(key);
      const summary = this.summarise(bucket, now);
      if (summary) out.push(summary);
    }
    return out;
  }

  /** Summaries of every open window (shutdown). */
  closeAll(): Summary<T>[] {
    const now = this.now();
    const out: Summary<T>[] = [];
    for (const bucket of this.buckets.values()) {
      const summary = this.summarise(bucket, now);
      if (summary) out.push(summary);
    }
    this.buckets.clear();
    return out;
  }

  private sample(bucket: Bucket<T>, occurrence: Occurrence): void {
    if (bucket.endpoints.size < this.maxSamples) bucket.endpoints.add(occurrence.endpoint);
    if (occurrence.keyPrefix && bucket.keyPrefixes.size < this.maxSamples) bucket.keyPrefixes.add(occurrence.keyPrefix);
  }

  private summarise(bucket: Bucket<T>, now: number): Summary<T> | null {
    if (bucket.suppressed === 0) return null;
    return {
      first: bucket.first,
      action: bucket.action,
      reason: bucket.reason,
      overflow: bucket.overflow,
      count: bucket.suppressed,
      windowStart: bucket.opened,
      windowEnd: Math.min(now, bucket.opened + this.options.windowMs),
      endpoints: [...bucket.endpoints],
      keyPrefixes: [...bucket.keyPrefixes],
    };
  }
}

function bucketKey(o: Occurrence): string {
  return [o.action, o.reason, o.source, o.subject ?? ''].join('\u0000');
}
