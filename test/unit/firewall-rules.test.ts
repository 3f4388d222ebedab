// The rules a config produces, as data: table-driven, one row per policy,
// IPv4 and IPv6. The system tests prove what the rules do to packets; these
// pin which rules exist, so a change to either shows up in review.
import { describe, expect, it } from "vitest";
import { loadConfigString, planFirewall } from "../../src/index.js";
import { explainFirewall } from "../../src/render/explain.js";
import { withBackend } from "../support/render.js";

/** The iptables backend's rules for a config fragment (whatever auto would choose for it). */
function rules(yaml: string, family: 4 | 6, table: "nat" | "filter"): string[] {
  const { model, diagnostics } = loadConfigString(withBackend(`version: 1\ndocker: { daemon: { dns: [amazon] } }\n${yaml}`, "iptables"));
  if (!model) throw new Error(JSON.stringify(diagnostics));
  return planFirewall(model).iptables.find((f) => f.family === family)?.tables.find((t) => t.table === table)?.rules ?? [];
}

const U = "-A DOCKINIT-USER";
const I = "-A DOCKINIT-INPUT";
const O = "-m conntrack --ctstate DNAT";
/**
 * The host itself passes the docker-proxy path first (its traffic to its own
 * addresses arrives on lo; never by source address, which a container can
 * spoof over IPv6), and so do replies: what a client sends is judged.
 */
const HOST = [`${I} -i lo -j RETURN`, `${I} -m conntrack --ctdir REPLY -j RETURN`];
const NO_META = "containers: { block_metadata: false }";
const INVALID = `${U} -m conntrack --ctstate INVALID -j DROP`;
/** Replies pass the forward filter before any rule that judges what the opening side sends. */
const REPLY = `${U} -m conntrack --ctdir REPLY -j RETURN`;
/** Every DNAT judged above it: what reaches a bridge now was routed to a container's address, and only another container may. */
const DIRECT = [`${U} -o docker+ -j DOCKINIT-DIRECT`, `${U} -o br-+ -j DOCKINIT-DIRECT`, "-A DOCKINIT-DIRECT -i docker+ -j RETURN", "-A DOCKINIT-DIRECT -i br-+ -j RETURN", "-A DOCKINIT-DIRECT -j DROP"];
/** Default allow: the published ports no rule names pass, before the direct-route check. */
const OTHER_DNAT = `${U} ${O} -j RETURN`;

/** external_interface: auto — what never counts as an external interface leaves postrouting first. */
const NOT_EXT = ["lo", "docker+", "br-+", "veth+"].map((i) => `-A DOCKINIT-POSTROUTING -o ${i} -j RETURN`);
const FIX = "-p tcp -m tcp --sport 32768:61000 -j MASQUERADE --to-ports 49152-61000";

const cases: { name: string; yaml: string; family: 4 | 6; table: "nat" | "filter"; expected: string[] }[] = [
  {
    name: "ephemeral fix, any source: every interface but lo, Docker's bridges and veths",
    yaml: `firewall: { ${NO_META} }`,
    family: 4,
    table: "nat",
    expected: [...NOT_EXT, `-A DOCKINIT-POSTROUTING ${FIX}`],
  },
  {
    name: "ephemeral fix, any source, IPv6: marked, loaded only while Docker NATs IPv6",
    yaml: `firewall: { ${NO_META} }`,
    family: 6,
    table: "nat",
    expected: [...NOT_EXT, `%NAT6%-A DOCKINIT-POSTROUTING ${FIX}`],
  },
  {
    name: "ephemeral fix, one configured interface (the key as it always was)",
    yaml: `firewall: { ${NO_META}, external_interface: ens5 }`,
    family: 4,
    table: "nat",
    expected: [`-A DOCKINIT-POSTROUTING -o ens5 ${FIX}`],
  },
  {
    name: "ephemeral fix, a list of interfaces and a prefix",
    yaml: `firewall: { ${NO_META}, external_interface: [ens5, ens6, wg+] }`,
    family: 4,
    table: "nat",
    expected: ["ens5", "ens6", "wg+"].map((i) => `-A DOCKINIT-POSTROUTING -o ${i} ${FIX}`),
  },
  {
    name: "ephemeral fix, an IPv6 source listed: rewritten as listed, no mark",
    yaml: `ephemeral_ports: { sources: [172.17.0.0/16, 'fd00:1::/64'] }\nfirewall: { ${NO_META} }`,
    family: 6,
    table: "nat",
    expected: [...NOT_EXT, `-A DOCKINIT-POSTROUTING -s fd00:1::/64 ${FIX}`],
  },
  {
    name: "ephemeral fix, IPv4 sources leave IPv6 alone",
    yaml: `ephemeral_ports: { sources: [172.17.0.0/16] }\nfirewall: { ${NO_META} }`,
    family: 6,
    table: "nat",
    expected: [],
  },
  { name: "metadata blocked by default (v4), in both directions, no interface", yaml: "", family: 4, table: "filter", expected: [INVALID, `${U} -d 169.254.169.254/32 -j DROP`] },
  { name: "metadata blocked by default (v6)", yaml: "", family: 6, table: "filter", expected: [INVALID, `${U} -d fd00:ec2::254/128 -j DROP`] },
  {
    name: "published port from an IPv4 network is closed over IPv6: DNAT and the docker-proxy path",
    yaml: `firewall: { ${NO_META}, published: { rules: [{ port: 5432, allow: [198.51.100.0/24] }] } }`,
    family: 6,
    table: "filter",
    expected: [...HOST, `${I} -p tcp -m tcp --dport 5432 -j DROP`, INVALID, REPLY, `${U} -p tcp ${O} --ctorigdstport 5432 -j DROP`, OTHER_DNAT, ...DIRECT],
  },
  {
    name: "published port allow-list (v4): every packet the client sends is judged, whatever the interface",
    yaml: `firewall: { ${NO_META}, published: { rules: [{ port: 5432, allow: [198.51.100.0/24] }] } }`,
    family: 4,
    table: "filter",
    expected: [
      ...HOST,
      `${I} -s 198.51.100.0/24 -p tcp -m tcp --dport 5432 -j RETURN`,
      `${I} -p tcp -m tcp --dport 5432 -j DROP`,
      INVALID,
      REPLY,
      `${U} -s 198.51.100.0/24 -p tcp ${O} --ctorigdstport 5432 -j RETURN`,
      `${U} -p tcp ${O} --ctorigdstport 5432 -j DROP`,
      // Default allow with a per-port list: a route straight to the container carries its own port, not 5432: dropped too.
      OTHER_DNAT,
      ...DIRECT,
    ],
  },
  {
    name: "default allow, every rule `any`: a published-port policy still closes routes straight to containers",
    yaml: `firewall: { ${NO_META}, published: { rules: [{ port: 443, allow: [any] }] } }`,
    family: 4,
    table: "filter",
    expected: [INVALID, REPLY, `${U} -p tcp ${O} --ctorigdstport 443 -j RETURN`, OTHER_DNAT, ...DIRECT],
  },
  {
    name: "loopback only: the host passes the docker-proxy path, nothing forwarded does",
    yaml: `firewall: { ${NO_META}, published: { rules: [{ port: 2368, allow: [loopback] }] } }`,
    family: 4,
    table: "filter",
    expected: [...HOST, `${I} -p tcp -m tcp --dport 2368 -j DROP`, INVALID, REPLY, `${U} -p tcp ${O} --ctorigdstport 2368 -j DROP`, OTHER_DNAT, ...DIRECT],
  },
  {
    // In FORWARD a restricted port needs no drop of its own: the catch-all after its accepts drops the rest.
    name: "default deny: other DNAT, docker-proxy's ports and traffic routed straight to a container",
    yaml: `firewall: { ${NO_META}, published: { default: deny, rules: [{ port: 443, allow: [any] }, { port: 8080, allow: [198.51.100.0/24] }] } }`,
    family: 4,
    table: "filter",
    expected: [
      ...HOST,
      `${I} -p tcp -m tcp --dport 443 -j RETURN`,
      `${I} -s 198.51.100.0/24 -p tcp -m tcp --dport 8080 -j RETURN`,
      // The docker-proxy path keeps the port's own drop: the set holds a port only once dockinit-proxy ran for it.
      `${I} -p tcp -m tcp --dport 8080 -j DROP`,
      `${I} -p tcp -m set --match-set dockinit-proxy-tcp dst -j DROP`,
      `${I} -p udp -m set --match-set dockinit-proxy-udp dst -j DROP`,
      INVALID,
      REPLY,
      `${U} -p tcp ${O} --ctorigdstport 443 -j RETURN`,
      `${U} -s 198.51.100.0/24 -p tcp ${O} --ctorigdstport 8080 -j RETURN`,
      `${U} -p icmp -m conntrack --ctstate RELATED -j RETURN`,
      `${U} ${O} -j DROP`,
      ...DIRECT,
    ],
  },
  {
    name: "egress allow-list and block: opened-from-this-side traffic on any non-bridge interface",
    yaml: "firewall: { containers: { block_metadata: false, block: [10.0.0.0/8], egress_allow: [198.51.100.0/24] } }",
    family: 4,
    table: "filter",
    expected: [
      INVALID,
      REPLY,
      `${U} -d 10.0.0.0/8 -j DROP`,
      `${U} -j DOCKINIT-EGRESS`,
      "-A DOCKINIT-EGRESS -o docker+ -j RETURN",
      "-A DOCKINIT-EGRESS -o br-+ -j RETURN",
      // The DNS servers in use (the set the script fills), as DNS servers only.
      "-A DOCKINIT-EGRESS -p udp -m udp --dport 53 -m set --match-set dockinit-dns4 dst -j RETURN",
      "-A DOCKINIT-EGRESS -p tcp -m tcp --dport 53 -m set --match-set dockinit-dns4 dst -j RETURN",
      "-A DOCKINIT-EGRESS -m set ! --match-set dockinit-egress4 dst -j DROP",
    ],
  },
  {
    name: "port forward: its accept after block and egress_allow (a forward opens no path they close); its replies accepted before the reply pass, which would hand them to Docker's FORWARD",
    yaml: "firewall: { containers: { block_metadata: false, block: [10.0.0.0/8], egress_allow: [198.51.100.0/24] } }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]",
    family: 4,
    table: "filter",
    expected: [
      INVALID,
      `${U} -p tcp ${O} --ctreplsrc 198.51.100.10 --ctorigdstport 9000 --ctreplsrcport 80 --ctdir REPLY -j ACCEPT`,
      REPLY,
      `${U} -d 10.0.0.0/8 -j DROP`,
      `${U} -j DOCKINIT-EGRESS`,
      `${U} -p tcp ${O} --ctreplsrc 198.51.100.10 --ctorigdstport 9000 --ctreplsrcport 80 -j ACCEPT`,
      "-A DOCKINIT-EGRESS -o docker+ -j RETURN",
      "-A DOCKINIT-EGRESS -o br-+ -j RETURN",
      "-A DOCKINIT-EGRESS -p udp -m udp --dport 53 -m set --match-set dockinit-dns4 dst -j RETURN",
      "-A DOCKINIT-EGRESS -p tcp -m tcp --dport 53 -m set --match-set dockinit-dns4 dst -j RETURN",
      "-A DOCKINIT-EGRESS -m set ! --match-set dockinit-egress4 dst -j DROP",
    ],
  },
  {
    name: "port forward: DNAT in PREROUTING and OUTPUT, masquerade out",
    yaml: "firewall: { containers: { block_metadata: false } }\nephemeral_ports: { enabled: false }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]",
    family: 4,
    table: "nat",
    expected: [
      "-A DOCKINIT-PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 9000 -j DNAT --to-destination 198.51.100.10:80",
      "-A DOCKINIT-OUTPUT ! -d 127.0.0.0/8 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 9000 -j DNAT --to-destination 198.51.100.10:80",
      ...NOT_EXT,
      "-A DOCKINIT-POSTROUTING -d 198.51.100.10/32 -p tcp -m conntrack --ctstate DNAT -m tcp --dport 80 -j MASQUERADE",
    ],
  },
  {
    name: "port forward on configured interfaces: its masquerade on each",
    yaml: "firewall: { containers: { block_metadata: false }, external_interface: [ens5, ens6] }\nephemeral_ports: { enabled: false }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]",
    family: 4,
    table: "nat",
    expected: [
      "-A DOCKINIT-PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 9000 -j DNAT --to-destination 198.51.100.10:80",
      "-A DOCKINIT-OUTPUT ! -d 127.0.0.0/8 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 9000 -j DNAT --to-destination 198.51.100.10:80",
      "-A DOCKINIT-POSTROUTING -d 198.51.100.10/32 -o ens5 -p tcp -m conntrack --ctstate DNAT -m tcp --dport 80 -j MASQUERADE",
      "-A DOCKINIT-POSTROUTING -d 198.51.100.10/32 -o ens6 -p tcp -m conntrack --ctstate DNAT -m tcp --dport 80 -j MASQUERADE",
    ],
  },
];

describe("firewall rules per policy", () => {
  it.each(cases)("$name", ({ yaml, family, table, expected }) => {
    expect(rules(yaml, family, table)).toEqual(expected);
  });

});

/** The chains of dockinit's nftables table: name → rule lines (hook line first); a set: name → its statements. */
function nftChains(yaml: string): Record<string, string[]> {
  const { model, diagnostics } = loadConfigString(`version: 1\ndocker: { daemon: { dns: [amazon] } }\nfirewall:\n  backend: nftables\n${yaml}`);
  if (!model) throw new Error(JSON.stringify(diagnostics));
  const out: Record<string, string[]> = {};
  let current: string[] | undefined;
  for (const line of planFirewall(model).nft.split("\n")) {
    const m = /^\t(?:chain|set) (\S+) \{$/.exec(line);
    // A set is one line: "set NAME { type ...; flags ...; elements = { ... }; }".
    const set = /^\tset (\S+) \{ (.*); \}$/.exec(line);
    if (set?.[1] && set[2]) out[set[1]] = set[2].split("; ");
    else if (m?.[1]) out[m[1]] = current = [];
    else if (line === "\t}") current = undefined;
    else if (current) current.push(line.trim());
  }
  return out;
}

describe("nftables backend: every policy in table inet dockinit, drops before Docker's chains", () => {
  it("published ports: allow-lists and default deny on the original destination port, accepts only end dockinit's chain", () => {
    const c = nftChains("  published:\n    default: deny\n    rules:\n      - { port: 8080, allow: [203.0.113.0/24, 2001:db8:20::50] }\n      - { port: 2368, allow: [loopback] }\n  containers: { block_metadata: false }");
    const P = "meta l4proto tcp ct status dnat ct original proto-dst";
    expect(c.forward).toEqual([
      "type filter hook forward priority filter - 10; policy accept;",
      "ct state invalid drop",
      "ct direction reply accept",
      `ip saddr 203.0.113.0/24 ${P} 8080 accept`,
      `ip6 saddr 2001:db8:20::50/128 ${P} 8080 accept`,
      "meta l4proto icmp ct state related accept",
      "meta l4proto ipv6-icmp ct state related accept",
      "ct status dnat drop",
      'oifname "docker*" jump direct',
      'oifname "br-*" jump direct',
    ]);
    // Routed straight to a container from outside: dropped unless it comes from a bridge.
    expect(c.direct).toEqual(['iifname "docker*" return', 'iifname "br-*" return', "drop"]);
    // The docker-proxy path: the same verdicts on the port the client asked for.
    expect(c.input).toEqual([
      "type filter hook input priority filter - 10; policy accept;",
      'iifname "lo" accept',
      "ct direction reply accept",
      "ip saddr 203.0.113.0/24 tcp dport 8080 accept",
      "ip6 saddr 2001:db8:20::50/128 tcp dport 8080 accept",
      "tcp dport 8080 drop",
      "tcp dport 2368 drop",
      "tcp dport @proxy_tcp drop",
      "udp dport @proxy_udp drop",
      // nftables matches SCTP ports in a set (an ipset bitmap:port does not).
      "sctp dport @proxy_sctp drop",
    ]);
    expect(c.proxy_tcp).toEqual(["type inet_service"]);
    expect(c.proxy_sctp).toEqual(["type inet_service"]);
  });

  it("egress allow-list: one interval set per family, any non-bridge interface; the literal DNS servers in a set of their own, reached on port 53 only", () => {
    const c = nftChains("  containers: { block_metadata: false, egress_allow: [198.51.100.0/24] }");
    expect(c.egress4).toEqual(["type ipv4_addr", "flags interval", "auto-merge", "elements = { 198.51.100.0/24 }"]);
    expect(c.egress6).toEqual(["type ipv6_addr", "flags interval", "auto-merge"]);
    expect(c.dns4).toEqual(["type ipv4_addr", "elements = { 169.254.169.253 }"]);
    // No IPv6 DNS server, none found at boot: no set, no rule.
    expect(c.dns6).toBeUndefined();
    expect(c.forward?.slice(2)).toEqual(["ct direction reply accept", "jump egress"]);
    expect(c.egress).toEqual([
      'oifname "docker*" return',
      'oifname "br-*" return',
      "udp dport 53 ip daddr @dns4 return",
      "tcp dport 53 ip daddr @dns4 return",
      "ip daddr != @egress4 drop",
      "ip6 daddr != @egress6 drop",
    ]);
  });

  it("a DNS server the allow-list already holds needs no port-53 exception; `vpc` gets an IPv4 DNS set the host fills at apply", () => {
    const held = nftChains("  containers: { block_metadata: false, egress_allow: [169.254.169.253/32, 198.51.100.0/24] }");
    expect(held.dns4).toBeUndefined();
    expect(held.egress).toEqual(['oifname "docker*" return', 'oifname "br-*" return', "ip daddr != @egress4 drop", "ip6 daddr != @egress6 drop"]);
    const { model } = loadConfigString("version: 1\ndocker: { daemon: { dns: [vpc] } }\nfirewall: { backend: nftables, containers: { egress_allow: [198.51.100.0/24] } }\n");
    const nft = planFirewall(model!).nft;
    expect(nft).toContain("\tset dns4 { type ipv4_addr; }\n");
    expect(nft).toContain("\t\tudp dport 53 ip daddr @dns4 return\n");
    expect(nft).not.toContain("dns6");
  });

  it("port forwards: DNAT before Docker's (dstnat - 10), masquerade first in postrouting, let through after metadata, block and egress_allow", () => {
    const c = nftChains("  containers: { block_metadata: true, block: [10.0.0.0/8], egress_allow: [198.51.100.0/24] }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]");
    expect(c.prerouting).toEqual(["type nat hook prerouting priority dstnat - 10; policy accept;", "fib daddr type local tcp dport 9000 dnat ip to 198.51.100.10:80"]);
    expect(c.output).toEqual(["type nat hook output priority -110; policy accept;", "ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 9000 dnat ip to 198.51.100.10:80"]);
    expect(c.postrouting).toEqual([
      "type nat hook postrouting priority srcnat - 10; policy accept;",
      'oifname "lo" accept',
      'oifname "docker*" accept',
      'oifname "br-*" accept',
      'oifname "veth*" accept',
      "ip daddr 198.51.100.10/32 ct status dnat tcp dport 80 masquerade",
      "meta nfproto ipv4 tcp sport 32768-61000 masquerade to :49152-61000",
      "%NAT6%meta nfproto ipv6 tcp sport 32768-61000 masquerade to :49152-61000",
    ]);
    // No reply accept of its own: an nftables accept is not final, iptables' FORWARD has the forward's accept (forwardAccepts).
    expect(c.forward?.slice(1)).toEqual([
      "ct state invalid drop",
      "ip daddr 169.254.169.254/32 drop",
      "ip6 daddr fd00:ec2::254/128 drop",
      "ct direction reply accept",
      "ip daddr 10.0.0.0/8 drop",
      "jump egress",
      "meta l4proto tcp ct status dnat ct reply ip saddr 198.51.100.10 ct original proto-dst 9000 ct reply proto-src 80 accept",
    ]);
  });

  it("the ruleset loaded before Docker has the policies and sets but no nat chain, nothing that depends on Docker's IPv6 NAT", () => {
    const { model } = loadConfigString("version: 1\nfirewall: { backend: nftables, published: { default: deny }, containers: { egress_allow: [198.51.100.0/24] } }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]\n");
    const plan = planFirewall(model!);
    expect(plan.nftPolicies).not.toContain("%NAT6%");
    expect(plan.nftPolicies).not.toMatch(/hook (prerouting|postrouting|output)/);
    expect(plan.nftPolicies).toContain("hook forward");
    expect(plan.nftPolicies).toContain("hook input");
    for (const set of ["egress4", "egress6", "proxy_tcp", "proxy_udp", "proxy_sctp"]) expect(plan.nftPolicies).toContain(`set ${set} {`);
    expect(plan.nft).toContain("hook postrouting");
  });
});

describe("dockinit explain", () => {
  it("puts plain words next to every generated rule", () => {
    const { model } = loadConfigString(
      "version: 1\nfirewall:\n  backend: iptables\n  external_interface: ens5\n  published: { default: deny, rules: [{ port: 8080, allow: [203.0.113.0/24, 2001:db8:10::/48] }] }\n  containers: { egress_allow: [198.51.100.0/24] }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]\n",
    );
    const text = explainFirewall(model!);
    expect(text).toContain("- published port 8080/tcp: only from 203.0.113.0/24 and 2001:db8:10::/48");
    for (const line of text.split("\n").filter((l) => l.startsWith("-A DOCKINIT"))) {
      expect(line, line).toMatch(/ {4}# \S/);
    }
    expect(text).not.toContain("%NAT6%");
    expect(text).toContain("(backend iptables, external interfaces: ens5)");
    expect(text).toContain("-A DOCKINIT-POSTROUTING -o ens5 -p tcp -m tcp --sport 32768:61000 -j MASQUERADE --to-ports 49152-61000    # rewrite tcp source ports 32768-61000 to 49152-61000 on the way out on ens5 (IPv6: loaded while Docker NATs IPv6)\n");
    expect(text).toContain("-A DOCKINIT-USER -s 203.0.113.0/24 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -j RETURN    # published port 8080/tcp: allow from 203.0.113.0/24\n");
  });
});

describe("dockinit explain, nftables backend", () => {
  it("lists the table as loaded, every rule followed by its words as an nft comment", () => {
    const { model } = loadConfigString(
      "version: 1\nfirewall:\n  backend: nftables\n  external_interface: ens5\n  published: { default: deny, rules: [{ port: 8080, allow: [203.0.113.0/24] }] }\n  containers: { egress_allow: [198.51.100.0/24] }\n",
    );
    const text = explainFirewall(model!);
    const table = text.slice(text.indexOf("table inet dockinit {"));
    const ruleLines = table.split("\n").filter((l) => l.startsWith("\t\t") && !/^\t\t(type|flags|auto-merge|elements)\b/.test(l));
    expect(ruleLines.length).toBeGreaterThan(10);
    for (const line of ruleLines) expect(line, line).toMatch(/\S {4}# \S/);
    // Without the comments it is exactly what the script loads.
    expect(table.replace(/ {4}# .*$/gm, "")).toBe(planFirewall(model!).nft.replaceAll("%NAT6%", ""));
    expect(text).not.toContain("## iptables");
    expect(text).toContain('oifname "docker*" return    # to a container: not egress');
  });
});

describe("the nftables backend's port forwards: their accept for iptables' FORWARD", () => {
  it("is the forward's exact accept (DNAT state + reply tuple), tagged as dockinit's, one per forward in its family, and explain lists it with its words", () => {
    const { model } = loadConfigString(
      "version: 1\nport_forwards:\n  - { listen: 9000, to: '198.51.100.10:80' }\n  - { listen: 9000, to: '[2001:db8::10]:80' }\n  - { listen: 53, to: '198.51.100.53:5353', protocol: udp }\n",
    );
    const plan = planFirewall(model!);
    expect(model!.firewall.backend).toBe("nftables");
    const TAG = "-m comment --comment dockinit-forward -j ACCEPT";
    expect(plan.forwardAccepts.map((a) => `${a.family} ${a.spec}`)).toEqual([
      `4 -p tcp -m conntrack --ctstate DNAT --ctreplsrc 198.51.100.10 --ctorigdstport 9000 --ctreplsrcport 80 ${TAG}`,
      `6 -p tcp -m conntrack --ctstate DNAT --ctreplsrc 2001:db8::10 --ctorigdstport 9000 --ctreplsrcport 80 ${TAG}`,
      `4 -p udp -m conntrack --ctstate DNAT --ctreplsrc 198.51.100.53 --ctorigdstport 53 --ctreplsrcport 5353 ${TAG}`,
    ]);
    const text = explainFirewall(model!);
    expect(text).toContain("\n## iptables (first in DOCKER-USER when FORWARD jumps there, else first in a FORWARD that drops)\n");
    expect(text).toContain(`ip6tables -I DOCKER-USER -p tcp -m conntrack --ctstate DNAT --ctreplsrc 2001:db8::10 --ctorigdstport 9000 --ctreplsrcport 80 ${TAG}    # let port-forward 9000/tcp → 2001:db8::10 through, both directions\n`);
  });

  it("the iptables backend has none (its DOCKINIT-USER holds the same accept)", () => {
    const { model } = loadConfigString("version: 1\nfirewall: { backend: iptables }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]\n");
    expect(planFirewall(model!).forwardAccepts).toEqual([]);
  });
});
