import { domainToUnicode } from 'node:url';
import { Transform } from 'class-transformer';
import { registerDecorator, ValidationOptions } from 'class-validator';
import ipaddr from 'ipaddr.js';
import { allowedImageUrlPorts } from './image-url-ports';

/*
 * The upstream downloads `image_url` itself. A URL naming a private, loopback,
 * link-local or otherwise non-public address would make that fetch (or any
 * proxy in between) reach into networks it should not (SSRF). So:
 *
 * - The URL is parsed once (WHATWG, as browsers do), every check runs on the
 *   parsed, normalised host and port, and the URL forwarded is exactly the
 *   href that was checked (IsPublicImageUrl replaces the value with it). A raw
 *   string another parser could read differently (backslashes, whitespace or
 *   control characters the WHATWG parser drops, `@` in the authority, a
 *   scheme not followed by `//`) is refused rather than repaired.
 * - https only, no credentials, and only the configured ports (443 by default).
 * - IP literals (in any form the parser accepts: decimal, octal, hex, short
 *   IPv4; IPv6) must be public unicast: special-purpose IPv4 blocks are refused,
 *   IPv6 must be global unicast (2000::/3) outside special blocks, and IPv6
 *   forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo)
 *   are refused whatever they carry: a public IPv4 host can be named as IPv4.
 * - Names must be fully qualified (two labels or more) after normalisation
 *   (case, IDNA, full-width dots, one trailing dot) and must not end in a
 *   suffix that only exists on private networks.
 *
 * Names are NOT resolved: idgate never fetches the image (the upstream does,
 * on its own network), so a public name that resolves to a private address
 * (or DNS rebinding) can only be stopped by the fetcher. This is the
 * syntactic half of the defence.
 */

export type ImageUrlCheck = { ok: true; href: string } | { ok: false; problem: string };

/** Whether `raw` holds characters another parser may read differently from WHATWG's (which drops or rewrites them). */
function hasAmbiguousCharacters(raw: string): boolean {
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    // C0 controls (tab, CR, LF, NUL, …), space, DEL, backslash.
    if (code <= 0x20 || code === 0x7f || code === 0x5c) return true;
  }
  return false;
}

const HTTPS_AUTHORITY = /^https:\/\/([^/?#]*)/i;

/** Suffixes of names that exist only inside private networks (a name equal to one is refused too). */
const INTERNAL_SUFFIXES = [
  'localhost',
  'localdomain',
  'local',
  'internal',
  'intranet',
  'private',
  'lan',
  'home',
  'corp',
  'arpa', // includes home.arpa and reverse-DNS names
  'svc', // Kubernetes services (<svc>.<ns>.svc)
  'cluster.local',
  'consul',
  'metadata',
  'metadata.goog',
  'instance-data',
  'kubernetes.default',
];

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** IPv4 blocks that are not public unicast (IANA special-purpose registry, multicast, reserved). */
const IPV4_BLOCKS: ReadonlyArray<[string, string]> = [
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (carrier-grade NAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignment'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4 relay'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
];

/**
 * IPv6 blocks that are not public unicast, checked in order (first match names
 * it); outside 2000::/3 anything left is reserved. `carriesIPv4`: forms that
 * carry an IPv4 address, refused whatever they carry.
 */
const IPV6_BLOCKS: ReadonlyArray<[string, string, 'carriesIPv4'?]> = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'IPv4-compatible', 'carriesIPv4'],
  ['::ffff:0:0/96', 'IPv4-mapped', 'carriesIPv4'],
  ['::ffff:0:0:0/96', 'IPv4-translated', 'carriesIPv4'],
  ['64:ff9b::/96', 'NAT64', 'carriesIPv4'],
  ['64:ff9b:1::/48', 'NAT64', 'carriesIPv4'],
  ['2002::/16', '6to4', 'carriesIPv4'],
  ['2001::/32', 'Teredo', 'carriesIPv4'],
  ['100::/64', 'discard-only'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
  ['2001::/23', 'IETF protocol assignment'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
];
const IPV6_GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];
type Block = { cidr: Cidr; label: string; carriesIPv4: boolean };
const compile = (table: ReadonlyArray<[string, string, 'carriesIPv4'?]>): Block[] =>
  table.map(([cidr, label, flag]) => ({ cidr: ipaddr.parseCIDR(cidr), label, carriesIPv4: flag === 'carriesIPv4' }));
const IPV4_RANGES = compile(IPV4_BLOCKS);
const IPV6_RANGES = compile(IPV6_BLOCKS);

function blockOf(address: ipaddr.IPv4 | ipaddr.IPv6, blocks: Block[]): Block | null {
  return blocks.find((b) => b.cidr[0].kind() === address.kind() && address.match(b.cidr)) ?? null;
}

const notPublic = (label: string) => `must name a public address (this one is ${label})`;

/** Why an IP literal host (as the WHATWG parser wrote it) is refused, or null when it is public unicast. */
function addressProblem(host: string): string | null {
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1);
    if (!ipaddr.IPv6.isValid(inner)) return 'must name a valid host';
    const address = ipaddr.IPv6.parse(inner);
    const block = blockOf(address, IPV6_RANGES);
    if (block?.carriesIPv4) return `must not name an IPv6 address that carries an IPv4 one (${block.label})`;
    if (block) return notPublic(block.label);
    return address.match(IPV6_GLOBAL_UNICAST) ? null : notPublic('reserved');
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(host)) return 'must name a valid host';
  const block = blockOf(ipaddr.IPv4.parse(host), IPV4_RANGES);
  return block ? notPublic(block.label) : null;
}

function isInternalName(name: string): boolean {
  return INTERNAL_SUFFIXES.some((suffix) => name === suffix || name.endsWith(`.${suffix}`));
}

/** Why a domain name host is refused, or null; `name` is the parser's ASCII form without its trailing dot. */
function nameProblem(name: string): string | null {
  const labels = name.split('.');
  if (name.length > 253 || !labels.every((label) => LABEL.test(label))) return 'must name a valid host';
  if (labels.length < 2) return 'must name a public host (a fully qualified name)';
  // The Unicode form too: a punycode label may spell an internal name (xn--localhost- is "localhost").
  if (isInternalName(name) || isInternalName(domainToUnicode(name).toLowerCase())) {
    return 'must name a public host, not one of a private network';
  }
  return null;
}

/**
 * Checks an image URL and returns the normalised href that was checked (and
 * is what must be forwarded), or why it is refused. `ports`: the allowed ports.
 */
export function checkImageUrl(raw: string, ports: readonly number[] = allowedImageUrlPorts()): ImageUrlCheck {
  const refuse = (problem: string): ImageUrlCheck => ({ ok: false, problem });
  if (hasAmbiguousCharacters(raw)) return refuse('must not contain spaces, control characters or backslashes');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse('must be an absolute https URL');
  }
  if (url.protocol !== 'https:') return refuse('must use https');
  const authority = HTTPS_AUTHORITY.exec(raw);
  if (!authority || authority[1] === '') return refuse('must be an absolute https URL');
  if (authority[1].includes('@') || url.username || url.password) return refuse('must not carry credentials');
  const port = url.port === '' ? 443 : Number(url.port);
  if (!ports.includes(port)) return refuse(`must use port ${ports.join(' or ')}`);

  let host = url.hostname;
  if (host.startsWith('[') || /^[\d.]+$/.test(host)) {
    // The WHATWG parser has already turned every IPv4 spelling into dotted decimal (and dropped a trailing dot).
    const problem = addressProblem(host);
    if (problem) return refuse(problem);
  } else {
    if (host.endsWith('.')) host = host.slice(0, -1);
    const problem = nameProblem(host);
    if (problem) return refuse(problem);
    url.hostname = host;
  }
  // The fragment never reaches a server; drop it so nothing downstream has to agree on it.
  url.hash = '';
  const href = url.href;
  // What is forwarded must read back as what was checked.
  const again = new URL(href);
  if (again.hostname !== host || again.port !== url.port || again.protocol !== 'https:') {
    return refuse('must be an absolute https URL');
  }
  return { ok: true, href };
}

/** Why this image URL is refused, or null when it is acceptable. */
export function imageUrlProblem(value: string, ports?: readonly number[]): string | null {
  const check = checkImageUrl(value, ports);
  return check.ok ? null : check.problem;
}

/**
 * `image_url`: refuses URLs that are not public https image URLs and replaces an
 * accepted value by the normalised href that was checked (class-transformer
 * runs before validation), so the service forwards exactly what was checked.
 * The validator also refuses a value that is not already that href, in case
 * the value ever reaches it untransformed.
 */
export function IsPublicImageUrl(options?: ValidationOptions): PropertyDecorator {
  const normalise = Transform(
    ({ value }: { value: unknown }) => {
      if (typeof value !== 'string') return value;
      const check = checkImageUrl(value);
      return check.ok ? check.href : value;
    },
    { toClassOnly: true },
  );
  return (target: object, propertyName: string | symbol) => {
    normalise(target, propertyName);
    registerDecorator({
      name: 'isPublicImageUrl',
      target: target.constructor,
      propertyName: String(propertyName),
      options,
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string') return false;
          const check = checkImageUrl(value);
          return check.ok && check.href === value;
        },
        defaultMessage: (args) => {
          if (typeof args?.value !== 'string') return 'must be a string';
          const check = checkImageUrl(args.value);
          return check.ok ? 'must be given in its normalised form' : check.problem;
        },
      },
    });
  };
}
