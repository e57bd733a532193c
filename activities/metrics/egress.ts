/**
 * Where the web metric provider may send requests (the worker's egress policy), checked on the
 * addresses a host name resolves to, at connect time (so a DNS answer cannot change between the
 * check and the connection).
 *
 * - Always refused unless allowed by name: link-local (169.254.0.0/16, fe80::/10, which holds the
 *   cloud metadata services 169.254.169.254 and fd00:ec2::254's neighbours), the other metadata
 *   addresses (fd00:ec2::254, 100.100.100.200), loopback (127.0.0.0/8, ::1: the worker's own pod,
 *   its sidecars and admin ports) and the unspecified addresses (0.0.0.0/8, ::).
 * - GLIDEPATH_WEB_ALLOW (comma-separated host names and CIDRs, e.g. `metrics.internal,10.0.0.0/8,127.0.0.1/32`):
 *   when set, only destinations it lists are reached; a listed CIDR or host also lifts the default
 *   refusal above (list `127.0.0.0/8` to allow loopback). Unset: everything but the refused ranges.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors.ts';

export const WEB_ALLOW_ENV = 'GLIDEPATH_WEB_ALLOW';

export interface EgressPolicy {
  /** Host names and CIDRs; undefined: any destination outside the refused ranges. */
  allow?: string[] | undefined;
}

/** Thrown (through the connection's lookup) when a destination is refused. */
export class EgressRefused extends Error {
  override name = 'EgressRefused';
}

const REFUSED = new BlockList();
REFUSED.addSubnet('169.254.0.0', 16, 'ipv4');
REFUSED.addSubnet('127.0.0.0', 8, 'ipv4');
REFUSED.addSubnet('0.0.0.0', 8, 'ipv4');
REFUSED.addAddress('100.100.100.200', 'ipv4');
REFUSED.addSubnet('fe80::', 10, 'ipv6');
REFUSED.addAddress('::1', 'ipv6');
REFUSED.addAddress('::', 'ipv6');
REFUSED.addAddress('fd00:ec2::254', 'ipv6');

/** The policy from the worker's environment; throws on an entry that is neither a host name nor a CIDR. */
export function egressPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): EgressPolicy {
  const raw = env[WEB_ALLOW_ENV];
  if (raw === undefined || raw.trim() === '') return {};
  const allow = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of allow) parseEntry(entry);
  return { allow };
}

function parseEntry(entry: string): { host: string } | { net: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address, bits] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0) {
    if (bits !== undefined || !/^[a-zA-Z0-9.-]+$/.test(entry)) throw new Error(`${WEB_ALLOW_ENV}: "${entry}" is neither a host name nor a CIDR such as 10.0.0.0/8`);
    return { host: entry.toLowerCase().replace(/\.$/, '') };
  }
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`${WEB_ALLOW_ENV}: "${entry}" has an invalid prefix length`);
  return { net: address as string, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

/** IPv4-mapped IPv6 (::ffff:169.254.169.254) is judged as the IPv4 address it carries. */
function unmapped(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return { address: m[1] as string, family: 'ipv4' };
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

export class Egress {
  private readonly hosts = new Set<string>();
  private readonly nets = new BlockList();
  private readonly restricted: boolean;

  constructor(policy: EgressPolicy = {}) {
    this.restricted = policy.allow !== undefined;
    for (const entry of policy.allow ?? []) {
      const e = parseEntry(entry);
      if ('host' in e) this.hosts.add(e.host);
      else this.nets.addSubnet(e.net, e.prefix, e.family);
    }
  }

  /** Why `address` (reached as `host`) is refused; undefined when allowed. */
  refusal(host: string, address: string): string | undefined {
    const name = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
    const a = unmapped(address);
    const listed = this.hosts.has(name) || this.nets.check(a.address, a.family);
    if (listed) return undefined;
    if (REFUSED.check(a.address, a.family)) {
      return `${host} is ${address}, a loopback, link-local or metadata address: refused by the worker's egress policy (allow it in ${WEB_ALLOW_ENV})`;
    }
    if (this.restricted) return `${host} (${address}) is not in the worker's ${WEB_ALLOW_ENV}`;
    return undefined;
  }

  /** Throws a non-retryable failure when a literal-IP host is refused (names are checked at connect). */
  checkLiteral(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) === 0) return;
    const why = this.refusal(url.hostname, host);
    if (why) throw ApplicationFailure.nonRetryable(`web url: ${why}`, ErrorType.Forbidden);
  }

  /** A `lookup` for http(s) requests: resolves, and fails when any resolved address is refused. */
  readonly lookup = (hostname: string, options: LookupOneOptions | LookupAllOptions | number, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void): void => {
    const opts = typeof options === 'number' ? { family: options } : options;
    dnsLookup(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      for (const a of addresses) {
        const why = this.refusal(hostname, a.address);
        if (why) return callback(Object.assign(new EgressRefused(why), { code: 'EGRESS_REFUSED' }), '', 0);
      }
      if ((opts as LookupAllOptions).all) return callback(null, addresses);
      const first = addresses[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}
