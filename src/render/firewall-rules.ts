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
  /**
   * The same table without its nat chains (which need the external
   * interface): what the host loads before Docker and the network are up.
   */
  nftPolicies: string;
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

/**
 * Docker's bridges: docker0 (and docker_gwbridge) and the br-<id> of every
 * user network. Traffic from or to one of them is a container's; every other
 * interface (each ENI, a VPN, a tunnel) is outside. iptables' "+" and nft's
 * "*" are the same prefix match.
 */
export const BRIDGE_PATTERNS = ["docker+", "br-+"] as const;
const nftPattern = (p: string) => `"${p.replace("+", "*")}"`;

/** The set of ports docker-proxy listens on, filled by dockinit-proxy before each proxy starts. */
export const proxySet = (protocol: "tcp" | "udp") => `dockinit-proxy-${protocol}`;
export const nftProxySet = (protocol: "tcp" | "udp") => `proxy_${protocol}`;

/** The protocols whose docker-proxy ports `default: deny` closes on the INPUT path. */
export function proxyProtocols(model: Model): ("tcp" | "udp")[] {
  return model.firewall.published.default === "deny" ? ["tcp", "udp"] : [];
}

/**
 * DOCKINIT-USER, jumped from the top of DOCKER-USER (notes 04, 05), and the
 * chains it jumps to. Every policy judges every packet in the direction the
 * connection was opened (--ctdir ORIGINAL), not only the first: a flow opened
 * before apply (or before a policy changed) is cut at its next packet, and no
 * "established" return comes before a drop. Replies (REPLY direction) to what
 * was let in pass untouched. Nothing here depends on the external interface,
 * so the policies load before the network and Docker are up.
 */
function userChainRules(model: Model, family: Family): { chains: string[]; rules: string[] } {
  const fw = model.firewall;
  const chains = ["DOCKINIT-USER"];
  const out: string[] = [];
  const extra: string[] = [];
  const add = (rule: string) => out.push(`-A DOCKINIT-USER ${rule}`);
  const ORIG = "--ctdir ORIGINAL";
  // Port forwards first, both directions: Docker's FORWARD policy is DROP and
  // its own ACCEPTs only cover its bridges. The DNAT state plus the reply
  // tuple identify exactly these connections.
  for (const f of forwardsOf(model, family)) {
    add(`-p ${f.protocol} -m conntrack --ctstate DNAT --ctreplsrc ${iptablesAddress(family, f.address)} --ctorigdstport ${f.listen} --ctreplsrcport ${f.port} -j ACCEPT`);
  }
  const c = fw.containers;
  // A packet conntrack calls invalid has no direction: --ctdir would never
  // match it, so it would pass the drops below (kube-proxy drops them too).
  add("-m conntrack --ctstate INVALID -j DROP");
  if (c.blockMetadata) add(`-d ${METADATA[family]} -j DROP`);
  for (const dst of c.block.filter((b) => b.family === family)) add(`${addrMatch("-d", dst)}-m conntrack ${ORIG} -j DROP`);
  if (c.egressAllow.length > 0) {
    // Whatever leaves by an interface that is not a Docker bridge (every ENI,
    // a VPN) must go to the allow-list; the set is filled on the host.
    chains.push("DOCKINIT-EGRESS");
    add(`-m conntrack ${ORIG} -j DOCKINIT-EGRESS`);
    for (const b of BRIDGE_PATTERNS) extra.push(`-A DOCKINIT-EGRESS -o ${b} -j RETURN`);
    extra.push(`-A DOCKINIT-EGRESS -m set ! --match-set ${egressSet(family)} dst -j DROP`);
  }
  // Published ports: matched on the original destination port, since Docker
  // has already rewritten the destination to the container's by FORWARD.
  // Sources are judged by address whatever interface they come by: outside,
  // another container, a second ENI. The host's own connections never cross
  // FORWARD.
  for (const r of fw.published.rules) {
    const port = `-p ${r.protocol} -m conntrack --ctstate DNAT --ctorigdstport ${r.port} ${ORIG}`;
    if (r.allowAny) {
      add(`${port} -j RETURN`);
      continue;
    }
    // A family with none of the listed networks gets the drop alone: a port
    // allowed only from IPv4 networks is closed over IPv6, not left open.
    for (const src of r.allow.filter((a) => a.family === family)) add(`${addrMatch("-s", src)}${port} -j RETURN`);
    add(`${port} -j DROP`);
  }
  if (fw.published.default === "deny") {
    // ICMP errors about an allowed connection (fragmentation needed, packet
    // too big) are RELATED to it: path MTU discovery must keep working.
    add(`-p ${family === 4 ? "icmp" : "ipv6-icmp"} -m conntrack --ctstate RELATED -j RETURN`);
    add(`-m conntrack --ctstate DNAT ${ORIG} -j DROP`);
    // Routed straight to a container address from outside (no DNAT): Docker
    // 27 and older accept it.
    chains.push("DOCKINIT-DIRECT");
    for (const b of BRIDGE_PATTERNS) add(`-o ${b} -m conntrack ! --ctstate DNAT ${ORIG} -j DOCKINIT-DIRECT`);
    for (const b of BRIDGE_PATTERNS) extra.push(`-A DOCKINIT-DIRECT -i ${b} -j RETURN`);
    extra.push("-A DOCKINIT-DIRECT -j DROP");
  }
  return { chains, rules: [...out, ...extra] };
}

/**
 * DOCKINIT-INPUT, jumped from the top of INPUT: the docker-proxy path. Docker
 * publishes an IPv4-only container's port on [::] too, through docker-proxy,
 * so that traffic is delivered to a local socket (INPUT) and never crosses
 * FORWARD. The same verdicts hold here, on the port the client asked for.
 */
function inputChainRules(model: Model, family: Family): string[] {
  const fw = model.firewall;
  const out: string[] = [];
  const add = (rule: string) => out.push(`-A DOCKINIT-INPUT ${rule}`);
  // The host itself (loopback, or any of its own addresses) always passes.
  add("-i lo -j RETURN");
  add("-m addrtype --src-type LOCAL -j RETURN");
  const deny = proxyProtocols(model).length > 0;
  // What the client sends (--ctdir ORIGINAL): replies to the host's own
  // connections from the same local port are not a client's.
  const orig = "-m conntrack --ctdir ORIGINAL";
  for (const r of fw.published.rules) {
    const port = `-p ${r.protocol} -m ${r.protocol} --dport ${r.port} ${orig}`;
    if (r.allowAny) {
      // Open to anyone: only needs saying before default deny's drop.
      if (deny) add(`${port} -j RETURN`);
      continue;
    }
    for (const src of r.allow.filter((a) => a.family === family)) add(`${addrMatch("-s", src)}${port} -j RETURN`);
    add(`${port} -j DROP`);
  }
  // Unlisted ports under default deny: the ports docker-proxy listens on, put
  // in the set by dockinit-proxy before each proxy starts.
  for (const proto of proxyProtocols(model)) add(`-p ${proto} -m set --match-set ${proxySet(proto)} dst ${orig} -j DROP`);
  return out.length > 2 ? out : [];
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
    const user = userChainRules(model, family);
    const input = inputChainRules(model, family);
    const filter: TableRules = { table: "filter", chains: [], rules: [], jumps: [] };
    if (input.length > 0) {
      filter.chains.push("DOCKINIT-INPUT");
      filter.rules.push(...input);
      filter.jumps.push(jump("INPUT", "DOCKINIT-INPUT"));
    }
    filter.chains.push(...user.chains);
    filter.rules.push(...user.rules);
    filter.jumps.push(jump("DOCKER-USER", "DOCKINIT-USER"));
    tables.push(filter);
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
function nftRuleset(model: Model): { full: string; policies: string } {
  const ep = model.ephemeral;
  if (model.firewall.backend !== "nftables") return { full: "", policies: "" };
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

  // The forward filter, in the order of the iptables backend's DOCKINIT-USER:
  // every policy judges each packet in the original direction, so a flow
  // opened before apply is cut; replies to what was let in pass.
  const orig = "ct direction original";
  const notBridge = (dir: "iifname" | "oifname") => BRIDGE_PATTERNS.map((b) => `${dir} != ${nftPattern(b)}`).join(" ");
  const drops: string[] = [];
  if (hasPolicies(model)) drops.push("\t\tct state invalid drop");
  if (c.blockMetadata) drops.push(`\t\tip daddr ${METADATA[4]} drop`, `\t\tip6 daddr ${METADATA[6]} drop`);
  for (const b of c.block) drops.push(`\t\t${orig} ${nftAddr(b.family, "daddr")} ${b.text} drop`);
  if (c.egressAllow.length > 0) {
    for (const family of families) drops.push(`\t\t${orig} ${notBridge("oifname")} ${nftAddr(family, "daddr")} != @${nftEgressSet(family)} drop`);
  }
  // Published ports: matched on the original destination port (Docker's DNAT
  // at dstnat has already rewritten the destination when forward runs).
  for (const r of fw.published.rules) {
    const port = `${orig} meta l4proto ${r.protocol} ct status dnat ct original proto-dst ${r.port}`;
    if (r.allowAny) {
      drops.push(`\t\t${port} accept`);
      continue;
    }
    for (const src of r.allow) drops.push(`\t\t${port} ${nftAddr(src.family, "saddr")} ${src.text} accept`);
    drops.push(`\t\t${port} drop`);
  }
  if (fw.published.default === "deny") {
    drops.push("\t\tmeta l4proto { icmp, ipv6-icmp } ct state related accept");
    drops.push(`\t\t${orig} ct status dnat drop`);
    // Routed straight to a container address from outside (no DNAT).
    for (const b of BRIDGE_PATTERNS) drops.push(`\t\t${orig} ct status & dnat == 0 oifname ${nftPattern(b)} ${notBridge("iifname")} drop`);
  }
  const forward = drops.length > 0 || forwardAccepts.length > 0 ? [...forwardAccepts, ...drops] : [];

  // The docker-proxy path (IPv6 to an IPv4-only container is Docker's
  // default): delivered to a local socket, so judged in input.
  const input: string[] = [];
  for (const r of fw.published.rules) {
    const port = `ct direction original meta l4proto ${r.protocol} th dport ${r.port}`;
    if (r.allowAny) {
      if (proxyProtocols(model).length > 0) input.push(`\t\t${port} accept`);
      continue;
    }
    for (const src of r.allow) input.push(`\t\t${port} ${nftAddr(src.family, "saddr")} ${src.text} accept`);
    input.push(`\t\t${port} drop`);
  }
  for (const proto of proxyProtocols(model)) input.push(`\t\tct direction original meta l4proto ${proto} th dport @${nftProxySet(proto)} drop`);
  const inputChain = input.length > 0 ? ['\t\tiif "lo" accept', "\t\tfib saddr type local accept", ...input] : [];
  for (const proto of proxyProtocols(model)) sets.push(`\tset ${nftProxySet(proto)} {`, "\t\ttype inet_service", "\t}");

  const chain = (name: string, hook: string, rules: string[]) =>
    rules.length > 0 ? [`\tchain ${name} {`, `\t\ttype ${hook}; policy accept;`, ...rules, "\t}"] : [];
  // filter - 10: before Docker's filter-FORWARD (Docker 29) and iptables'
  // FORWARD/INPUT (priority filter); a drop here is final whatever they accept.
  const filterChains = [
    ...chain("input", "filter hook input priority filter - 10", inputChain),
    ...chain("forward", "filter hook forward priority filter - 10", forward),
  ];
  const policies = ["table inet dockinit {", ...sets, ...filterChains, "}", ""].join("\n");
  // srcnat - 10: an nftables nat chain at a lower priority runs before
  // iptables' nat POSTROUTING and Docker 29's nat-POSTROUTING (priority
  // srcnat), and the first chain that sets up a NAT binding for a connection
  // wins, so Docker's MASQUERADE can never shadow this rule, however Docker
  // re-orders its own chains.
  const full = [
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
    ...filterChains,
    "}",
    "",
  ].join("\n");
  return { full, policies };
}

/** "a, b, c and 997 more": summaries stay one readable line. */
function listSome(items: string[], max = 4): string {
  return items.length <= max ? items.join(", ") : `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}

function summarise(model: Model): string[] {
  const out: string[] = [`backend ${model.firewall.backend}: ${model.firewall.backendChoice.reason}`];
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
  if (fw.published.rules.some((r) => !r.allowAny) || fw.published.default === "deny") {
    out.push("published ports: the same verdict for IPv6 through docker-proxy (INPUT) as for Docker's DNAT (FORWARD), every packet judged");
  }
  if (fw.published.default === "deny") {
    out.push("other published ports: not reachable from outside (DNAT, docker-proxy's ports, and traffic routed straight to a container address)");
  }
  if (fw.containers.blockMetadata) out.push("containers: instance metadata (169.254.169.254, fd00:ec2::254) blocked");
  if (fw.containers.block.length > 0) out.push(`containers: may not reach ${listSome(fw.containers.block.map((b) => b.text))}`);
  if (fw.containers.egressAllow.length > 0) {
    out.push(`containers: may reach only ${listSome(fw.containers.egressAllow.map((b) => b.text))} (and the DNS servers in use) outside the host`);
  }
  for (const f of model.portForwards) out.push(`port forward: ${f.listen}/${f.protocol} on the host to ${hostPort(f.family, f.address, f.port)}`);
  if (hasPolicies(model)) out.push("policies: loaded before dockerd starts (docker.service drop-in), never removed when Docker stops");
  return out;
}

export function planFirewall(model: Model): FirewallPlan {
  const iptables = model.firewall.backend === "iptables" ? [familyRules(model, 4), familyRules(model, 6)] : [];
  const nft = nftRuleset(model);
  return { iptables, nft: nft.full, nftPolicies: nft.policies, summary: summarise(model) };
}
