// The rule sets dockinit-firewall loads, generated as data at render time:
// iptables-restore lines per family and table, the jumps that must sit first
// in the built-in chains, and the equivalent nftables ruleset. Nothing here is
// shell: the script template embeds these lines in quoted here-documents, and
// every value in them was parsed (CIDRs, ports) before it got here.
// iptables rules are written in iptables-save's canonical form (option order
// -s -d -i -o -p, then matches, then the target), so the script can compare a
// saved chain with them line for line (status, and apply's no-op fast path).
import ipaddr from "ipaddr.js";
import type { Cidr, Family } from "../config/net.js";
import type { Model } from "../model.js";

/** Replaced on the host by the external interface found at apply time. */
export const EXT_IF = "@EXT_IF@";

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
  jumps: Jump[];
}

export interface FamilyRules {
  family: Family;
  tables: TableRules[];
}

export interface FirewallPlan {
  iptables: FamilyRules[];
  /** `nft -f` input for the nftables backend (empty when not used). */
  nft: string;
  /** Human-readable summary lines, one per policy (for `status` and `explain`). */
  summary: string[];
}

/** A port range as iptables-save prints it: "a:b" / "a-b", or "a" when a = b. */
const span = (r: { low: number; high: number }, sep: string) => (r.low === r.high ? String(r.low) : `${r.low}${sep}${r.high}`);

const jump = (parent: string, chain: string): Jump => ({ parent, chain, spec: `-A ${parent} -j ${chain}` });

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

/** "-s NET " for iptables, or nothing for a /0 network (iptables-save leaves "match all" out). */
const addrMatch = (flag: "-s" | "-d", c: Cidr) => (c.prefix === 0 ? "" : `${flag} ${iptablesAddress(c.family, c.address)}/${c.prefix} `);

function ephemeralRules(model: Model, family: Family): string[] {
  const ep = model.ephemeral;
  if (!ep.enabled) return [];
  const sources = ep.sources.length === 0 ? [undefined] : ep.sources.filter((s) => s.family === family);
  if (sources.length === 0) return [];
  const out: string[] = [];
  for (const proto of ep.protocols) {
    for (const src of sources) {
      const s = src ? ` ${addrMatch("-s", src)}`.trimEnd() : "";
      out.push(
        `-A DOCKINIT-POSTROUTING${s} -o ${EXT_IF} -p ${proto} -m ${proto} --sport ${span(ep.match, ":")} -j MASQUERADE --to-ports ${span(ep.to, "-")}`,
      );
    }
  }
  return out;
}

/** Instance metadata, per family: containers must not reach the instance's credentials. */
export const METADATA = { 4: "169.254.169.254/32", 6: "fd00:ec2::254/128" } as const;

/** The ipset holding a family's egress allow-list (swapped atomically on apply). */
export const egressSet = (family: Family) => `dockinit-egress${family}`;

const forwardsOf = (model: Model, family: Family) => model.portForwards.filter((f) => f.family === family);
const hostPort = (family: Family, address: string, port: number) => (family === 4 ? `${address}:${port}` : `[${address}]:${port}`);
const hostCidr = (family: Family, address: string) => `${address}/${family === 4 ? 32 : 128}`;

/** Port forwards, as Docker publishes ports (note 03): DNAT in PREROUTING and,
 * for the host's own connections, in OUTPUT for local destinations. */
function forwardNatRules(model: Model, family: Family): { prerouting: string[]; output: string[]; postrouting: string[] } {
  const prerouting: string[] = [];
  const output: string[] = [];
  const postrouting: string[] = [];
  const notLoopback = family === 4 ? "! -d 127.0.0.0/8" : "! -d ::1/128";
  for (const f of forwardsOf(model, family)) {
    const to = `-j DNAT --to-destination ${hostPort(family, iptablesAddress(family, f.address), f.port)}`;
    const match = `-p ${f.protocol} -m addrtype --dst-type LOCAL -m ${f.protocol} --dport ${f.listen}`;
    prerouting.push(`-A DOCKINIT-PREROUTING ${match} ${to}`);
    output.push(`-A DOCKINIT-OUTPUT ${notLoopback} ${match} ${to}`);
    // A target beyond the host must send its replies back through us.
    postrouting.push(
      `-A DOCKINIT-POSTROUTING -d ${hostCidr(family, iptablesAddress(family, f.address))} -o ${EXT_IF} -p ${f.protocol} -m conntrack --ctstate DNAT -m ${f.protocol} --dport ${f.port} -j MASQUERADE`,
    );
  }
  return { prerouting, output, postrouting };
}

/** DOCKINIT-USER, jumped from the top of DOCKER-USER (notes 04, 05). */
function userChainRules(model: Model, family: Family): string[] {
  const fw = model.firewall;
  const out: string[] = [];
  const add = (rule: string) => out.push(`-A DOCKINIT-USER ${rule}`);
  // Port forwards first, both directions: Docker's FORWARD policy is DROP and
  // its own ACCEPTs only cover its bridges. The DNAT state plus the reply
  // tuple identify exactly these connections.
  for (const f of forwardsOf(model, family)) {
    add(`-p ${f.protocol} -m conntrack --ctstate DNAT --ctreplsrc ${iptablesAddress(family, f.address)} --ctorigdstport ${f.listen} --ctreplsrcport ${f.port} -j ACCEPT`);
  }
  // Replies to connections already allowed go on to Docker's rules untouched.
  add("-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN");
  const c = fw.containers;
  if (c.blockMetadata) add(`-d ${METADATA[family]} -j DROP`);
  for (const dst of c.block.filter((b) => b.family === family)) add(`${addrMatch("-d", dst)}! -i ${EXT_IF} -j DROP`);
  if (c.egressAllow.length > 0) {
    // Only the allow-list (and the DNS servers in use) may be reached through
    // the external interface; the set is filled on the host at apply time.
    add(`! -i ${EXT_IF} -o ${EXT_IF} -m set ! --match-set ${egressSet(family)} dst -j DROP`);
  }
  // Published ports: matched on the original destination port, since Docker
  // has already rewritten the destination to the container's by FORWARD.
  for (const r of fw.published.rules) {
    const port = `-p ${r.protocol} -m conntrack --ctstate DNAT --ctorigdstport ${r.port}`;
    if (r.allowAny) {
      add(`-i ${EXT_IF} ${port} -j RETURN`);
      continue;
    }
    // A family with none of the listed networks gets the drop alone: a port
    // allowed only from IPv4 networks is closed over IPv6, not left open.
    for (const src of r.allow.filter((a) => a.family === family)) add(`${addrMatch("-s", src)}-i ${EXT_IF} ${port} -j RETURN`);
    // loopback only: no forwarded connection at all; the host's own go
    // through OUTPUT (or docker-proxy) and never reach FORWARD.
    add(r.allow.length === 0 ? `${port} -j DROP` : `-i ${EXT_IF} ${port} -j DROP`);
  }
  if (fw.published.default === "deny") add(`-i ${EXT_IF} -m conntrack --ctstate DNAT -j DROP`);
  return out;
}

/** Whether the config asks for any filter policy at all. */
export function hasPolicies(model: Model): boolean {
  const fw = model.firewall;
  return (
    fw.published.rules.length > 0 ||
    fw.published.default === "deny" ||
    fw.containers.blockMetadata ||
    fw.containers.block.length > 0 ||
    fw.containers.egressAllow.length > 0 ||
    model.portForwards.length > 0
  );
}

function familyRules(model: Model, family: Family): FamilyRules {
  const tables: TableRules[] = [];
  const fwd = forwardNatRules(model, family);
  const postrouting = [...fwd.postrouting, ...ephemeralRules(model, family)];
  const nat: TableRules = { table: "nat", chains: [], rules: [], jumps: [] };
  const natChain = (name: string, parent: string, rules: string[]) => {
    if (rules.length === 0) return;
    nat.chains.push(name);
    nat.rules.push(...rules);
    nat.jumps.push(jump(parent, name));
  };
  natChain("DOCKINIT-PREROUTING", "PREROUTING", fwd.prerouting);
  natChain("DOCKINIT-OUTPUT", "OUTPUT", fwd.output);
  natChain("DOCKINIT-POSTROUTING", "POSTROUTING", postrouting);
  if (nat.chains.length > 0) tables.push(nat);
  if (hasPolicies(model)) {
    tables.push({ table: "filter", chains: ["DOCKINIT-USER"], rules: userChainRules(model, family), jumps: [jump("DOCKER-USER", "DOCKINIT-USER")] });
  }
  return { family, tables };
}

/** Literal networks of a family that go into its egress set at render time. */
export function egressEntries(model: Model, family: Family): string[] {
  if (model.firewall.containers.egressAllow.length === 0) return [];
  const dns = model.docker.dns.flatMap((d) => (d.kind === "literal" && d.family === family ? [hostCidr(family, d.address)] : []));
  return [...new Set([...model.firewall.containers.egressAllow.filter((c) => c.family === family).map((c) => c.text), ...dns])];
}

/** An nftables address match of a family: "ip daddr" / "ip6 saddr". */
const nftAddr = (family: Family, dir: "saddr" | "daddr") => `${family === 4 ? "ip" : "ip6"} ${dir}`;

/** The set holding a family's egress allow-list in `table inet dockinit`. */
export const nftEgressSet = (family: Family) => `egress${family}`;

/**
 * dockinit's own `table inet dockinit` for the nftables backend. It never
 * touches Docker's tables or chains, so it works the same beside Docker's
 * iptables rules (20.10-28) and beside Docker 29's `ip/ip6 docker-bridges`
 * tables, following moby's contract for Docker 29: base chains of our own at
 * priorities that run before Docker's (dstnat - 10, filter - 10, srcnat - 10),
 * and drops rather than accepts. An nftables accept only ends the chain it is
 * in: Docker's base chains still see the packet. So an accept here means
 * "none of dockinit's remaining rules apply", never "let it through".
 */
function nftRuleset(model: Model): string {
  const ep = model.ephemeral;
  if (model.firewall.backend !== "nftables") return "";
  const fw = model.firewall;
  const c = fw.containers;
  const ext = `"${EXT_IF}"`;
  const families = [4, 6] as const;

  // Sets: the egress allow-list of each family, literal entries rendered here;
  // the script adds the DNS servers from daemon.json in the same transaction.
  const sets: string[] = [];
  if (c.egressAllow.length > 0) {
    for (const family of families) {
      const entries = egressEntries(model, family);
      sets.push(
        `\tset ${nftEgressSet(family)} {`,
        `\t\ttype ${family === 4 ? "ipv4_addr" : "ipv6_addr"}`,
        "\t\tflags interval",
        "\t\tauto-merge",
        ...(entries.length > 0 ? [`\t\telements = { ${entries.join(", ")} }`] : []),
        "\t}",
      );
    }
  }

  // Port forwards, as Docker publishes ports (note 03): DNAT for connections
  // arriving from outside (prerouting) and from the host itself (output), at
  // dstnat - 10 so that they are bound before Docker's DNAT could be.
  const prerouting: string[] = [];
  const output: string[] = [];
  const masquerade: string[] = [];
  const forwardAccepts: string[] = [];
  for (const f of model.portForwards) {
    const fam = f.family === 4 ? "ip" : "ip6";
    const to = `dnat ${fam} to ${hostPort(f.family, f.address, f.port)}`;
    const loopback = f.family === 4 ? "127.0.0.0/8" : "::1";
    prerouting.push(`\t\tfib daddr type local ${f.protocol} dport ${f.listen} ${to}`);
    output.push(`\t\t${fam} daddr != ${loopback} fib daddr type local ${f.protocol} dport ${f.listen} ${to}`);
    masquerade.push(`\t\toifname ${ext} ${fam} daddr ${f.address} ${f.protocol} dport ${f.port} ct status dnat masquerade`);
    forwardAccepts.push(
      `\t\tmeta l4proto ${f.protocol} ct status dnat ct original proto-dst ${f.listen} ct reply ${fam} saddr ${f.address} ct reply proto-src ${f.port} accept`,
    );
  }

  const ephemeral: string[] = [];
  for (const proto of ep.enabled ? ep.protocols : []) {
    const bySource = ep.sources.length === 0 ? [""] : ep.sources.map((s) => `${nftAddr(s.family, "saddr")} ${s.text} `);
    for (const src of bySource) {
      ephemeral.push(`\t\toifname ${ext} ${src}${proto} sport ${ep.match.low}-${ep.match.high} masquerade to :${ep.to.low}-${ep.to.high}`);
    }
  }

  // The forward filter, in the order of the iptables backend's DOCKINIT-USER.
  const drops: string[] = [];
  if (c.blockMetadata) drops.push(`\t\tip daddr ${METADATA[4]} drop`, `\t\tip6 daddr ${METADATA[6]} drop`);
  for (const b of c.block) drops.push(`\t\tiifname != ${ext} ${nftAddr(b.family, "daddr")} ${b.text} drop`);
  if (c.egressAllow.length > 0) {
    for (const family of families) drops.push(`\t\tiifname != ${ext} oifname ${ext} ${nftAddr(family, "daddr")} != @${nftEgressSet(family)} drop`);
  }
  // Published ports: matched on the original destination port (Docker's DNAT
  // at dstnat has already rewritten the destination when forward runs).
  for (const r of fw.published.rules) {
    const port = `meta l4proto ${r.protocol} ct status dnat ct original proto-dst ${r.port}`;
    if (r.allowAny) {
      drops.push(`\t\tiifname ${ext} ${port} accept`);
      continue;
    }
    for (const src of r.allow) drops.push(`\t\tiifname ${ext} ${port} ${nftAddr(src.family, "saddr")} ${src.text} accept`);
    // loopback only: no forwarded connection at all (the host's own go
    // through output, or docker-proxy, and never reach forward).
    drops.push(r.allow.length === 0 ? `\t\t${port} drop` : `\t\tiifname ${ext} ${port} drop`);
  }
  if (fw.published.default === "deny") drops.push(`\t\tiifname ${ext} ct status dnat drop`);
  // Replies to connections already allowed: none of dockinit's rules apply.
  const forward = drops.length > 0 || forwardAccepts.length > 0 ? [...forwardAccepts, "\t\tct state established,related accept", ...drops] : [];

  const chain = (name: string, hook: string, rules: string[]) =>
    rules.length > 0 ? [`\tchain ${name} {`, `\t\ttype ${hook}; policy accept;`, ...rules, "\t}"] : [];
  // srcnat - 10: an nftables nat chain at a lower priority runs before
  // iptables' nat POSTROUTING and Docker 29's nat-POSTROUTING (priority
  // srcnat), and the first chain that sets up a NAT binding for a connection
  // wins, so Docker's MASQUERADE can never shadow this rule, however Docker
  // re-orders its own chains.
  return [
    "table inet dockinit {",
    ...sets,
    ...chain("prerouting", "nat hook prerouting priority dstnat - 10", prerouting),
    // -110 is dstnat - 10: nft 1.0 accepts the name only for prerouting.
    ...chain("output", "nat hook output priority -110", output),
    "\tchain postrouting {",
    "\t\ttype nat hook postrouting priority srcnat - 10; policy accept;",
    ...masquerade,
    ...ephemeral,
    "\t}",
    // filter - 10: before Docker's filter-FORWARD (Docker 29) and iptables'
    // FORWARD (priority filter); a drop here is final whatever they accept.
    ...chain("forward", "filter hook forward priority filter - 10", forward),
    "}",
    "",
  ].join("\n");
}

/** "a, b, c and 997 more": summaries stay one readable line. */
function listSome(items: string[], max = 4): string {
  return items.length <= max ? items.join(", ") : `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}

function summarise(model: Model): string[] {
  const out: string[] = [];
  const ep = model.ephemeral;
  if (ep.enabled) {
    const src = ep.sources.length === 0 ? "any source" : listSome(ep.sources.map((s) => s.text));
    out.push(
      `ephemeral ports: ${ep.protocols.join("+")} from ${src} leaving by the external interface with source port ${ep.match.low}-${ep.match.high} is rewritten to ${ep.to.low}-${ep.to.high}`,
    );
  }
  const fw = model.firewall;
  for (const r of fw.published.rules) {
    const who = [...(r.allowLoopback ? ["the host itself"] : []), ...r.allow.map((a) => a.text)].join(" and ");
    out.push(`published port ${r.port}/${r.protocol}: ${r.allowAny ? "open to anyone" : `only from ${who}`}`);
  }
  if (fw.published.default === "deny") out.push("other published ports: not reachable from outside");
  if (fw.containers.blockMetadata) out.push("containers: instance metadata (169.254.169.254, fd00:ec2::254) blocked");
  if (fw.containers.block.length > 0) out.push(`containers: may not reach ${listSome(fw.containers.block.map((b) => b.text))}`);
  if (fw.containers.egressAllow.length > 0) {
    out.push(`containers: may reach only ${listSome(fw.containers.egressAllow.map((b) => b.text))} (and the DNS servers in use) outside the host`);
  }
  for (const f of model.portForwards) out.push(`port forward: ${f.listen}/${f.protocol} on the host to ${hostPort(f.family, f.address, f.port)}`);
  return out;
}

export function planFirewall(model: Model): FirewallPlan {
  const iptables = model.firewall.backend === "iptables" ? [familyRules(model, 4), familyRules(model, 6)] : [];
  return { iptables, nft: nftRuleset(model), summary: summarise(model) };
}
