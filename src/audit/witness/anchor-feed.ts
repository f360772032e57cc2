import type { Anchor } from './anchor-comparison';
import { WitnessDir, LatestRecord } from './witness-dir';
import { witnessRecordDigest } from './witness-record';

export type FeedItem = Anchor | { malformed: string; seq: number | null; fatal: boolean };

/** Anchors from an async source, handed out in seq order up to a bound (see ExportVerifier). */
export class AnchorFeed {
  private pending: FeedItem | null = null;
  private done = false;

  constructor(private readonly items: AsyncIterator<FeedItem>) {}

  async through(
    seq: number,
    onAnchor: (a: Anchor) => void,
    onUnreadable: (item: { malformed: string; seq: number | null; fatal: boolean }) => void,
  ): Promise<void> {
    for (;;) {
      if (!this.pending) {
        if (this.done) return;
        const next = await this.items.next();
        if (next.done) {
          this.done = true;
          return;
        }
        this.pending = next.value;
      }
      const item = this.pending;
      if ('malformed' in item) {
        this.pending = null;
        onUnreadable(item);
        continue;
      }
      if (item.seq > seq) return;
      this.pending = null;
      onAnchor(item);
    }
  }
}

/** A witness folder's records as they are now: up to the latest one, read first. */
export async function folderFeed(dir: WitnessDir): Promise<{ latest: LatestRecord | null; feed: AnchorFeed }> {
  const latest = await dir.latest();
  async function* items(): AsyncGenerator<FeedItem> {
    if (!latest) return;
    for await (const item of dir.items()) {
      if ('record' in item) {
        yield item.record;
        if (witnessRecordDigest(item.record) === latest.digest) return;
      } else {
        yield { malformed: `${item.where}: ${item.malformed}`, seq: item.seq, fatal: item.fatal };
      }
    }
  }
  return { latest, feed: new AnchorFeed(items()) };
}

/** Anchors already in memory (a checkpoint list), sorted by seq. */
export function listFeed(anchors: readonly Anchor[]): AnchorFeed {
  const sorted = [...anchors].sort((a, b) => a.seq - b.seq);
  async function* items(): AsyncGenerator<FeedItem> {
    yield* sorted;
  }
  return new AnchorFeed(items());
}
