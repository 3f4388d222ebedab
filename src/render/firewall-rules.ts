// The firewall a config asks for: its rules as data (rule-model.ts), built
// once from the model, and what the script and explain need from them: the
// iptables-restore lines per family and table with their jumps, or the
// nftables ruleset, and one summary sentence per policy. Nothing here is
// shell: the script template embeds the printed lines in quoted
// here-documents, and every value in them was parsed (CIDRs, ports) before it
// got here.
import ipaddr from "ipaddr.js";
import type { Cidr, Family } from "../config/net.js";
import type { Model } from "../model.js";
import { iptablesFamily, iptablesSpec, type FamilyRules } from "./print-iptables.js";
import { nftRuleset, type NftParts, type NftSet } from "./print-nft.js";
import { BRIDGE_PATTERNS, hostPort, impliedFamily, inFamily, NAT6, NOT_EXTERNAL, type ChainId, type Match, type Ports, type ProxyProtocol, type Rule } from "./rule-model.js";

export { NAT6 };
export type { FamilyRules, NftParts };

export interface FirewallPlan {
  /** Every rule, as data: what the printers below were given. */
  rules: Rule[];
  /** iptables-restore lines per family (iptables backend; empty otherwise). */
  iptables: FamilyRules[];
  /** `nft -f` input for the nftables backend (empty when not used). */
  nft: string;
  /**
   * The same table without its nat chains (which need the external
   * interface): what the host loads before Docker and the network are up.
   */
  nftPolicies: string;
  /** The ruleset's pieces, as the script composes them (full, or without nat). */
  nftParts: NftParts;
  /**
   * nftables backend: the port forwards' accepts for iptables' FORWARD (see
   * forwardAccepts). Empty for the iptables backend, whose DOCKINIT-USER has them.
   */
  forwardAccepts: ForwardAccept[];
  /** Human-readable summary lines, one per policy (for `status` and `explain`). */
  summary: string[];
}

/** One port forward's ACCEPT for iptables' FORWARD: its family, and the rule after the chain name (tagged dockinit-forward). */
export interface ForwardAccept {
  family: Family;
  spec: string;
  means: string;
}

/** The comment that marks the nftables backend's accepts in iptables, so apply and remove find every one. */
export const FORWARD_ACCEPT_TAG = "dockinit-forward";

/** Instance metadata, per family: containers must not reach the instance's credentials. */
export const METADATA = { 4: "169.254.169.254/32", 6: "fd00:ec2::254/128" } as const;
const METADATA_CIDR: Record<Family, Cidr> = {
  4: { family: 4, address: "169.254.169.254", prefix: 32, text: METADATA[4] },
  6: { family: 6, address: "fd00:ec2::254", prefix: 128, text: METADATA[6] },
};
const LOOPBACK: Record<Family, Cidr> = {
  4: { family: 4, address: "127.0.0.0", prefix: 8, text: "127.0.0.0/8" },
  6: { family: 6, address: "::1", prefix: 128, text: "::1/128" },
};
const hostCidr = (family: Family, address: string): Cidr => ({ family, address, prefix: family === 4 ? 32 : 128, text: `${address}/${family === 4 ? 32 : 128}` });
const one = (port: number): Ports => ({ low: port, high: port });

/**
 * The protocols whose docker-proxy ports `default: deny` closes on the INPUT
 * path, each with its set. SCTP on the nftables backend only: an ipset
 * bitmap:port matches TCP and UDP packets alone (the kernel's own check), so
 * on the iptables backend dockinit-proxy refuses to start an SCTP proxy
 * rather than leave its port open.
 */
export function proxyProtocols(model: Model): ProxyProtocol[] {
  if (model.firewall.published.default !== "deny") return [];
  return model.firewall.backend === "nftables" ? ["tcp", "udp", "sctp"] : ["tcp", "udp"];
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

/** Literal networks of a family that go into its egress set at render time. */
export function egressEntries(model: Model, family: Family): string[] {
  if (model.firewall.containers.egressAllow.length === 0) return [];
  return [...new Set(model.firewall.containers.egressAllow.filter((c) => c.family === family).map((c) => c.text))];
}

/**
 * The literal DNS servers of a family (daemon.json's `dns`) that go into its
 * DNS set at render time: with egress_allow, containers reach them on port 53
 * (UDP and TCP) only. One the allow-list already holds needs no exception.
 * The host adds the ones it finds at boot (`vpc`).
 */
export function dnsEntries(model: Model, family: Family): string[] {
  const allow = model.firewall.containers.egressAllow.filter((c) => c.family === family);
  if (model.firewall.containers.egressAllow.length === 0) return [];
  const allowed = (address: string) => allow.some((c) => ipaddr.parse(address).match(ipaddr.parse(c.address), c.prefix));
  return [...new Set(model.docker.dns.flatMap((d) => (d.kind === "literal" && d.family === family && !allowed(d.address) ? [d.address] : [])))];
}

/**
 * The families with a DNS set: a literal DNS server of the family, or IPv4
 * with `vpc` (the resolver the host finds at boot, base + 2).
 */
export function dnsFamilies(model: Model): Family[] {
  if (model.firewall.containers.egressAllow.length === 0) return [];
  return ([4, 6] as const).filter((family) => dnsEntries(model, family).length > 0 || (family === 4 && model.docker.dns.some((d) => d.kind === "vpc")));
}

/**
 * Whether traffic routed straight to a container address from outside (no
 * DNAT) is dropped: whenever a published-port policy exists, under either
 * default, since such a route carries the container's port, not the published
 * one the policy names (Docker 28 and later drop it themselves).
 */
export function closesDirectRoutes(model: Model): boolean {
  return model.firewall.published.default === "deny" || model.firewall.published.rules.length > 0;
}


/**
 * The interfaces the nat rules that leave the host match: none with `auto`
 * (every interface is external but those the postrouting chain passes first,
 * see externalHead), else one per configured name.
 */
const outInterfaces = (model: Model): (string | undefined)[] => (model.firewall.externalInterfaces === "auto" ? [undefined] : model.firewall.externalInterfaces);
const oifMatch = (oif: string | undefined): Match[] => (oif === undefined ? [] : [{ oif }]);

/**
 * `external_interface: auto`: postrouting first lets what leaves by loopback,
 * a Docker bridge or a veth go, so every rule after it holds on every other
 * interface, a second ENI or one attached after apply included, with no
 * interface looked up at apply.
 */
function externalHead(model: Model, rest: Rule[]): Rule[] {
  const post = rest.filter((r) => r.chain === "postrouting");
  if (model.firewall.externalInterfaces !== "auto" || post.length === 0) return [];
  // Only for the families that have rules after it (IPv4 sources alone: no IPv6 chain of passes).
  const families = ([4, 6] as const).filter((f) => post.some((r) => inFamily(r, f)));
  const family: Match[] = families.length === 1 ? [{ family: families[0]! }] : [];
  return NOT_EXTERNAL.map((oif) => ({ chain: "postrouting", match: [...family, { oif }], verdict: { pass: true }, means: `leaving by ${oif.replace(/\+$/, "*")}: not an external interface, no rewrite` }));
}

/**
 * The source-port rewrite: a network ACL lets replies back in only to the
 * ports it allows, so connections must leave from them. IPv4 is rewritten
 * always; IPv6 from any source only while Docker NATs IPv6 (the script checks
 * at apply): a routed IPv6 container address must leave unchanged, and a
 * masquerade would put the host's address in its place. Sources listed by
 * CIDR are rewritten as listed, IPv6 ones included.
 */
function ephemeralRules(model: Model): Rule[] {
  const ep = model.ephemeral;
  if (!ep.enabled) return [];
  const out: Rule[] = [];
  for (const oif of outInterfaces(model)) {
    const on = oif === undefined ? "" : ` on ${oif}`;
    for (const proto of ep.protocols) {
      const ports = { sport: ep.match, proto };
      const words = `rewrite ${proto} source ports ${ep.match.low}-${ep.match.high} to ${ep.to.low}-${ep.to.high} on the way out${on}`;
      const verdict = { masquerade: { toPorts: ep.to } };
      if (ep.sources.length === 0) {
        out.push({ chain: "postrouting", match: [{ family: 4 }, ...oifMatch(oif), ports], verdict, means: `${words} (IPv4)` });
        out.push({ chain: "postrouting", match: [{ family: 6 }, ...oifMatch(oif), ports], verdict, means: `${words} (IPv6: loaded while Docker NATs IPv6)`, when: "docker-nat6" });
        continue;
      }
      for (const src of ep.sources) out.push({ chain: "postrouting", match: [{ src }, ...oifMatch(oif), ports], verdict, means: `${words} (from ${src.text})` });
    }
  }
  return out;
}

/**
 * Port forwards, as Docker publishes ports: DNAT for connections arriving
 * from outside (prerouting) and from the host itself (output, not to
 * loopback), and a masquerade so a target beyond the host replies through it.
 */
function forwardNatRules(model: Model): Rule[] {
  const out: Rule[] = [];
  for (const f of model.portForwards) {
    const dnat = { dnat: { family: f.family, address: f.address, port: f.port } };
    const to = hostPort(f.family, f.address, f.port);
    const listen = { dport: one(f.listen), proto: f.protocol };
    out.push({ chain: "prerouting", match: [{ proto: f.protocol }, { localAddress: "dst" }, listen], verdict: dnat, means: `forward host port ${f.listen}/${f.protocol} to ${to}` });
    out.push({
      chain: "output",
      match: [{ dst: LOOPBACK[f.family], not: true }, { proto: f.protocol }, { localAddress: "dst" }, listen],
      verdict: dnat,
      means: `forward host port ${f.listen}/${f.protocol} to ${to} (connections from the host itself)`,
    });
    for (const oif of outInterfaces(model)) {
      out.push({
        chain: "postrouting",
        match: [{ dst: hostCidr(f.family, f.address) }, ...oifMatch(oif), { proto: f.protocol }, { ct: { state: "dnat" } }, { dport: one(f.port), proto: f.protocol }],
        verdict: { masquerade: {} },
        means: `masquerade forwarded connections to ${f.address}${oif === undefined ? "" : ` leaving by ${oif}`} so replies come back through the host`,
      });
    }
  }
  return out;
}

/**
 * The port forwards' own accepts: the DNAT state plus the reply tuple identify
 * exactly these connections. `replies`: the same accept for the reply
 * direction alone.
 */
function forwardAcceptRules(model: Model, replies = false): Rule[] {
  return model.portForwards.map((f) => ({
    chain: "forward",
    match: [{ proto: f.protocol }, { ct: { state: "dnat", replySrc: { family: f.family, address: f.address }, origDstPort: f.listen, replySrcPort: f.port, ...(replies ? { direction: "reply" as const } : {}) } }],
    verdict: { accept: true },
    means: replies ? `replies of port-forward ${f.listen}/${f.protocol} → ${f.address}: accept (Docker's FORWARD would drop them)` : `let port-forward ${f.listen}/${f.protocol} → ${f.address} through, both directions`,
  }));
}

/**
 * The nftables backend's port forwards also cross iptables' FORWARD, where an
 * nftables accept is not final: Docker's iptables firewall drops what it did
 * not publish there (its DROP policy; Docker 28+ also in its DOCKER chain),
 * and so does a DROP policy someone else set. The same accept, for iptables.
 */
function forwardAccepts(model: Model): ForwardAccept[] {
  if (model.firewall.backend !== "nftables") return [];
  return forwardAcceptRules(model).map((rule) => ({ family: impliedFamily(rule) ?? 4, spec: iptablesSpec(rule, FORWARD_ACCEPT_TAG), means: rule.means }));
}

/**
 * The forward filter (iptables: DOCKINIT-USER, jumped from the top of
 * DOCKER-USER; nftables: a forward chain before Docker's) and the chains it
 * jumps to. Every policy judges every packet in the direction the connection
 * was opened (conntrack's ORIGINAL direction), not only the first: replies
 * pass first (one rule, instead of an ORIGINAL match on every policy), no
 * "established" return comes before a drop, and so a flow opened before
 * apply (or before a policy changed) is cut at its next packet. A packet
 * without conntrack (NOTRACK) has no direction, and is judged like the side
 * that opened. Nothing here depends on the external interface, so the
 * policies load before the network and Docker are up.
 */
function forwardRules(model: Model): Rule[] {
  const fw = model.firewall;
  const c = fw.containers;
  const out: Rule[] = [];
  const add = (match: Match[], verdict: Rule["verdict"], means: string, chain: ChainId = "forward") => out.push({ chain, match, verdict, means });
  // A packet conntrack calls invalid has no direction: the ORIGINAL match
  // would never see it, so it would pass the drops below (kube-proxy drops them too).
  add([{ ct: { state: "invalid" } }], { drop: true }, "packets conntrack cannot place in a connection: drop (no direction to judge them by)");
  if (c.blockMetadata) {
    for (const family of [4, 6] as const) add([{ dst: METADATA_CIDR[family] }], { drop: true }, "nothing forwarded reaches instance metadata (containers' credentials)");
  }
  // Every rule from here on judges what the side that opened a connection
  // sends: when there is one, replies pass before it (spliced in below).
  const judgedFrom = out.length;
  for (const dst of c.block) add([{ dst }], { drop: true }, `nothing forwarded reaches ${dst.text}`);
  if (c.egressAllow.length > 0) {
    // Whatever leaves by an interface that is not a Docker bridge (every ENI,
    // a VPN) must go to the allow-list; the sets are filled on the host.
    add([], { jump: "egress" }, "connections opened from this side: check the egress allow-list");
    for (const b of BRIDGE_PATTERNS) add([{ oif: b }], { pass: true }, "to a container: not egress", "egress");
    // The DNS servers in use, as DNS servers: port 53, UDP and TCP, nothing else.
    for (const family of dnsFamilies(model)) {
      for (const proto of ["udp", "tcp"] as const) add([{ dport: one(53), proto }, { set: { kind: "dns", family } }], { pass: true }, `to a DNS server in use, ${proto} port 53: pass`, "egress");
    }
    for (const family of [4, 6] as const) {
      add([{ set: { kind: "egress", family }, not: true }], { drop: true }, "leaving by an interface that is not a Docker bridge: only to the egress allow-list", "egress");
    }
  }
  // Port forwards, after block and egress_allow: a forward opens no path
  // those close (a container connecting to the host's listen port is DNAT'd
  // to the target like anyone else). Docker's FORWARD policy is DROP and its
  // own ACCEPTs only cover its bridges, so these accept for good.
  out.push(...forwardAcceptRules(model));
  // Published ports: matched on the original destination port, since Docker
  // has already rewritten the destination to the container's by forward.
  // Sources are judged by address whatever interface they come by: outside,
  // another container, a second ENI. The host's own connections never cross
  // forward.
  for (const r of fw.published.rules) {
    const port: Match[] = [{ proto: r.protocol }, { ct: { state: "dnat", origDstPort: r.port } }];
    const name = `published port ${r.port}/${r.protocol}`;
    if (r.allowAny) {
      add(port, { pass: true }, `${name}: allow from anyone`);
      continue;
    }
    // A family with none of the listed networks gets the drop alone: a port
    // allowed only from IPv4 networks is closed over IPv6, not left open.
    // Under default deny the drop of every other published port below does it.
    for (const src of r.allow) add([{ src }, ...port], { pass: true }, `${name}: allow from ${src.text}`);
    if (fw.published.default !== "deny") add(port, { drop: true }, `${name}: drop every other source`);
  }
  if (fw.published.default === "deny") {
    // ICMP errors about an allowed connection (fragmentation needed, packet
    // too big) are RELATED to it: path MTU discovery must keep working.
    for (const proto of ["icmp", "ipv6-icmp"] as const) add([{ proto }, { ct: { state: "related" } }], { pass: true }, "ICMP errors about an allowed connection (path MTU discovery): pass");
    add([{ ct: { state: "dnat" } }], { drop: true }, "every other published port: drop (the host itself never crosses forward)");
  } else if (closesDirectRoutes(model)) {
    // Default allow: every other DNAT'd connection passes, so that only what
    // Docker did not DNAT reaches the direct-route check below.
    add([{ ct: { state: "dnat" } }], { pass: true }, "every other published port: allow (default allow)");
  }
  if (closesDirectRoutes(model)) {
    // Routed straight to a container address from outside (no DNAT, since
    // every DNAT was judged above): Docker 27 and older accept it, and it
    // carries the container's port, not the published one a policy names.
    for (const b of BRIDGE_PATTERNS) {
      add([{ oif: b }], { jump: "direct" }, `new traffic to a container without Docker's DNAT (${b}): check where it comes from`);
    }
    for (const b of BRIDGE_PATTERNS) add([{ iif: b }], { pass: true }, "from another container: Docker's own rules decide", "direct");
    add([], { drop: true }, "routed straight to a container address from outside: drop", "direct");
  }
  if (out.length > judgedFrom) {
    // iptables: a RETURN hands a port forward's reply to Docker's FORWARD,
    // whose policy drops it; so its own accept comes first (nftables' accept
    // here is not final anyway: iptables' FORWARD has its own, see forwardAccepts).
    const forwardReplies = model.firewall.backend === "iptables" ? forwardAcceptRules(model, true) : [];
    out.splice(judgedFrom, 0, ...forwardReplies, { chain: "forward", match: [{ ct: { direction: "reply" } }], verdict: { pass: true }, means: "replies: pass (what was let in may answer)" });
  }
  return out;
}

/**
 * The input filter, the docker-proxy path. Docker publishes an IPv4-only
 * container's port on [::] too, through docker-proxy, so that traffic is
 * delivered to a local socket (input) and never crosses forward. The same
 * verdicts hold here, on the port the client asked for.
 */
function inputRules(model: Model): Rule[] {
  const fw = model.firewall;
  const out: Rule[] = [];
  const add = (match: Match[], verdict: Rule["verdict"], means: string) => out.push({ chain: "input", match, verdict, means });
  const deny = proxyProtocols(model).length > 0;
  for (const r of fw.published.rules) {
    const port: Match[] = [{ dport: one(r.port), proto: r.protocol }];
    const name = `published port ${r.port}/${r.protocol} (docker-proxy path)`;
    if (r.allowAny) {
      // Open to anyone: only needs saying before default deny's drop.
      if (deny) add(port, { pass: true }, `${name}: allow from anyone`);
      continue;
    }
    // Its own drop even under default deny: the set below holds a port only
    // once dockinit-proxy has run for it, and Docker 28+ listens before that.
    for (const src of r.allow) add([{ src }, ...port], { pass: true }, `${name}: allow from ${src.text}`);
    add(port, { drop: true }, `${name}: drop every other source`);
  }
  // Unlisted ports under default deny: the ports docker-proxy listens on, put
  // in the set by dockinit-proxy before each proxy starts.
  for (const protocol of proxyProtocols(model)) {
    add([{ set: { kind: "proxy", protocol }, proto: protocol }], { drop: true }, `${protocol} ports docker-proxy listens on: drop every other source`);
  }
  if (out.length === 0) return [];
  // The host itself always passes: its traffic to any of its own addresses
  // arrives on lo. Not by source address: a container with CAP_NET_RAW can
  // send an IPv6 packet with the host's own address as its source (IPv4 drops
  // such a martian; IPv6 has no such check).
  return [
    { chain: "input", match: [{ iif: "lo" }], verdict: { pass: true }, means: "the host itself (its traffic to any of its own addresses arrives on lo): pass" },
    // What a client sends is judged below: replies to the host's own
    // connections from the same local port are not a client's.
    { chain: "input", match: [{ ct: { direction: "reply" } }], verdict: { pass: true }, means: "replies to the host's own connections: pass" },
    ...out,
  ];
}

/** Every rule dockinit loads for a config, in order within each chain. */
export function firewallRules(model: Model): Rule[] {
  const nat = [...forwardNatRules(model), ...ephemeralRules(model)];
  return [...externalHead(model, nat), ...nat, ...(hasPolicies(model) ? [...inputRules(model), ...forwardRules(model)] : [])];
}

/** "a, b, c and 997 more": summaries stay one readable line. */
function listSome(items: string[], max = 4): string {
  return items.length <= max ? items.join(", ") : `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}

/** The external interfaces, in words (status, explain). */
export function externalWords(model: Model): string {
  const ext = model.firewall.externalInterfaces;
  return ext === "auto" ? "every interface but lo, Docker bridges, veths" : ext.length === 1 ? ext[0]! : listSome(ext);
}

function summarise(model: Model): string[] {
  const out: string[] = [`backend ${model.firewall.backend}: ${model.firewall.backendChoice.reason}`];
  const ep = model.ephemeral;
  if (ep.enabled) {
    const src = ep.sources.length === 0 ? "any source" : listSome(ep.sources.map((s) => s.text));
    out.push(
      `ephemeral ports: ${ep.protocols.join("+")} from ${src} out of ${externalWords(model)}, source ports ${ep.match.low}-${ep.match.high} rewritten to ${ep.to.low}-${ep.to.high}${ep.sources.length === 0 ? " (IPv6: if Docker NATs it)" : ""}`,
    );
  }
  const fw = model.firewall;
  for (const r of fw.published.rules) {
    const who = [...(r.allowLoopback ? ["the host itself"] : []), ...r.allow.map((a) => a.text)].join(" and ");
    out.push(`published port ${r.port}/${r.protocol}: ${r.allowAny ? "open to anyone" : `only from ${who}`}`);
  }
  if (fw.published.default === "deny") out.push("other published ports: closed to outside, through DNAT and docker-proxy (IPv6) alike");
  else if (fw.published.rules.some((r) => !r.allowAny)) out.push("published ports: judged alike through Docker's DNAT and docker-proxy (IPv6)");
  // (Under default deny the line above says it: nothing but a listed published port gets in.)
  if (fw.published.default !== "deny" && closesDirectRoutes(model)) out.push("routed straight to a container from outside: dropped");
  if (fw.containers.blockMetadata) out.push("containers: instance metadata (169.254.169.254, fd00:ec2::254) blocked");
  if (fw.containers.block.length > 0) out.push(`containers: may not reach ${listSome(fw.containers.block.map((b) => b.text))}`);
  if (fw.containers.egressAllow.length > 0) {
    out.push(`containers: may reach only ${listSome(fw.containers.egressAllow.map((b) => b.text))} (and the DNS servers in use, on port 53) outside the host`);
  }
  for (const f of model.portForwards) out.push(`port forward: ${f.listen}/${f.protocol} on the host to ${hostPort(f.family, f.address, f.port)}`);
  if (hasPolicies(model)) out.push("policies: in force before dockerd starts, kept when Docker stops");
  return out;
}

/** The sets of `table inet dockinit`: egress allow-lists and DNS servers with their literal entries, docker-proxy's ports. */
export function nftSets(model: Model): NftSet[] {
  const egress = model.firewall.containers.egressAllow.length > 0;
  return [
    ...(egress ? ([4, 6] as const).map((family) => ({ ref: { kind: "egress" as const, family }, elements: egressEntries(model, family) })) : []),
    ...dnsFamilies(model).map((family) => ({ ref: { kind: "dns" as const, family }, elements: dnsEntries(model, family) })),
    ...proxyProtocols(model).map((protocol) => ({ ref: { kind: "proxy" as const, protocol }, elements: [] })),
  ];
}

export function planFirewall(model: Model): FirewallPlan {
  const rules = firewallRules(model);
  const iptables = model.firewall.backend === "iptables" ? [iptablesFamily(rules, 4), iptablesFamily(rules, 6)] : [];
  const nft = model.firewall.backend === "nftables" ? nftRuleset(rules, nftSets(model)) : { full: "", policies: "", parts: { sets: "", nat: "", filter: "" } };
  return { rules, iptables, nft: nft.full, nftPolicies: nft.policies, nftParts: nft.parts, forwardAccepts: forwardAccepts(model), summary: summarise(model) };
}
