import { randomBytes } from 'node:crypto';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The Unix time in milliseconds a UUIDv7 was made at, or null for any other id. */
export function uuidV7Time(id: string): number | null {
  if (!UUID_V7.test(id)) return null;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/**
 * UUIDv7 ids (RFC 9562), increasing within this process: 48 bits of Unix milliseconds, then a
 * 12-bit counter (RFC 9562 §6.2, method 1) started at a random value below 2048 each
 * millisecond, then 62 random bits. idgate makes event and verification ids itself, before the
 * insert: an event's MAC covers its id and, through its time, bounds the occurred_at the
 * database stamps; a verification's id is known before the single statement that records it.
 * Increasing ids keep one transaction's events in the order they were written (the sealer
 * orders a transaction's events by id). A clock that steps back keeps the last millisecond.
 */
export class UuidV7Source {
  private lastMs = -1;
  private counter = 0;

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly random: (bytes: number) => Buffer = randomBytes,
  ) {}

  next(): string {
    const now = this.clock();
    if (now > this.lastMs) {
      this.lastMs = now;
      this.counter = this.random(2).readUInt16BE(0) & 0x7ff;
    } else if (++this.counter > 0xfff) {
      // 2,048 or more ids in one millisecond: borrow the next one rather than repeat an id.
      this.lastMs++;
      this.counter = this.random(2).readUInt16BE(0) & 0x7ff;
    }
    const bytes = Buffer.alloc(16);
    bytes.writeUIntBE(this.lastMs, 0, 6);
    bytes.writeUInt16BE(0x7000 | this.counter, 6);
    this.random(8).copy(bytes, 8);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    const hex = bytes.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}
