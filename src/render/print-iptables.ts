// Rules → iptables-restore lines, in iptables-save's canonical form: the
// basic options in the order -s -d -i -o -p, then each match module in the
// order the rule lists it (iptables-save keeps it), then the target, so that
// `explain` shows what `iptables -S` will show (the property test loads them
// and compares). The script's status does not depend on it: it compares the
// kernel's own save with the copy it took right after apply.
import ipaddr from "ipaddr.js";
import type { Cidr, Family } from "../config/net.js";
import { hostPort, inFamily, portSpan, whenMark, type ChainId, type CtMatch, type Match, type Rule, type SetRef } from "./rule-model.js";

export interface Jump {
  /** Built-in (or Docker's) chain the jump lives in, e.g. POSTROUTING. */
  parent: string;
  /** The rule exactly as `iptables -S` prints it, e.g. "-A POSTROUTING -j DOCKINIT-POSTROUTING". */
  spec: string;
  chain: string;
}

export interface TableRules {
  table: "nat" | "filter";
  /** dockinit's own chains, declared (and so flushed) by the restore. */
  chains: string[];
  /** "-A CHAIN ..." lines, in order. */
  rules: string[];
  /** What each line of `rules` means, in plain words (same index). */
  means: string[];
  jumps: Jump[];
}

export interface FamilyRules {
  family: Family;
  tables: TableRules[];
}

/** Each chain of dockinit's: its iptables name, table, and the chain that jumps to it first (none: reached by a jump of ours). */
export const IPTABLES_CHAINS: Record<ChainId, { name: string; table: "nat" | "filter"; parent?: string }> = {
  prerouting: { name: "DOCKINIT-PREROUTING", table: "nat", parent: "PREROUTING" },
  output: { name: "DOCKINIT-OUTPUT", table: "nat", parent: "OUTPUT" },
  postrouting: { name: "DOCKINIT-POSTROUTING", table: "nat", parent: "POSTROUTING" },
  input: { name: "DOCKINIT-INPUT", table: "filter", parent: "INPUT" },
  forward: { name: "DOCKINIT-USER", table: "filter", parent: "DOCKER-USER" },
  egress: { name: "DOCKINIT-EGRESS", table: "filter" },
  direct: { name: "DOCKINIT-DIRECT", table: "filter" },
};
const CHAIN_ORDER: ChainId[] = ["prerouting", "output", "postrouting", "input", "forward", "egress", "direct"];

/** The ipset behind a set of ours (swapped atomically on apply, or filled by dockinit-proxy). */
export const ipsetName = (set: SetRef): string => (set.kind === "proxy" ? `dockinit-proxy-${set.protocol}` : `dockinit-${set.kind}${set.family}`);

/**
 * An address as iptables-save prints it. IPv6 goes through glibc's inet_ntop,
 * which writes IPv4-mapped and IPv4-compatible addresses with a dotted quad
 * ("::ffff:192.0.2.1", "::192.0.2.1") where ipaddr.js writes hex; any other
 * difference would make status report a rule as changed forever.
 */
export function iptablesAddress(family: Family, address: string): string {
  if (family === 4) return address;
  const words = ipaddr.IPv6.parse(address).parts;
  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && words[i] === 0) cur = cur.base === -1 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
    else {
      if (cur.base !== -1 && cur.len > best.len) best = cur;
      cur = { base: -1, len: 0 };
    }
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  if (best.base === 0 && (best.len === 6 || (best.len === 5 && words[5] === 0xffff))) {
    const v4 = `${words[6]! >> 8}.${words[6]! & 255}.${words[7]! >> 8}.${words[7]! & 255}`;
    return best.len === 6 ? `::${v4}` : `::ffff:${v4}`;
  }
  return ipaddr.IPv6.parse(address).toRFC5952String();
}

const cidr = (c: Cidr) => `${iptablesAddress(c.family, c.address)}/${c.prefix}`;

/** libxt_conntrack's save order: state, reply source, original destination port, reply source port, direction. */
function conntrack(ct: CtMatch): string {
  const out = ["-m conntrack"];
  if (ct.state) out.push(`${ct.notState ? "! " : ""}--ctstate ${ct.state.toUpperCase()}`);
  if (ct.replySrc) out.push(`--ctreplsrc ${iptablesAddress(ct.replySrc.family, ct.replySrc.address)}`);
  if (ct.origDstPort !== undefined) out.push(`--ctorigdstport ${ct.origDstPort}`);
  if (ct.replySrcPort !== undefined) out.push(`--ctreplsrcport ${ct.replySrcPort}`);
  if (ct.direction) out.push(`--ctdir ${ct.direction.toUpperCase()}`);
  return out.join(" ");
}

function matchText(match: Match[]): string {
  const basic: Record<"s" | "d" | "i" | "o" | "p", string | undefined> = { s: undefined, d: undefined, i: undefined, o: undefined, p: undefined };
  const modules: string[] = [];
  for (const m of match) {
    if ("src" in m) basic.s = m.src.prefix === 0 ? undefined : `-s ${cidr(m.src)}`;
    else if ("dst" in m) basic.d = m.dst.prefix === 0 && !m.not ? undefined : `${m.not ? "! " : ""}-d ${cidr(m.dst)}`;
    else if ("iif" in m) basic.i = `${m.not ? "! " : ""}-i ${m.iif}`;
    else if ("oif" in m) basic.o = `-o ${m.oif}`;
    else if ("family" in m) continue; // the table it is loaded in says it
    else if ("sport" in m || "dport" in m) {
      basic.p = `-p ${m.proto}`;
      modules.push("sport" in m ? `-m ${m.proto} --sport ${portSpan(m.sport, ":")}` : `-m ${m.proto} --dport ${portSpan(m.dport, ":")}`);
    }
    else if ("proto" in m && !("set" in m)) basic.p = `-p ${m.proto}`;
    else if ("localAddress" in m) modules.push(`-m addrtype --${m.localAddress}-type LOCAL`);
    else if ("ct" in m) modules.push(conntrack(m.ct));
    else if ("set" in m) {
      if (m.proto) basic.p = `-p ${m.proto}`;
      modules.push(`-m set ${m.not ? "! " : ""}--match-set ${ipsetName(m.set)} dst`);
    }
  }
  return [basic.s, basic.d, basic.i, basic.o, basic.p, ...modules].filter((x) => x !== undefined).join(" ");
}

function target(rule: Rule): string {
  const v = rule.verdict;
  if ("accept" in v) return "-j ACCEPT";
  if ("pass" in v) return "-j RETURN";
  if ("drop" in v) return "-j DROP";
  if ("jump" in v) return `-j ${IPTABLES_CHAINS[v.jump].name}`;
  if ("masquerade" in v) return v.masquerade.toPorts ? `-j MASQUERADE --to-ports ${portSpan(v.masquerade.toPorts, "-")}` : "-j MASQUERADE";
  return `-j DNAT --to-destination ${hostPort(v.dnat.family, iptablesAddress(v.dnat.family, v.dnat.address), v.dnat.port)}`;
}

/**
 * A rule's matches and target, as `iptables -I/-C/-D CHAIN` takes them after
 * the chain; a comment goes last among the matches, where iptables-save keeps it.
 */
export function iptablesSpec(rule: Rule, comment?: string): string {
  const m = [matchText(rule.match), ...(comment ? [`-m comment --comment ${comment}`] : [])].filter((x) => x !== "").join(" ");
  return `${m ? `${m} ` : ""}${target(rule)}`;
}

/** One rule as an "-A CHAIN ..." line, after its Rule.when mark if it has one. */
export const iptablesLine = (rule: Rule): string => `${whenMark(rule)}-A ${IPTABLES_CHAINS[rule.chain].name} ${iptablesSpec(rule)}`;

/** One family's tables: each chain of ours that has rules for the family, and the jumps into it. */
export function iptablesFamily(rules: Rule[], family: Family): FamilyRules {
  const tables: TableRules[] = [];
  for (const table of ["nat", "filter"] as const) {
    const t: TableRules = { table, chains: [], rules: [], means: [], jumps: [] };
    for (const id of CHAIN_ORDER) {
      const chain = IPTABLES_CHAINS[id];
      if (chain.table !== table) continue;
      const mine = rules.filter((r) => r.chain === id && inFamily(r, family));
      if (mine.length === 0) continue;
      t.chains.push(chain.name);
      for (const r of mine) {
        t.rules.push(iptablesLine(r));
        t.means.push(r.means);
      }
      if (chain.parent) t.jumps.push({ parent: chain.parent, chain: chain.name, spec: `-A ${chain.parent} -j ${chain.name}` });
    }
    if (t.chains.length > 0) tables.push(t);
  }
  return { family, tables };
}
