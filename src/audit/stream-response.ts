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
        await Promise.race([once(res, 'drain'), once(res, 'close')]);
      }
    }
    res.end();
  } finally {
    await iterator.return?.(undefined);
  }
}
