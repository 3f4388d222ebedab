// The rule sets dockinit-firewall loads, generated as data at render time:
// iptables-restore lines per family and table, the jumps that must sit first
// in the built-in chains, and the equivalent nftables ruleset. Nothing here is
// shell: the script template embeds these lines in quoted here-documents, and
// every value in them was parsed (CIDRs, ports) before it got here.
// iptables rules are written in iptables-save's canonical form (option order
// -s -d -i -o -p, then matches, then the target), so the script can compare a
// saved chain with them line for line (status, and apply's no-op fast path).
import type { Family } from "../config/net.js";
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

function ephemeralRules(model: Model, family: Family): string[] {
  const ep = model.ephemeral;
  if (!ep.enabled) return [];
  const sources = ep.sources.length === 0 ? [undefined] : ep.sources.filter((s) => s.family === family);
  if (sources.length === 0) return [];
  const out: string[] = [];
  for (const proto of ep.protocols) {
    for (const src of sources) {
      const s = src ? ` -s ${src.text}` : "";
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
    const to = `-j DNAT --to-destination ${hostPort(family, f.address, f.port)}`;
    const match = `-p ${f.protocol} -m addrtype --dst-type LOCAL -m ${f.protocol} --dport ${f.listen}`;
    prerouting.push(`-A DOCKINIT-PREROUTING ${match} ${to}`);
    output.push(`-A DOCKINIT-OUTPUT ${notLoopback} ${match} ${to}`);
    // A target beyond the host must send its replies back through us.
    postrouting.push(
      `-A DOCKINIT-POSTROUTING -d ${hostCidr(family, f.address)} -o ${EXT_IF} -p ${f.protocol} -m conntrack --ctstate DNAT -m ${f.protocol} --dport ${f.port} -j MASQUERADE`,
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
    add(`-p ${f.protocol} -m conntrack --ctstate DNAT --ctreplsrc ${f.address} --ctorigdstport ${f.listen} --ctreplsrcport ${f.port} -j ACCEPT`);
  }
  // Replies to connections already allowed go on to Docker's rules untouched.
  add("-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN");
  const c = fw.containers;
  if (c.blockMetadata) add(`-d ${METADATA[family]} -j DROP`);
  for (const dst of c.block.filter((b) => b.family === family)) add(`-d ${dst.text} ! -i ${EXT_IF} -j DROP`);
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
    for (const src of r.allow.filter((a) => a.family === family)) add(`-s ${src.text} -i ${EXT_IF} ${port} -j RETURN`);
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

function nftRuleset(model: Model): string {
  const ep = model.ephemeral;
  if (model.firewall.backend !== "nftables") return "";
  const lines: string[] = [];
  for (const proto of ep.enabled ? ep.protocols : []) {
    const bySource = ep.sources.length === 0 ? [""] : ep.sources.map((s) => `${s.family === 4 ? "ip" : "ip6"} saddr ${s.text} `);
    for (const src of bySource) {
      lines.push(`\t\toifname "${EXT_IF}" ${src}${proto} sport ${ep.match.low}-${ep.match.high} masquerade to :${ep.to.low}-${ep.to.high}`);
    }
  }
  // Drops are final in nftables (an accept is not: Docker's chains would
  // still see the packet), so container blocks are drops at filter - 10.
  const c = model.firewall.containers;
  const forward: string[] = [];
  if (c.blockMetadata) forward.push(`\t\tip daddr ${METADATA[4]} drop`, `\t\tip6 daddr ${METADATA[6]} drop`);
  for (const b of c.block) forward.push(`\t\tiifname != "${EXT_IF}" ${b.family === 4 ? "ip" : "ip6"} daddr ${b.text} drop`);
  const forwardChain =
    forward.length > 0 ? ["\tchain forward {", "\t\ttype filter hook forward priority filter - 10; policy accept;", ...forward, "\t}"] : [];
  // srcnat - 10: an nftables nat chain at a lower priority runs before
  // iptables' nat POSTROUTING (priority srcnat), and the first chain that sets
  // up a NAT binding for a connection wins, so Docker's MASQUERADE can never
  // shadow this rule, however Docker re-orders its own chains.
  return [
    "table inet dockinit {",
    "\tchain postrouting {",
    "\t\ttype nat hook postrouting priority srcnat - 10; policy accept;",
    ...lines,
    "\t}",
    ...forwardChain,
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
