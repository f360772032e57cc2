import { once } from 'node:events';
import type { Response } from 'express';

/**
 * Writes chunks to the response, waiting for 'drain' when the socket is full
 * (backpressure), and stops pulling when the client goes away.
 */
export async function streamToResponse(res: Response, chunks: AsyncIterable<string>): Promise<void> {
  let gone = false;
  res.once('close', () => (gone = true));
  const iterator = chunks[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (gone) return;
      const next = await iterator.next();
      if (next.done) break;
      if (!res.write(next.value)) {
        // Both listeners go once either fires: a slow reader must not pile up 'close' listeners.
        const done = new AbortController();
        await Promise.race([once(res, 'drain', { signal: done.signal }), once(res, 'close', { signal: done.signal })])
          .finally(() => done.abort())
          .catch(() => undefined);
      }
    }
    res.end();
  } finally {
    await iterator.return?.(undefined);
  }
}
