import dns, { type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Destinations a webhook must not reach unless WEBHOOK_ALLOW_PRIVATE_URLS: private, loopback, link-local, … */
// Two lists: a BlockList matches IPv4 addresses against IPv6 rules too (as IPv4-mapped), and ::ffff:0:0/96 below
// would then catch every IPv4 address.
const PRIVATE_V4 = new BlockList();
const PRIVATE_V6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE_V4.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback and IPv4-compatible
  ['::ffff:0:0', 96], // IPv4-mapped: an IPv4 address in disguise
  ['64:ff9b:1::', 48], // local-use NAT64
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  PRIVATE_V6.addSubnet(net, prefix, 'ipv6');
}

/** True for an IP address webhooks must not reach by default (RFC 1918, loopback, link-local, CGNAT, ULA, …). */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return family === 4 ? PRIVATE_V4.check(address, 'ipv4') : PRIVATE_V6.check(address, 'ipv6');
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/**
 * Why `raw` cannot be a webhook URL, or undefined when it can. Names that resolve to a private address are refused
 * too (when they resolve now: the sender checks again at every connection, so DNS cannot be used to slip past).
 */
export async function findUrlProblem(
  raw: string,
  options: { allowPrivate: boolean },
): Promise<string | undefined> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  if (url.username || url.password) return 'must not carry a user name or password';
  if (raw.length > 2000) return 'must be at most 2000 characters';
  if (options.allowPrivate) return undefined;

  const host = hostOf(url).toLowerCase();
  if (isIP(host)) {
    return isPrivateAddress(host) ? 'must not point to a private, loopback or link-local address' : undefined;
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return 'must not point to this machine';
  const addresses = await resolve(host);
  return addresses.some((a) => isPrivateAddress(a.address))
    ? `must not point to a private address (${host} resolves to one)`
    : undefined;
}

function resolve(host: string, timeoutMs = 2000): Promise<LookupAddress[]> {
  return new Promise((done) => {
    const timer = setTimeout(() => done([]), timeoutMs);
    dns.lookup(host, { all: true }, (err, addresses) => {
      clearTimeout(timer);
      done(err ? [] : addresses);
    });
  });
}

/** An error for a connection the sender refused to open. */
export class PrivateAddressError extends Error {
  readonly code = 'EPRIVATEADDRESS';
}

/** Throws when `url` names a private IP literal (sockets to literals skip the lookup below). */
export function assertPublicLiteral(url: URL): void {
  const host = hostOf(url);
  if (isIP(host) && isPrivateAddress(host)) {
    throw new PrivateAddressError(`${host} is a private address and WEBHOOK_ALLOW_PRIVATE_URLS is off`);
  }
}

/** A socket `lookup` that refuses names resolving to a private address, checked on every new connection. */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) {
      const refused = new PrivateAddressError(
        `${hostname} resolves to the private address ${bad.address} and WEBHOOK_ALLOW_PRIVATE_URLS is off`,
      );
      return callback(refused, '', 0);
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    return callback(null, first.address, first.family);
  });
};
