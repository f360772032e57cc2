import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { ConfigError } from '../config/environment';

/*
 * Who is calling, by network address. Behind the TLS proxy the README recommends, the
 * socket is the proxy; the client is in X-Forwarded-For, which anyone can write. So the
 * header is believed only from proxies named in TRUST_PROXY (Express's `trust proxy`,
 * which walks the chain from the right and stops at the first address it does not trust).
 */

/** Named ranges Express understands besides addresses and CIDRs. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY as Express's `trust proxy` value: `false` (trust no proxy: the socket is
 * the client) for an empty list, else the list. Never `true`, which would believe any
 * X-Forwarded-For from anyone.
 */
export function trustProxySetting(list: readonly string[]): false | string[] {
  const entries = list.map((e) => e.trim()).filter((e) => e !== '');
  for (const entry of entries) {
    if (NAMED_RANGES.has(entry)) continue;
    const valid = entry.includes('/') ? isCidr(entry) : ipaddr.isValid(entry) && isIP(entry) !== 0;
    if (!valid) {
      throw new ConfigError('TRUST_PROXY', 'must be "loopback" or a comma-separated list of addresses or CIDR ranges');
    }
  }
  return entries.length === 0 ? false : entries;
}

function isCidr(entry: string): boolean {
  try {
    ipaddr.parseCIDR(entry);
    return true;
  } catch {
    return false;
  }
}

/** Shows IPv4 clients as IPv4 (Node reports them IPv4-mapped on a dual-stack socket). */
export function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

export type ClientAddressSource = { ip?: unknown; socket?: { remoteAddress?: string | undefined } | null };

/**
 * The client's address: Express's `req.ip` (the socket, or the X-Forwarded-For entry the
 * trusted proxies vouch for). A forwarded value that is not an address (a client that is
 * itself trusted may send anything) is not believed: the socket's address stands instead.
 */
export function clientAddress(req: ClientAddressSource): string | null {
  const forwarded = typeof req.ip === 'string' ? req.ip.trim() : '';
  if (forwarded && isIP(forwarded)) return normaliseAddress(forwarded);
  const socket = req.socket?.remoteAddress;
  return socket && isIP(socket) ? normaliseAddress(socket) : null;
}

/**
 * The unit abuse limits count by. IPv4: the address. IPv6: its /64, because one host is
 * usually given a whole /64 and could otherwise take a fresh address for every request.
 */
export function limiterSource(address: string | null): string {
  if (!address) return 'unknown';
  const normalised = normaliseAddress(address);
  if (isIP(normalised) !== 6) return normalised;
  try {
    const parts = ipaddr.IPv6.parse(normalised.split('%')[0]).parts;
    return `${parts
      .slice(0, 4)
      .map((p) => p.toString(16))
      .join(':')}::/64`;
  } catch {
    return normalised;
  }
}
