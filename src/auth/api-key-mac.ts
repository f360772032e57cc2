import { createHmac, timingSafeEqual } from 'node:crypto';

/*
 * API key rows carry a MAC under a key the database never sees (AUDIT_MAC_KEY), over what
 * decides what a key may do: its id, the hash it is found by, its role, its client and the
 * key that made it. A database superuser who inserts a row (a compliance key for a secret
 * of their choosing) or changes one (finance → compliance, another client) cannot make a
 * valid MAC, and idgate refuses such a key. Revocation and last use are not covered: a
 * revoked_at cleared by hand is caught at lookup by the key's `api_key.revoked` event on the
 * audit trail (api-keys.service.ts), whose removal the chain reports.
 */

export interface MacCoveredKey {
  id: string;
  keyHash: string;
  role: string;
  clientId: string | null;
  createdByKeyId: string | null;
}

export function apiKeyMac(macKey: Buffer, row: MacCoveredKey): string {
  const text = ['idgate-api-key/v1', row.id, row.keyHash, row.role, row.clientId ?? '', row.createdByKeyId ?? ''].join(
    '\n',
  );
  return createHmac('sha256', macKey).update(text, 'utf8').digest('hex');
}

export function apiKeyMacValid(macKey: Buffer, row: MacCoveredKey, mac: string | null): boolean {
  if (mac === null || !/^[0-9a-f]{64}$/.test(mac)) return false;
  return timingSafeEqual(Buffer.from(apiKeyMac(macKey, row), 'hex'), Buffer.from(mac, 'hex'));
}
