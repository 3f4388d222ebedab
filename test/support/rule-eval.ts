// What the kernel does with the rules a script loaded, for one packet: a small
// model of iptables (iptables-save text, iptables-restore --noflush input,
// chain traversal from a built-in chain) and of an nftables table (base
// chains by hook and priority), for the matches dockinit and Docker use.
// Tests feed it what the stubbed tools were given (test/support/stub-host.ts)
// and ask for a verdict, so they check what a rule does, not how it is
// spelled. A match it does not know is an error, never a silent "no match".
// The kernel itself is the system tests' business (test/system/*).
import ipaddr from "ipaddr.js";

export interface Packet {
  family: 4 | 6;
  proto: "tcp" | "udp" | "sctp" | "icmp" | "ipv6-icmp";
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  iif?: string;
  oif?: string;
  /** Connection tracking's view of the packet. */
  ct: {
    state: "new" | "established" | "related" | "invalid";
    direction: "original" | "reply";
    /** The connection's destination was rewritten (Docker's DNAT, a port forward). */
    dnat?: boolean;
    origDstPort?: number;
    replySrc?: string;
    replySrcPort?: number;
  };
  /** The source / destination is one of the host's own addresses (addrtype LOCAL, fib ... type local). */
  localSrc?: boolean;
  localDst?: boolean;
}

/** Set contents by name (ipset or nft set): ports or networks. */
export type Sets = Record<string, (string | number)[]>;

export type Verdict =
  | { kind: "accept" | "drop" | "reject" }
  /** Nothing in the chains decided: the built-in chain's policy (iptables) or the hook goes on (nft accept / end of base chain). */
  | { kind: "policy"; policy: string }
  | { kind: "masquerade"; toPorts?: { low: number; high: number } }
  | { kind: "dnat"; to: string };

// ---------- iptables ----------

/** A table: chain name → policy ("-" for user chains) and its rules as "-A CHAIN ..." lines. */
export type IptTable = Map<string, { policy: string; rules: string[] }>;
export type IptTables = Map<string, IptTable>;

const BUILTIN: Record<string, string[]> = {
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
};

/** iptables-save output → tables. Counters and comments dropped. */
export function parseSave(text: string): IptTables {
  const tables: IptTables = new Map();
  let cur: IptTable | undefined;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      cur = new Map();
      tables.set(line.slice(1), cur);
    } else if (line === "COMMIT") cur = undefined;
    else if (line.startsWith(":")) {
      const [name, policy] = line.slice(1).split(" ");
      cur!.set(name!, { policy: policy!, rules: [] });
    } else if (line.startsWith("-A ")) {
      const chain = line.split(" ")[1]!;
      const c = cur!.get(chain);
      if (!c) throw new Error(`save: rule for undeclared chain ${chain}: ${line}`);
      c.rules.push(line);
    } else throw new Error(`save: cannot read ${JSON.stringify(line)}`);
  }
  return tables;
}

const cloneTables = (t: IptTables): IptTables => new Map([...t].map(([n, table]) => [n, new Map([...table].map(([c, v]) => [c, { policy: v.policy, rules: [...v.rules] }]))]));

/**
 * iptables-restore --noflush of `input` onto `tables`, as the kernel commits
 * it: table by table, each block whole or (an error in it) not at all, an
 * error stopping the restore. Returns the new tables and the error, if any.
 */
export function applyRestore(tables: IptTables, input: string, opts: { noflush: boolean; test?: boolean }): { tables: IptTables; error?: string } {
  let committed = cloneTables(tables);
  let work: IptTable | undefined;
  let name = "";
  const fail = (error: string) => ({ tables: committed, error });
  for (const raw of input.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      name = line.slice(1);
      const base = opts.noflush ? committed.get(name) : undefined;
      work = base ? new Map([...base].map(([c, v]) => [c, { policy: v.policy, rules: [...v.rules] }])) : new Map((BUILTIN[name] ?? []).map((c) => [c, { policy: "ACCEPT", rules: [] }]));
      continue;
    }
    if (!work) return fail(`line outside a table: ${line}`);
    if (line === "COMMIT") {
      if (!opts.test) committed = new Map([...committed, [name, work]]);
      work = undefined;
      continue;
    }
    if (line.startsWith(":")) {
      const [chain, policy] = line.slice(1).split(" ");
      const old = work.get(chain!);
      // Declaring a chain flushes it (a user chain is created); a built-in keeps its policy unless one is given.
      work.set(chain!, { policy: policy === "-" ? (old?.policy ?? "-") : policy!, rules: [] });
      continue;
    }
    const words = line.split(" ");
    const [op, chain] = words;
    const c = work.get(chain!);
    const spec = words.slice(op === "-I" && /^\d+$/.test(words[2] ?? "") ? 3 : 2).join(" ");
    const rule = `-A ${chain} ${spec}`;
    if (op === "-N") {
      if (c) return fail(`chain ${chain} exists`);
      work.set(chain!, { policy: "-", rules: [] });
      continue;
    }
    if (!c) return fail(`no chain ${chain} (${line})`);
    if (op === "-A") c.rules.push(rule);
    else if (op === "-I") {
      const pos = /^\d+$/.test(words[2] ?? "") ? Number(words[2]) : 1;
      if (pos < 1 || pos > c.rules.length + 1) return fail(`index ${pos} out of range (${line})`);
      c.rules.splice(pos - 1, 0, rule);
    } else if (op === "-D") {
      const i = c.rules.indexOf(rule);
      if (i < 0) return fail(`no such rule to delete: ${line}`);
      c.rules.splice(i, 1);
    } else if (op === "-F") c.rules = [];
    else if (op === "-X") {
      if (c.rules.length > 0) return fail(`chain ${chain} not empty`);
      for (const other of work.values()) if (other.rules.some((r) => r.endsWith(` -j ${chain}`))) return fail(`chain ${chain} in use`);
      work.delete(chain!);
    } else return fail(`cannot model ${JSON.stringify(line)}`);
  }
  if (work) return fail(`table ${name} without COMMIT`);
  return { tables: committed };
}

function inCidr(family: 4 | 6, addr: string, cidr: string): boolean {
  const a = ipaddr.parse(addr);
  const [net, bits] = cidr.includes("/") ? ipaddr.parseCIDR(cidr) : [ipaddr.parse(cidr), family === 4 ? 32 : 128];
  if (a.kind() !== net.kind()) throw new Error(`${addr} and ${cidr} are not of one family`);
  return a.match(net, bits);
}

export const familyOf = (addr: string): 4 | 6 => (ipaddr.parse(addr.replace(/\/\d+$/, "")).kind() === "ipv4" ? 4 : 6);

const ifaceMatch = (pattern: string, name: string | undefined) => name !== undefined && (pattern.endsWith("+") || pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern);

function portsOf(text: string, sep: string): { low: number; high: number } {
  const [a, b] = text.split(sep);
  return { low: Number(a), high: Number(b ?? a) };
}
const inPorts = (p: number | undefined, r: { low: number; high: number }) => p !== undefined && p >= r.low && p <= r.high;

function setHas(sets: Sets, name: string, value: string | number | undefined, family: 4 | 6): boolean {
  const set = sets[name];
  if (!set) throw new Error(`set ${name} is not given to the model`);
  if (value === undefined) return false;
  return set.some((e) => (typeof value === "number" ? Number(e) === value : familyOf(String(e)) === family && inCidr(family, value, String(e))));
}

/** One iptables rule ("-A CHAIN ...") against a packet: whether it matches, and its target with options. */
function iptRule(rule: string, p: Packet, sets: Sets): { matches: boolean; target: string; opts: Record<string, string> } {
  const w = rule.split(" ").slice(2);
  let ok = true;
  let target = "";
  const opts: Record<string, string> = {};
  for (let i = 0; i < w.length; i++) {
    let neg = false;
    if (w[i] === "!") {
      neg = true;
      i++;
    }
    const o = w[i]!;
    const v = w[i + 1];
    let m: boolean;
    switch (o) {
      case "-j":
        target = v!;
        for (let k = i + 2; k < w.length; k += 2) opts[w[k]!] = w[k + 1]!;
        return { matches: ok, target, opts };
      case "-m":
        i++;
        continue;
      case "-s":
        m = inCidr(p.family, p.src, v!);
        break;
      case "-d":
        m = inCidr(p.family, p.dst, v!);
        break;
      case "-i":
        m = ifaceMatch(v!, p.iif);
        break;
      case "-o":
        m = ifaceMatch(v!, p.oif);
        break;
      case "-p":
        m = p.proto === v || (v === "ipv6-icmp" && p.proto === "ipv6-icmp");
        break;
      case "--sport":
        m = inPorts(p.sport, portsOf(v!, ":"));
        break;
      case "--dport":
        m = inPorts(p.dport, portsOf(v!, ":"));
        break;
      case "--ctstate":
        m = v!.split(",").some((s) => (s === "DNAT" ? p.ct.dnat === true : s.toLowerCase() === p.ct.state));
        break;
      case "--ctdir":
        m = p.ct.direction === v!.toLowerCase();
        break;
      case "--ctorigdstport":
        m = p.ct.origDstPort === Number(v);
        break;
      case "--ctreplsrc":
        m = p.ct.replySrc !== undefined && inCidr(p.family, p.ct.replySrc, v!);
        break;
      case "--ctreplsrcport":
        m = p.ct.replySrcPort === Number(v);
        break;
      case "--src-type":
        if (v !== "LOCAL") throw new Error(`model: addrtype ${v}`);
        m = p.localSrc === true;
        break;
      case "--dst-type":
        if (v !== "LOCAL") throw new Error(`model: addrtype ${v}`);
        m = p.localDst === true;
        break;
      case "--match-set": {
        const dir = w[i + 2];
        if (dir !== "dst") throw new Error(`model: --match-set ... ${dir}`);
        m = setHas(sets, v!, /proxy/.test(v!) ? p.dport : p.dst, p.family);
        i++;
        break;
      }
      case "--comment":
        m = true;
        break;
      default:
        throw new Error(`model: iptables option ${o} in ${rule}`);
    }
    if (neg) m = !m;
    if (!m) ok = false;
    i++;
  }
  return { matches: ok, target, opts };
}

/**
 * A packet through `chain` of `table` (a built-in chain: its policy applies
 * when nothing decides), following jumps; the first verdict wins.
 */
export function iptablesVerdict(tables: IptTables, table: string, chain: string, p: Packet, sets: Sets = {}): Verdict {
  const t = tables.get(table);
  if (!t) throw new Error(`no table ${table}`);
  const walk = (name: string, depth: number): Verdict | "return" => {
    if (depth > 16) throw new Error("model: jump loop");
    const c = t.get(name);
    if (!c) throw new Error(`no chain ${name} in ${table}`);
    for (const rule of c.rules) {
      const r = iptRule(rule, p, sets);
      // No target (a rule only counts, e.g. the one carrying the bundle's id): on to the next.
      if (!r.matches || r.target === "") continue;
      switch (r.target) {
        case "ACCEPT":
          return { kind: "accept" };
        case "DROP":
          return { kind: "drop" };
        case "REJECT":
          return { kind: "reject" };
        case "RETURN":
          return "return";
        case "MASQUERADE":
          return { kind: "masquerade", ...(r.opts["--to-ports"] ? { toPorts: portsOf(r.opts["--to-ports"], "-") } : {}) };
        case "DNAT":
          return { kind: "dnat", to: r.opts["--to-destination"]! };
        default: {
          const v = walk(r.target, depth + 1);
          if (v !== "return") return v;
        }
      }
    }
    return "return";
  };
  const v = walk(chain, 0);
  return v === "return" ? { kind: "policy", policy: t.get(chain)!.policy } : v;
}

// ---------- nftables ----------

export interface NftChain {
  name: string;
  /** Base chains only. */
  type?: string;
  hook?: string;
  /** The priority as a number (dstnat = -100, filter = 0, srcnat = 100, ...). */
  priority?: number;
  rules: string[];
}

const PRIORITY_NAMES: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

/** "srcnat - 10", "-110", "filter + 5" → a number. */
export function nftPriority(text: string): number {
  const m = /^(-?\d+|[a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`model: priority ${text}`);
  const base = /^-?\d+$/.test(m[1]!) ? Number(m[1]) : PRIORITY_NAMES[m[1]!];
  if (base === undefined) throw new Error(`model: priority name ${m[1]}`);
  return base + (m[2] ? (m[2] === "+" ? 1 : -1) * Number(m[3]) : 0);
}

/** The chains of `table inet dockinit` in `nft -f` input (the last full definition of the table). */
export function parseNftTable(input: string): { chains: Map<string, NftChain>; sets: Map<string, string> } {
  const start = input.lastIndexOf("table inet dockinit {");
  if (start < 0) throw new Error("no `table inet dockinit { ... }` in the nft input");
  const chains = new Map<string, NftChain>();
  const sets = new Map<string, string>();
  let cur: NftChain | undefined;
  for (const raw of input.slice(start).split("\n").slice(1)) {
    const line = raw.replace(/\s+#.*$/, "").trim();
    if (line === "") continue;
    let m: RegExpExecArray | null;
    if ((m = /^set (\S+) \{ (.*) \}$/.exec(line))) sets.set(m[1]!, m[2]!);
    else if ((m = /^chain (\S+) \{$/.exec(line))) {
      cur = { name: m[1]!, rules: [] };
      chains.set(cur.name, cur);
    } else if ((m = /^type (\S+) hook (\S+) priority ([^;]+); policy accept;$/.exec(line))) {
      cur!.type = m[1];
      cur!.hook = m[2];
      cur!.priority = nftPriority(m[3]!);
    } else if (line === "}") {
      if (!cur) break; // the table's end
      cur = undefined;
    } else if (cur) cur.rules.push(line);
    else throw new Error(`model: nft line ${line}`);
  }
  return { chains, sets };
}

/** nft's tokens, a quoted string as one. */
const nftWords = (rule: string): string[] => rule.match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"(.*)"$/, "$1"));

/** One nft rule against a packet: whether it matches, and its verdict words. */
function nftRule(rule: string, p: Packet, sets: Sets): { matches: boolean; verdict: string[] } {
  const w = nftWords(rule);
  let ok = true;
  let i = 0;
  const neg = () => (w[i] === "!=" ? (i++, true) : false);
  const addr = (family: 4 | 6, value: string | undefined, not: boolean, spec: string) => {
    if (p.family !== family) return false;
    const hit = spec.startsWith("@") ? setHas(sets, spec.slice(1), value, family) : value !== undefined && inCidr(family, value, spec);
    return not ? !hit : hit;
  };
  while (i < w.length) {
    const k = w[i++]!;
    let m: boolean;
    if (["accept", "drop", "return", "jump", "masquerade", "dnat", "reject"].includes(k)) return { matches: ok, verdict: w.slice(i - 1) };
    if ((k === "ip" || k === "ip6") && (w[i] === "saddr" || w[i] === "daddr")) {
      const which = w[i++];
      const not = neg();
      m = addr(k === "ip" ? 4 : 6, which === "saddr" ? p.src : p.dst, not, w[i++]!);
    } else if (k === "iifname" || k === "oifname") {
      const not = neg();
      m = ifaceMatch(w[i++]!, k === "iifname" ? p.iif : p.oif) !== not;
    } else if ((k === "tcp" || k === "udp" || k === "sctp") && (w[i] === "sport" || w[i] === "dport")) {
      const which = w[i++];
      const not = neg();
      const spec = w[i++]!;
      const port = which === "sport" ? p.sport : p.dport;
      const hit = p.proto === k && (spec.startsWith("@") ? setHas(sets, spec.slice(1), port, p.family) : inPorts(port, portsOf(spec, "-")));
      m = p.proto === k && hit !== not;
    } else if (k === "meta" && w[i] === "l4proto") {
      i++;
      m = p.proto === w[i++];
    } else if (k === "fib") {
      const which = w[i++];
      if (w[i++] !== "type" || w[i++] !== "local") throw new Error(`model: fib in ${rule}`);
      m = which === "saddr" ? p.localSrc === true : p.localDst === true;
    } else if (k === "ct") {
      const what = w[i++];
      if (what === "state") {
        const not = neg();
        m = (p.ct.state === w[i++]) !== not;
      } else if (what === "status" && w[i] === "dnat") {
        i++;
        m = p.ct.dnat === true;
      } else if (what === "status" && w[i] === "&") {
        if (w[i + 1] !== "dnat" || w[i + 2] !== "==" || w[i + 3] !== "0") throw new Error(`model: ${rule}`);
        i += 4;
        m = p.ct.dnat !== true;
      } else if (what === "direction") {
        const dir = w[i++];
        if (dir !== "original" && dir !== "reply") throw new Error(`model: ${rule}`);
        m = p.ct.direction === dir;
      } else if (what === "original" && w[i] === "proto-dst") {
        i++;
        m = p.ct.origDstPort === Number(w[i++]);
      } else if (what === "reply" && w[i] === "proto-src") {
        i++;
        m = p.ct.replySrcPort === Number(w[i++]);
      } else if (what === "reply" && (w[i] === "ip" || w[i] === "ip6")) {
        const fam = w[i++] === "ip" ? 4 : 6;
        if (w[i++] !== "saddr") throw new Error(`model: ${rule}`);
        const spec = w[i++]!;
        m = p.family === fam && p.ct.replySrc !== undefined && inCidr(fam, p.ct.replySrc, spec);
      } else throw new Error(`model: ct ${what} in ${rule}`);
    } else throw new Error(`model: nft match ${k} in ${rule}`);
    if (!m) ok = false;
  }
  throw new Error(`model: no verdict in ${rule}`);
}

/**
 * A packet through one base chain of dockinit's table: "accept" there (or its
 * end) lets the packet go on to the hook's later chains (Docker's, iptables'),
 * so it is reported as the policy; drop and the NAT verdicts are final.
 */
export function nftVerdict(chains: Map<string, NftChain>, chain: string, p: Packet, sets: Sets = {}): Verdict {
  const walk = (name: string, depth: number): Verdict | "return" => {
    if (depth > 16) throw new Error("model: jump loop");
    const c = chains.get(name);
    if (!c) throw new Error(`no nft chain ${name}`);
    for (const rule of c.rules) {
      const r = nftRule(rule, p, sets);
      if (!r.matches) continue;
      const [v, arg] = r.verdict;
      if (v === "accept") return { kind: "policy", policy: "accept" };
      if (v === "drop") return { kind: "drop" };
      if (v === "reject") return { kind: "reject" };
      if (v === "return") return "return";
      if (v === "jump") {
        const sub = walk(arg!, depth + 1);
        if (sub !== "return") return sub;
        continue;
      }
      if (v === "masquerade") return arg === "to" ? { kind: "masquerade", toPorts: portsOf(r.verdict[2]!.replace(/^:/, ""), "-") } : { kind: "masquerade" };
      if (v === "dnat") return { kind: "dnat", to: r.verdict.slice(3).join(" ") };
      throw new Error(`model: verdict ${r.verdict.join(" ")}`);
    }
    return "return";
  };
  const v = walk(chain, 0);
  return v === "return" ? { kind: "policy", policy: "accept" } : v;
}
