import fc from 'fast-check';
import { eventHash, GENESIS_HASH } from '../canonical';
import { ChainFault, ChainWalker } from '../chain-walker';
import {
  AuthenticityRules,
  AuthenticityWalk,
  eventMac,
  MAC_REQUIRED_FROM,
  UuidV7Source,
  WalkedEvent,
} from '../event-authenticity';
import type { ChainLink } from './chain-rows';
import { IntegrityWalk, stateAfter } from './integrity-walk';

const KEY = Buffer.alloc(32, 7);
const MINUTE = 60_000;
const rules: AuthenticityRules = { macKey: KEY, toleranceMs: 5 * MINUTE, macRequiredFrom: MAC_REQUIRED_FROM };

/** An event as idgate writes it at `at` (a UUIDv7 of that time, its MAC). */
function written(n: number, at: number): WalkedEvent {
  const fields = {
    id: new UuidV7Source(() => at).next(),
    actorType: 'api_key',
    actorId: `key-${n % 3}`,
    actorRole: 'client',
    action: 'verification.completed',
    targetType: 'verification',
    targetId: `v-${n}`,
    outcome: 'success',
    requestId: `req-${n}`,
    ip: '127.0.0.1',
    details: { result: '0', n, nested: { b: [1, 'é"\n'], a: null } },
    idCardHmac: null,
  };
  return { ...fields, occurredAt: new Date(at), mac: eventMac(KEY, fields) };
}

/** Links over `events` (null: a deleted event), hashed from `from` on as the sealer would have. */
function sealed(events: (WalkedEvent | null)[], rehashFrom = 0, links: ChainLink[] = []): ChainLink[] {
  let prev = rehashFrom === 0 ? GENESIS_HASH : links[rehashFrom - 1].hash;
  const out = links.slice(0, rehashFrom);
  for (let i = rehashFrom; i < events.length; i++) {
    const e = events[i];
    const hashable = e && !Number.isNaN(e.occurredAt.getTime());
    const hash = hashable ? eventHash(prev, e) : (links[i]?.hash ?? 'f'.repeat(64));
    out.push({ seq: i + 1, prevHash: prev, hash, event: e });
    prev = hash;
  }
  return out;
}

/** The walk as it was before: ChainWalker, then AuthenticityWalk, first fault wins. */
function reference(links: ChainLink[], from = 1): ChainFault | null {
  const start = links[from - 2];
  const walker = new ChainWalker(from, start?.hash ?? null);
  const auth = new AuthenticityWalk(rules);
  if (start?.event) auth.after(from - 1, start.event);
  for (const link of links.slice(from - 1)) {
    const fault = walker.accept(link) ?? (link.event ? auth.check(link.seq, link.event) : null);
    if (fault) return fault;
  }
  return null;
}

function walked(links: ChainLink[], from = 1): ChainFault | null {
  const start = links[from - 2];
  const walk = new IntegrityWalk(from, start?.hash ?? null, rules, stateAfter(rules, from - 1, start?.event ?? null));
  for (const link of links.slice(from - 1)) {
    const fault = walk.accept(link);
    if (fault) return fault;
  }
  return null;
}

type Tamper = (events: (WalkedEvent | null)[], links: ChainLink[], i: number) => ChainLink[];

const tampers: Record<string, Tamper> = {
  edited: (ev, links, i) => {
    ev[i] = { ...(ev[i] as WalkedEvent), outcome: 'denied' };
    return sealed(ev, links.length, [...links.slice(0, i), { ...links[i], event: ev[i] }, ...links.slice(i + 1)]);
  },
  'edited and re-hashed': (ev, links, i) => {
    ev[i] = { ...(ev[i] as WalkedEvent), details: { result: '-1' } };
    return sealed(ev, i, links);
  },
  'back-dated and re-hashed': (ev, links, i) => {
    ev[i] = {
      ...(ev[i] as WalkedEvent),
      occurredAt: new Date((ev[i] as WalkedEvent).occurredAt.getTime() - 60 * MINUTE),
    };
    return sealed(ev, i, links);
  },
  'MAC removed and re-hashed': (ev, links, i) => {
    ev[i] = { ...(ev[i] as WalkedEvent), mac: null };
    return sealed(ev, i, links);
  },
  'MAC in capitals': (ev, links, i) => {
    ev[i] = { ...(ev[i] as WalkedEvent), mac: (ev[i] as WalkedEvent).mac?.toUpperCase() ?? null };
    return sealed(ev, i, links);
  },
  'forged event inserted and re-hashed': (ev, links, i) => {
    // Its neighbour's time, unless an earlier tamper left that no time at all (ids are made from a real time).
    const at = (ev[i] as WalkedEvent | null)?.occurredAt.getTime();
    const when = at !== undefined && Number.isFinite(at) ? at : MAC_REQUIRED_FROM.getTime() + 1000;
    const forged = { ...written(999, when), mac: 'ab'.repeat(32) };
    ev.splice(i, 0, forged);
    return sealed(ev, i, links);
  },
  'event deleted': (ev, links, i) => {
    ev[i] = null;
    return links.map((l, k) => (k === i ? { ...l, event: null } : l));
  },
  'link removed': (_ev, links, i) => links.filter((_, k) => k !== i),
  'link removed and re-linked': (ev, links, i) => {
    ev.splice(i, 1);
    return sealed(ev, i, links);
  },
  'hash replaced': (_ev, links, i) => links.map((l, k) => (k === i ? { ...l, hash: '0'.repeat(64) } : l)),
  'time not a time': (ev, links, i) => {
    ev[i] = { ...(ev[i] as WalkedEvent), occurredAt: new Date(Number.NaN) };
    return links.map((l, k) => (k === i ? { ...l, event: ev[i] } : l));
  },
};

describe('IntegrityWalk', () => {
  const base = MAC_REQUIRED_FROM.getTime() + 1000;

  it('passes an intact chain, from the start and from any seq', () => {
    const events = Array.from({ length: 30 }, (_, n) => written(n, base + n * 1000));
    const links = sealed(events);
    for (const from of [1, 2, 17, 30]) {
      expect(walked(links, from)).toBeNull();
      expect(reference(links, from)).toBeNull();
    }
  });

  it('reports the same first fault, in the same words, as ChainWalker and AuthenticityWalk', () => {
    const names = Object.keys(tampers);
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 25 }),
        fc.array(fc.tuple(fc.constantFrom(...names), fc.nat()), { minLength: 1, maxLength: 3 }),
        fc.array(fc.integer({ min: -2 * MINUTE, max: 10 * MINUTE }), { minLength: 25, maxLength: 25 }),
        fc.nat(),
        (n, changes, steps, fromPick) => {
          // Times mostly increasing, now and then behind (within the tolerance or not).
          let at = base;
          const events: (WalkedEvent | null)[] = Array.from({ length: n }, (_, k) => written(k, (at += steps[k])));
          let links = sealed(events);
          for (const [name, pick] of changes) {
            const i = pick % links.length;
            if (!events[i] && name !== 'link removed' && name !== 'hash replaced') continue;
            links = tampers[name](events, links, i);
            if (links.length === 0) return;
          }
          const fromSeq = 1 + (fromPick % links.length);
          const hasInvalidTime = links.some((l) => l.event && Number.isNaN(l.event.occurredAt.getTime()));
          if (!hasInvalidTime) {
            expect(walked(links)).toEqual(reference(links));
            if (links.every((l, k) => l.seq === k + 1))
              expect(walked(links, fromSeq)).toEqual(reference(links, fromSeq));
          } else {
            // The reference threw on such an event; the walk reports it where the hash check is.
            const bad = links.find((l) => l.event && Number.isNaN(l.event.occurredAt.getTime())) as ChainLink;
            const fault = walked(links);
            expect(fault).not.toBeNull();
            expect((fault as ChainFault).seq).toBeLessThanOrEqual(bad.seq);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('names an event whose time is not a time at its seq', () => {
    const events = Array.from({ length: 5 }, (_, n) => written(n, base + n * 1000));
    const links = sealed(events);
    links[2] = { ...links[2], event: { ...(events[2] as WalkedEvent), occurredAt: new Date(Number.NaN) } };
    expect(walked(links)).toEqual({
      seq: 3,
      reason: 'hash does not match the event: the event or its hash was altered',
    });
  });
});
