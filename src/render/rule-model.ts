// The firewall as data: every rule dockinit loads is a Rule (which chain,
// which family, an ordered list of typed matches, a verdict, and what it
// means in words), built once from the model. Printers turn the same rules
// into iptables-restore lines (print-iptables.ts), the nftables ruleset
// (print-nft.ts) and explain's sentences; nothing reads a printed rule back.
import type { Cidr, Family } from "../config/net.js";

/** A port range; low = high for one port. */
export interface Ports {
  low: number;
  high: number;
}

export type Proto = "tcp" | "udp" | "icmp" | "ipv6-icmp";

/** Connection-tracking facts about a packet (conntrack / ct). */
export interface CtMatch {
  /** "dnat": the connection's destination was rewritten (by Docker or by us). */
  state?: "invalid" | "related" | "dnat";
  /** Negates `state`. */
  notState?: boolean;
  /** Address the reply comes from (a port forward's target). */
  replySrc?: { family: Family; address: string };
  /** Destination port the client asked for, before any DNAT. */
  origDstPort?: number;
  /** Source port of the reply (a port forward's target port). */
  replySrcPort?: number;
  /** The way the packet travels: as the connection was opened, or back (a reply). */
  direction?: "original" | "reply";
}

/** The protocols docker-proxy serves, whose ports a set of ours holds. */
export type ProxyProtocol = "tcp" | "udp" | "sctp";

/**
 * The sets dockinit fills on the host: egress allow-lists, the DNS servers in
 * use (reachable on port 53 only), docker-proxy's ports.
 */
export type SetRef = { kind: "egress"; family: Family } | { kind: "dns"; family: Family } | { kind: "proxy"; protocol: ProxyProtocol };

/** One match, printed in the order given (iptables-save keeps module order). */
export type Match =
  | { src: Cidr }
  | { dst: Cidr; not?: true }
  | { iif: string; not?: true }
  | { oif: string }
  /** The packet's family, where nothing else in the rule says it (nft: meta nfproto; iptables: the table it is loaded in). */
  | { family: Family }
  | { proto: Proto }
  | { sport: Ports; proto: "tcp" | "udp" }
  | { dport: Ports; proto: "tcp" | "udp" }
  | { localAddress: "src" | "dst" }
  | { ct: CtMatch }
  | { set: SetRef; not?: true; proto?: ProxyProtocol };

export type Verdict =
  /** Let it through, for good (a port forward Docker's FORWARD policy would drop). */
  | { accept: true }
  /** None of dockinit's remaining rules apply: back to Docker's (or the hook's) own. */
  | { pass: true }
  | { drop: true }
  | { jump: ChainId }
  | { masquerade: { toPorts?: Ports } }
  | { dnat: { family: Family; address: string; port: number } };

/**
 * dockinit's chains, by what they are for. The printers name them:
 * DOCKINIT-USER (jumped from DOCKER-USER) / nft `forward`, and so on.
 */
export type ChainId = "prerouting" | "output" | "postrouting" | "input" | "forward" | "egress" | "direct";

/**
 * A rule is for one family only when its own matches or its DNAT target say
 * so (an address, an egress set, ICMP); otherwise it is for both: nftables
 * prints it once, iptables in each family's tables.
 */
export interface Rule {
  chain: ChainId;
  match: Match[];
  verdict: Verdict;
  /** What the rule does, in plain words (explain prints it beside the rule). */
  means: string;
  /**
   * Loaded only while the host meets a condition the script checks at apply
   * (the printers mark the line with its placeholder): "docker-nat6", Docker
   * NATs IPv6 (its ip6tables or ip6 nftables NAT is on).
   */
  when?: "docker-nat6";
}

/** "a" for one port, else "a<sep>b" (iptables' ":" in a match and "-" in --to-ports; nft's "-"). */
export const portSpan = (r: Ports, sep: string): string => (r.low === r.high ? String(r.low) : `${r.low}${sep}${r.high}`);

/** "address:port", with the IPv6 address in brackets. */
export const hostPort = (family: Family, address: string, port: number): string => (family === 4 ? `${address}:${port}` : `[${address}]:${port}`);

/**
 * The mark before a rule loaded only while Docker NATs IPv6 (Rule.when): the
 * script takes the mark off, or the line out, at apply.
 */
export const NAT6 = "%NAT6%";

/** The mark a printer puts before a rule's line, for the script to resolve at apply. */
export const whenMark = (rule: Rule): string => (rule.when === "docker-nat6" ? NAT6 : "");

/**
 * Docker's bridges: docker0 (and docker_gwbridge) and the br-<id> of every
 * user network. Traffic from or to one of them is a container's; every other
 * interface (each ENI, a VPN, a tunnel) is outside. Written as iptables'
 * prefix match; nftables' "*" is the same.
 */
export const BRIDGE_PATTERNS = ["docker+", "br-+"] as const;

/**
 * What container traffic never leaves the host by: loopback, Docker's
 * bridges, and veths (a bridge's ports; a routed veth belongs to another
 * container runtime). Every other interface is external: each ENI, one
 * attached after boot included, a VPN, a tunnel. Docker masquerades by the
 * same measure (`! -o docker0`: everything that does not go back to its bridge).
 */
export const NOT_EXTERNAL = ["lo", ...BRIDGE_PATTERNS, "veth+"] as const;

/** The family a rule is limited to by its own matches (an address, a DNAT target), if any. */
export function impliedFamily(rule: Rule): Family | undefined {
  for (const m of rule.match) {
    if ("src" in m) return m.src.family;
    if ("dst" in m) return m.dst.family;
    if ("family" in m) return m.family;
    if ("ct" in m && m.ct.replySrc) return m.ct.replySrc.family;
    if ("set" in m && m.set.kind !== "proxy") return m.set.family;
    if ("proto" in m && !("dport" in m) && !("sport" in m)) {
      if (m.proto === "icmp") return 4;
      if (m.proto === "ipv6-icmp") return 6;
    }
  }
  if ("dnat" in rule.verdict) return rule.verdict.dnat.family;
  return undefined;
}

/** Whether a rule is loaded for a family (iptables: one table set per family). */
export const inFamily = (rule: Rule, family: Family): boolean => (impliedFamily(rule) ?? family) === family;
