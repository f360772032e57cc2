import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { canonicalEvent, ChainedEventFields, eventHash, GENESIS_HASH, JsonValue } from '../canonical';
import { eventMac, macCanonical, macMatches } from '../event-authenticity';
import { canonicalPair, linkHash, macValid, sha256Hex } from './integrity-canonical';

const KEY = Buffer.alloc(32, 7);

// Any text, lone surrogates, control characters and quotes included.
const text = fc.string({ unit: 'binary', maxLength: 12 });
const nullable = fc.option(text, { nil: null });
const json: fc.Arbitrary<JsonValue> = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>;
const events: fc.Arbitrary<ChainedEventFields> = fc.record({
  id: text,
  occurredAt: fc.date({ min: new Date(0), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
  actorType: text,
  actorId: nullable,
  actorRole: nullable,
  action: text,
  targetType: nullable,
  targetId: nullable,
  outcome: text,
  requestId: nullable,
  ip: nullable,
  details: fc.oneof(json, fc.dictionary(text, json, { maxKeys: 6 })),
  idCardHmac: nullable,
});

describe('integrity canonical forms', () => {
  it('are the bytes canonicalEvent and macCanonical give, for any event', () => {
    fc.assert(
      fc.property(events, (e) => {
        const pair = canonicalPair(e);
        expect(pair.event).toBe(canonicalEvent(e));
        expect(pair.mac).toBe(macCanonical(e));
        expect(linkHash(GENESIS_HASH, pair.event)).toBe(eventHash(GENESIS_HASH, e));
      }),
      { numRuns: 2000 },
    );
  });

  it('hash UTF-8 as createHash does', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        expect(sha256Hex(s)).toBe(createHash('sha256').update(s, 'utf8').digest('hex'));
      }),
      { numRuns: 500 },
    );
  });

  it('judge a MAC as macMatches does', () => {
    fc.assert(
      fc.property(events, fc.nat(8), (e, variant) => {
        const good = eventMac(KEY, e);
        const macs: (string | null)[] = [
          good,
          null,
          good.toUpperCase(),
          good.slice(0, 63),
          `${good}0`,
          `${good.slice(0, 63)}${good[63] === '0' ? '1' : '0'}`,
          eventMac(Buffer.alloc(32, 8), e),
          `${good.slice(0, 62)}\u0161${good[63]}`,
          'z'.repeat(64),
        ];
        const mac = macs[variant];
        expect(macValid(KEY, canonicalPair(e).mac, mac)).toBe(macMatches(KEY, e, mac));
      }),
      { numRuns: 1000 },
    );
  });
});
