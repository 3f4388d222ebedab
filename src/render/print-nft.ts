// Rules → dockinit's own `table inet dockinit` for the nftables backend. It
// never touches Docker's tables or chains, so it works the same beside
// Docker's iptables rules (20.10-28) and beside Docker 29's `ip/ip6
// docker-bridges` tables, following moby's contract for Docker 29: base
// chains of our own at priorities that run before Docker's (dstnat - 10,
// filter - 10, srcnat - 10), and drops rather than accepts. An nftables
// accept only ends the chain it is in: Docker's base chains still see the
// packet. So an accept here means "none of dockinit's remaining rules
// apply", never "let it through". One inet table holds both families: a rule
// whose matches name no family is printed once for both.
import type { Family } from "../config/net.js";
import { hostPort, portSpan, whenMark, type ChainId, type CtMatch, type Match, type Ports, type Rule, type SetRef } from "./rule-model.js";

/** The body of `table inet dockinit`: its sets, its nat chains, its filter chains (each "" or whole lines). */
export interface NftParts {
  sets: string;
  nat: string;
  filter: string;
}

/** A set of ours as declared in the table; the host adds elements (the DNS servers `vpc` finds, docker-proxy's ports). */
export interface NftSet {
  ref: SetRef;
  /** Literal elements known at render time. */
  elements: string[];
}

export const nftSetName = (set: SetRef): string => (set.kind === "proxy" ? `proxy_${set.protocol}` : `${set.kind}${set.family}`);

/** Base chains: their hook and priority. The others are reached by jumps. */
const HOOKS: Partial<Record<ChainId, string>> = {
  prerouting: "nat hook prerouting priority dstnat - 10",
  // -110 is dstnat - 10: nft 1.0 accepts the name only for prerouting.
  output: "nat hook output priority -110",
  // srcnat - 10: an nftables nat chain at a lower priority runs before
  // iptables' nat POSTROUTING and Docker 29's nat-POSTROUTING (priority
  // srcnat), and the first chain that sets up a NAT binding for a connection
  // wins, so Docker's MASQUERADE can never shadow this rule, however Docker
  // re-orders its own chains.
  postrouting: "nat hook postrouting priority srcnat - 10",
  // filter - 10: before Docker's filter-FORWARD (Docker 29) and iptables'
  // FORWARD/INPUT (priority filter); a drop here is final whatever they accept.
  input: "filter hook input priority filter - 10",
  forward: "filter hook forward priority filter - 10",
};
export const NAT: ChainId[] = ["prerouting", "output", "postrouting"];
export const FILTER: ChainId[] = ["input", "forward", "egress", "direct"];

const ip = (family: Family) => (family === 4 ? "ip" : "ip6");
const iface = (name: string) => `"${name.replace(/\+$/, "*")}"`;
const span = (r: Ports) => portSpan(r, "-");

function conntrack(ct: CtMatch): string[] {
  const out: string[] = [];
  if (ct.state === "dnat") out.push(ct.notState ? "ct status & dnat == 0" : "ct status dnat");
  else if (ct.state) out.push(`ct state ${ct.notState ? "!= " : ""}${ct.state}`);
  if (ct.replySrc) out.push(`ct reply ${ip(ct.replySrc.family)} saddr ${ct.replySrc.address}`);
  if (ct.origDstPort !== undefined) out.push(`ct original proto-dst ${ct.origDstPort}`);
  if (ct.replySrcPort !== undefined) out.push(`ct reply proto-src ${ct.replySrcPort}`);
  if (ct.direction) out.push(`ct direction ${ct.direction}`);
  return out;
}

function matchText(m: Match): string[] {
  if ("src" in m) return [`${ip(m.src.family)} saddr ${m.src.text}`];
  if ("dst" in m) return [`${ip(m.dst.family)} daddr ${m.not ? "!= " : ""}${m.dst.text}`];
  if ("iif" in m) return [`iifname ${m.not ? "!= " : ""}${iface(m.iif)}`];
  if ("oif" in m) return [`oifname ${iface(m.oif)}`];
  if ("family" in m) return [`meta nfproto ${m.family === 4 ? "ipv4" : "ipv6"}`];
  if ("sport" in m) return [`${m.proto} sport ${span(m.sport)}`];
  if ("dport" in m) return [`${m.proto} dport ${span(m.dport)}`];
  if ("localAddress" in m) return [`fib ${m.localAddress === "src" ? "saddr" : "daddr"} type local`];
  if ("ct" in m) return conntrack(m.ct);
  if ("set" in m) {
    const set = m.set;
    return set.kind === "proxy" ? [`${set.protocol} dport ${m.not ? "!= " : ""}@${nftSetName(set)}`] : [`${ip(set.family)} daddr ${m.not ? "!= " : ""}@${nftSetName(set)}`];
  }
  return [`meta l4proto ${m.proto}`];
}

function verdictText(rule: Rule): string {
  const v = rule.verdict;
  if ("accept" in v) return "accept";
  // Leaving a base chain or a jumped-to chain: nothing more of ours applies.
  if ("pass" in v) return HOOKS[rule.chain] ? "accept" : "return";
  if ("drop" in v) return "drop";
  if ("jump" in v) return `jump ${v.jump}`;
  if ("masquerade" in v) return v.masquerade.toPorts ? `masquerade to :${span(v.masquerade.toPorts)}` : "masquerade";
  return `dnat ${ip(v.dnat.family)} to ${hostPort(v.dnat.family, v.dnat.address, v.dnat.port)}`;
}

/** One rule as nft prints it in a chain (without the indentation), after its Rule.when mark if it has one. */
export function nftLine(rule: Rule): string {
  // A "proto" alone before a port match of the same protocol says nothing more.
  const match = rule.match.filter((m, i) => !("proto" in m && !("sport" in m) && !("dport" in m) && !("set" in m) && rule.match.slice(i + 1).some((n) => ("sport" in n || "dport" in n) && n.proto === m.proto)));
  return whenMark(rule) + [...match.flatMap(matchText), verdictText(rule)].join(" ");
}

function chainText(id: ChainId, rules: Rule[], always: boolean, annotate: boolean): string[] {
  const mine = rules.filter((r) => r.chain === id);
  if (mine.length === 0 && !always) return [];
  const hook = HOOKS[id];
  return [`\tchain ${id} {`, ...(hook ? [`\t\ttype ${hook}; policy accept;`] : []), ...mine.map((r) => `\t\t${nftLine(r)}${annotate ? `    # ${r.means}` : ""}`), "\t}"];
}

function setText(set: NftSet): string[] {
  const type = set.ref.kind === "proxy" ? "inet_service" : set.ref.family === 4 ? "ipv4_addr" : "ipv6_addr";
  // One line per set: nft reads `;` between statements as it reads line breaks.
  const interval = set.ref.kind === "egress" ? ["flags interval", "auto-merge"] : [];
  const elements = set.elements.length > 0 ? [`elements = { ${set.elements.join(", ")} }`] : [];
  return [`\tset ${nftSetName(set.ref)} { ${[`type ${type}`, ...interval, ...elements].join("; ")}; }`];
}

/**
 * The table's parts, and the whole table with and without its nat chains.
 * `annotate` puts each rule's words after it as an nft comment (explain's
 * listing, still a file `nft -f` reads).
 */
export function nftRuleset(rules: Rule[], sets: NftSet[], annotate = false): { full: string; policies: string; parts: NftParts } {
  const text = (lines: string[]) => lines.map((l) => `${l}\n`).join("");
  // postrouting is always there: the source-port rewrite's chain, even when empty.
  const parts: NftParts = {
    sets: text(sets.flatMap(setText)),
    nat: text(NAT.flatMap((id) => chainText(id, rules, id === "postrouting", annotate))),
    filter: text(FILTER.flatMap((id) => chainText(id, rules, false, annotate))),
  };
  const open = "table inet dockinit {\n";
  return { full: `${open}${parts.sets}${parts.nat}${parts.filter}}\n`, policies: `${open}${parts.sets}${parts.filter}}\n`, parts };
}

