import ipaddr from 'ipaddr.js';
import { registerDecorator, ValidationOptions } from 'class-validator';

/*
 * The upstream downloads `image_url` itself. A URL naming a private, loopback or
 * link-local address would make that fetch (or any proxy in between) reach into
 * networks it should not (SSRF), so such URLs are refused here, and only https
 * is accepted. Names are not resolved (idgate never fetches the image; the
 * upstream resolves them on its side), but names that only exist on private
 * networks are refused too.
 */

const PRIVATE_NAME = /(^|\.)(localhost|local|internal|intranet|lan|home\.arpa|corp)$/i;

/** Why this image URL is refused, or null when it is acceptable. */
export function imageUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute https URL';
  }
  if (url.protocol !== 'https:') return 'must use https';
  if (url.username || url.password) return 'must not carry credentials';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') return 'must name a host';
  if (ipaddr.isValid(host)) {
    let address = ipaddr.parse(host);
    if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
      address = (address as ipaddr.IPv6).toIPv4Address();
    }
    const range = address.range();
    return range === 'unicast' ? null : `must not name a ${range} address`;
  }
  if (!host.includes('.') || PRIVATE_NAME.test(host)) return 'must name a public host';
  return null;
}

/** class-validator decorator for `image_url`. */
export function IsPublicImageUrl(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'isPublicImageUrl',
      target: target.constructor,
      propertyName: String(propertyName),
      options,
      validator: {
        validate: (value: unknown) => typeof value === 'string' && imageUrlProblem(value) === null,
        defaultMessage: (args) =>
          typeof args?.value === 'string' ? (imageUrlProblem(args.value) ?? 'is invalid') : 'must be a string',
      },
    });
}
