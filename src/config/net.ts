// Address, CIDR, port and name parsing shared by the schema and the model.
// ipaddr.js does the parsing; the only extra strictness here is refusing the
// historic IPv4 shorthands ("127.1", "0x7f.0.0.1") that ipaddr.js, like
// inet_aton, would accept but that no user means in a firewall rule.
import ipaddr from "ipaddr.js";

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address, host bits cleared, in canonical text form. */
  address: string;
  prefix: number;
  /** "203.0.113.0/24", "2001:db8:10::/48" */
  text: string;
}

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (text.includes(":")) {
    if (!ipaddr.IPv6.isValid(text) || text.includes("%")) return undefined;
    return ipaddr.IPv6.parse(text);
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) return undefined;
  return ipaddr.IPv4.parse(text);
}

export function parseIp(text: string): { family: Family; address: string } | undefined {
  const addr = parseAddress(text);
  if (!addr) return undefined;
  return { family: addr.kind() === "ipv4" ? 4 : 6, address: addr.toString() };
}

/** Parse "A.B.C.D", "A.B.C.D/N", "X::Y" or "X::/N" into a normalised network. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const addr = parseAddress(addrText);
  if (!addr) return undefined;
  const family: Family = addr.kind() === "ipv4" ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > max) return undefined;
  }
  const network =
    family === 4
      ? ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${prefix}`);
  const address = network.toString();
  return { family, address, prefix, text: `${address}/${prefix}` };
}

/**
 * The network a CIDR written with host bits set stands for ("10.0.0.1/8" →
 * 10.0.0.0/8), or undefined when the text is not such a CIDR. parseCidr
 * clears those bits silently, so the rules cover far more (or other) hosts
 * than the text suggests to someone who meant one address.
 */
export function hostBitsCleared(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash === -1) return undefined;
  const cidr = parseCidr(text);
  const written = parseIp(text.slice(0, slash));
  return cidr && written && written.address !== cidr.address ? cidr : undefined;
}

/** 0.0.0.0/0 (or any IPv4 address /0): every IPv4 address and no IPv6 one. */
export function isIpv4CatchAll(text: string): boolean {
  const c = parseCidr(text);
  return c !== undefined && c.family === 4 && c.prefix === 0;
}

/** ::/0 (or any IPv6 address /0). */
export function isIpv6CatchAll(text: string): boolean {
  const c = parseCidr(text);
  return c !== undefined && c.family === 6 && c.prefix === 0;
}

export interface PortRange {
  low: number;
  high: number;
}

/** "49152-61000" or "8080"; undefined when malformed (bounds are the caller's rule). */
export function parsePortRange(text: string): PortRange | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const low = Number(m[1]);
  const high = m[2] === undefined ? low : Number(m[2]);
  return { low, high };
}

/**
 * Linux IFNAMSIZ is 16 including the NUL; dev_valid_name() refuses '/', ':',
 * white space, "." and "..". A leading '-' the kernel would take, but every
 * tool given the name (ip, iptables, nft) could read it as an option.
 */
export const INTERFACE_NAME = /^(?!\.\.?$)(?!-)[A-Za-z0-9_.@-]{1,15}$/;

/** RFC 1123 host name labels, as resolv.conf's `search` expects. */
export const DOMAIN_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** "198.51.100.10:80" or "[2001:db8::10]:80" */
export function parseHostPort(text: string): { family: Family; address: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const ip = parseIp(m[1] ?? m[2] ?? "");
  const port = Number(m[3]);
  if (!ip || port < 1 || port > 65535) return undefined;
  return { ...ip, port };
}

/** ::ffff:a.b.c.d — an IPv4 address in IPv6 clothing, never seen on the wire. */
export function isIpv4Mapped(address: string): boolean {
  const a = ipaddr.IPv6.parse(address);
  return a.isIPv4MappedAddress();
}

/**
 * The link-local services of an EC2 instance: 169.254.0.0/16 (metadata
 * 169.254.169.254, DNS .253, time .123, ECS credentials 169.254.170.2) and
 * AWS's fd00:ec2::/32 for the same over IPv6.
 */
export function isInstanceService(ip: { family: Family; address: string }): boolean {
  const a = ipaddr.parse(ip.address);
  return ip.family === 4 ? (a as ipaddr.IPv4).match(ipaddr.IPv4.parse("169.254.0.0"), 16) : (a as ipaddr.IPv6).match(ipaddr.IPv6.parse("fd00:ec2::"), 32);
}
