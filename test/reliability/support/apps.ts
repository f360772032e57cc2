import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { AuditService } from '../../../src/audit/audit.service';
import { VerificationSweeper } from '../../../src/verification/verification-sweeper.service';
import type { TestApp } from '../../support/test-app';
import { KNOWN, UNKNOWN_VALID_ID } from '../../support/verification-app';

/** Puts an in-process app on a loopback port and returns its base URL. */
export async function listen(t: TestApp): Promise<string> {
  await t.app.listen(0, '127.0.0.1');
  const address = (t.app.getHttpServer() as Server).address() as AddressInfo;
  return `http://127.0.0.1:${address.port}`;
}

export const auditOf = (t: TestApp) => t.app.get(AuditService);
export const sweeperOf = (t: TestApp) => t.app.get(VerificationSweeper);

/** Secrets several instances must share to read each other's data and extend one chain. */
export function sharedSecrets() {
  return {
    pii: { keys: [{ id: 'k1', key: randomBytes(32) }], hmacKey: randomBytes(32) },
    audit: { signingKeySeed: randomBytes(32) },
  };
}

/** Deterministic PRNG (mulberry32) so a failing mix can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A verification body of every kind the flow knows: a known identity (charged "0"),
 * a name that does not match the number (charged "-1"), a valid number not in the
 * register ("-5"), a number failing the check character (local "-2"), and an image URL.
 */
export function bodyOfKind(i: number, reference: string): Record<string, unknown> {
  const person = KNOWN[i % KNOWN.length];
  const other = KNOWN[(i + 7) % KNOWN.length];
  switch (i % 10) {
    case 6:
      return { name: other.name === person.name ? '王小明' : other.name, id_card: person.id_card, reference };
    case 7:
      return { name: person.name, id_card: UNKNOWN_VALID_ID, reference };
    case 8: {
      // Same number with a wrong check character: refused locally, never sent upstream.
      const last = person.id_card.slice(-1) === '1' ? '2' : '1';
      return { name: person.name, id_card: person.id_card.slice(0, 17) + last, reference };
    }
    case 9:
      return { image_url: `https://images.example.com/idcard/${person.id_card}.jpg`, reference };
    default:
      return { name: person.name, id_card: person.id_card, reference };
  }
}
