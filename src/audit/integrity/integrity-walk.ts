import { ChainFault, ChainWalker } from '../chain-walker';
import {
  AuthenticityRules,
  idTimeProblem,
  macMatches,
  macProblem,
  orderProblem,
  WalkedEvent,
} from '../event-authenticity';
import type { ChainLink } from './chain-rows';
import { canonicalPair, linkHash, macValid } from './integrity-canonical';

/** What the event rules carry from one entry to the next (event-authenticity.ts, AuthenticityWalk). */
export interface AuthenticityState {
  /** The latest time sealed so far, and its seq. */
  tail: { seq: number; at: Date } | null;
  /** The first seq whose event has a valid MAC. */
  firstMacSeq: number | null;
}

/** The state after the event at `seq` alone (a ranged walk's start): AuthenticityWalk.after. */
export function stateAfter(rules: AuthenticityRules, seq: number, e: WalkedEvent | null): AuthenticityState {
  if (!e || Number.isNaN(e.occurredAt.getTime())) return { tail: null, firstMacSeq: null };
  return { tail: { seq, at: e.occurredAt }, firstMacSeq: macMatches(rules.macKey, e, e.mac) ? seq : null };
}

/**
 * One walk over chain links in seq order, in constant memory: the chain's rules (ChainWalker:
 * contiguity, linkage, each hash recomputed) and each event's (event-authenticity.ts: its MAC,
 * its id's time, its time against the latest sealed before it). Stops being useful at the
 * first fault, which it returns, as the earlier walk did.
 *
 * Each event is put in canonical form once for both its hash and its MAC (integrity-canonical.ts);
 * when either does not match, the reference functions decide, so every reported fault, and its
 * wording, is theirs.
 */
export class IntegrityWalk {
  private readonly chain: ChainWalker;

  constructor(
    firstSeq: number,
    anchorPrevHash: string | null,
    private readonly rules: AuthenticityRules,
    private readonly state: AuthenticityState = { tail: null, firstMacSeq: null },
  ) {
    this.chain = new ChainWalker(firstSeq, anchorPrevHash);
  }

  get checked(): number {
    return this.chain.checked;
  }

  /** The last seq accepted, or null. */
  get lastSeq(): number | null {
    return this.chain.lastSeq;
  }

  accept(link: ChainLink): ChainFault | null {
    const e = link.event;
    const timed = e !== null && !Number.isNaN(e.occurredAt.getTime());
    const canonical = timed ? canonicalPair(e) : null;
    const chainFault = this.chain.accept(link, canonical ? linkHash(link.prevHash, canonical.event) : undefined);
    if (chainFault) return chainFault;
    if (!e || !canonical)
      return { seq: link.seq, reason: 'hash does not match the event: the event or its hash was altered' };

    // What the chain cannot tell: who wrote the event, and whether its time fits its place.
    const state = this.state;
    const mac = macValid(this.rules.macKey, canonical.mac, e.mac)
      ? { valid: true, problem: null }
      : macProblem(this.rules, e, state.firstMacSeq);
    const problems: string[] = [];
    if (mac.problem) problems.push(mac.problem);
    if (mac.valid) {
      const p = idTimeProblem(e, this.rules.toleranceMs);
      if (p) problems.push(p);
    }
    const order = orderProblem(state.tail, e.occurredAt, this.rules.toleranceMs);
    if (order) problems.push(order);
    if (mac.valid) state.firstMacSeq ??= link.seq;
    if (!state.tail || e.occurredAt.getTime() > state.tail.at.getTime())
      state.tail = { seq: link.seq, at: e.occurredAt };
    return problems.length ? { seq: link.seq, reason: `event ${e.id} ${problems.join('; and it ')}` } : null;
  }
}
