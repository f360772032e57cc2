import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AuditEventRow } from './audit-event-row';
import { canonicalJson } from './canonical';
import type { ChainFault } from './chain-walker';
import { uuidV7Time } from '../common/uuid-v7';

// The id source moved to common/ (verifications use it too); re-exported for the audit's callers.
export { uuidV7Time, UuidV7Source } from '../common/uuid-v7';

/*
 * What the hash chain cannot tell (docs/audit.md, "Who wrote an event, and when"):
 *
 *   mac = lowercase hex HMAC-SHA256( AUDIT_MAC_KEY, UTF-8( "idgate-audit-event-mac/v1" + "\n" +
 *           canonical JSON of { action, actor: { id, role, type }, details, id, id_card_hmac,
 *                               ip, outcome, request_id, target: { id, type } } ) )
 *
 * with the chain's canonical JSON rules (canonical.ts): the chained fields minus occurred_at, which
 * the database stamps at insert (as it does txid), so idgate cannot know it when it computes the
 * MAC. The database never sees the key: a row inserted by anyone else carries no valid MAC.
 *
 * Time order: the chain is sealed in (txid, id) order, so a later seq may hold an earlier time
 * only by as much as one of idgate's own transactions lasts. An event earlier than the latest
 * time sealed before it by more than the tolerance was back-dated (or slipped in late).
 */

export const MAC_LABEL = 'idgate-audit-event-mac/v1';

/**
 * Events idgate wrote before MACs existed carry none. The cut-over is fixed in code, not kept in
 * the database, so no database user can move it: the moment the migration that added the column
 * (20261130200315_audit_evidence) was made. No idgate could write a MAC before it; an installation
 * that still ran an older idgate after it has MAC-less events the check reports (docs/audit.md).
 */
export const MAC_REQUIRED_FROM = new Date('2026-11-30T20:03:15.000Z');

/** What the MAC covers: every field idgate sets before the insert. */
export type MacFields = AuditEventRow & { id: string };

/** The text the MAC is computed over. */
export function macCanonical(e: MacFields): string {
  const fields = canonicalJson({
    action: e.action,
    actor: { id: e.actorId, role: e.actorRole, type: e.actorType },
    details: e.details,
    id: e.id,
    id_card_hmac: e.idCardHmac,
    ip: e.ip,
    outcome: e.outcome,
    request_id: e.requestId,
    target: { id: e.targetId, type: e.targetType },
  });
  return `${MAC_LABEL}\n${fields}`;
}

export function eventMac(key: Buffer, e: MacFields): string {
  return createHmac('sha256', key).update(macCanonical(e), 'utf8').digest('hex');
}

/** True when `mac` is the MAC of these fields under `key`. */
export function macMatches(key: Buffer, e: MacFields, mac: string | null): boolean {
  if (mac === null || !/^[0-9a-f]{64}$/.test(mac)) return false;
  return timingSafeEqual(Buffer.from(eventMac(key, e), 'hex'), Buffer.from(mac, 'hex'));
}

export interface AuthenticityRules {
  macKey: Buffer;
  /** How much earlier than the sealed tail (or than its id's time) an event may be. */
  toleranceMs: number;
  /** Events from this time on must carry a MAC. */
  macRequiredFrom: Date;
}

/** A sealed event as the walk sees it. */
export type WalkedEvent = MacFields & { occurredAt: Date; mac: string | null };

/** "12 min 3 s", "4.2 s": durations in reasons people read. */
export function describeDuration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  const total = Math.round(ms / 1000);
  const seconds = total % 60;
  return seconds ? `${Math.floor(total / 60)} min ${seconds} s` : `${total / 60} min`;
}

/**
 * The MAC rule. A present MAC must match. A missing one is allowed only for an event written
 * before MACs existed: occurred_at before the cut-over (the database stamps it, so an INSERT
 * cannot back-date it; a superuser who bypasses the trigger is caught by the order rule) and
 * no event carrying a valid MAC sealed before it. Returns a problem, or null.
 */
export function macProblem(
  rules: AuthenticityRules,
  e: WalkedEvent,
  firstMacSeq: number | null,
): { valid: boolean; problem: string | null } {
  if (e.mac !== null) {
    if (macMatches(rules.macKey, e, e.mac)) return { valid: true, problem: null };
    return {
      valid: false,
      problem:
        'was not written by idgate as it stands: its MAC does not match its fields (forged, copied from another event, or the event was altered and re-hashed)',
    };
  }
  if (e.occurredAt.getTime() >= rules.macRequiredFrom.getTime()) {
    return {
      valid: false,
      problem: `was not written by idgate: it carries no MAC, which every event idgate writes has carried since ${rules.macRequiredFrom.toISOString()}`,
    };
  }
  if (firstMacSeq !== null) {
    return {
      valid: false,
      problem: `was not written by idgate: it carries no MAC, yet it was sealed after seq ${firstMacSeq}, which does (events without one all come before)`,
    };
  }
  return { valid: false, problem: null };
}

/**
 * An id idgate made (its MAC is valid) carries the time it was made: the database's occurred_at
 * must lie within the tolerance of it. This binds occurred_at, which the MAC cannot cover.
 */
export function idTimeProblem(e: WalkedEvent, toleranceMs: number): string | null {
  const made = uuidV7Time(e.id);
  if (made === null) return null;
  const apart = Math.abs(e.occurredAt.getTime() - made);
  if (apart <= toleranceMs) return null;
  return `has a time (${e.occurredAt.toISOString()}) ${describeDuration(apart)} away from when idgate made its id (${new Date(made).toISOString()}): its time was altered, or the clocks of idgate and the database differ by more than the ${describeDuration(toleranceMs)} tolerance`;
}

/** The time-order rule: `tail` is the latest time sealed before this event, and its seq. */
export function orderProblem(
  tail: { seq: number; at: Date } | null,
  occurredAt: Date,
  toleranceMs: number,
): string | null {
  if (!tail) return null;
  const behind = tail.at.getTime() - occurredAt.getTime();
  if (behind <= toleranceMs) return null;
  return `occurred at ${occurredAt.toISOString()}, ${describeDuration(behind)} before seq ${tail.seq} (${tail.at.toISOString()}) which was sealed ahead of it: more than the ${describeDuration(toleranceMs)} tolerance, so it was back-dated, or a transaction sealed ahead of it ran longer than the tolerance`;
}

/**
 * One walk over sealed events in seq order: applies the three rules and keeps what they need
 * (the latest time sealed so far, the first seq with a valid MAC). A walk that starts past
 * seq 1 knows only what `after` tells it of the event before its start (its time, and whether
 * it has a valid MAC); without that, times are compared from its first entry on.
 */
export class AuthenticityWalk {
  private tail: { seq: number; at: Date } | null = null;
  private firstMacSeq: number | null = null;

  constructor(private readonly rules: AuthenticityRules) {}

  /** Starts the walk after the event at `seq`, already checked (by an earlier walk): its state, no verdict. */
  after(seq: number, e: WalkedEvent): this {
    this.note(seq, e, macMatches(this.rules.macKey, e, e.mac));
    return this;
  }

  check(seq: number, e: WalkedEvent): ChainFault | null {
    const mac = macProblem(this.rules, e, this.firstMacSeq);
    const problems = [
      mac.problem,
      mac.valid ? idTimeProblem(e, this.rules.toleranceMs) : null,
      orderProblem(this.tail, e.occurredAt, this.rules.toleranceMs),
    ].filter((p): p is string => p !== null);
    this.note(seq, e, mac.valid);
    return problems.length ? { seq, reason: `event ${e.id} ${problems.join('; and it ')}` } : null;
  }

  private note(seq: number, e: WalkedEvent, macValid: boolean): void {
    if (macValid) this.firstMacSeq ??= seq;
    if (!this.tail || e.occurredAt.getTime() > this.tail.at.getTime()) this.tail = { seq, at: e.occurredAt };
  }
}
