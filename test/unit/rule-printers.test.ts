// The printers, one typed rule at a time: the same Rule printed for
// iptables-restore (iptables-save's canonical form) and for nft. Table-driven,
// no root: the packet tests prove what the printed rules do.
import { describe, expect, it } from "vitest";
import type { Cidr } from "../../src/config/net.js";
import { iptablesLine } from "../../src/render/print-iptables.js";
import { nftLine } from "../../src/render/print-nft.js";
import { inFamily, type Rule } from "../../src/render/rule-model.js";
import { loadConfigString, planFirewall } from "../../src/index.js";

const v4: Cidr = { family: 4, address: "203.0.113.0", prefix: 24, text: "203.0.113.0/24" };
const v6: Cidr = { family: 6, address: "::ffff:c000:201", prefix: 128, text: "::ffff:c000:201/128" };
const means = "words";

const rows: { name: string; rule: Rule; iptables: string; nft: string }[] = [
  {
    name: "source-port rewrite on a configured interface",
    rule: { chain: "postrouting", match: [{ oif: "ens5" }, { sport: { low: 32768, high: 61000 }, proto: "udp" }], verdict: { masquerade: { toPorts: { low: 49152, high: 61000 } } }, means },
    iptables: "-A DOCKINIT-POSTROUTING -o ens5 -p udp -m udp --sport 32768:61000 -j MASQUERADE --to-ports 49152-61000",
    nft: 'oifname "ens5" udp sport 32768-61000 masquerade to :49152-61000',
  },
  {
    name: "IPv4's rewrite on every external interface: the family in nft, the table in iptables",
    rule: { chain: "postrouting", match: [{ family: 4 }, { sport: { low: 32768, high: 61000 }, proto: "tcp" }], verdict: { masquerade: { toPorts: { low: 49152, high: 61000 } } }, means },
    iptables: "-A DOCKINIT-POSTROUTING -p tcp -m tcp --sport 32768:61000 -j MASQUERADE --to-ports 49152-61000",
    nft: "meta nfproto ipv4 tcp sport 32768-61000 masquerade to :49152-61000",
  },
  {
    name: "IPv6's rewrite, loaded only while Docker NATs IPv6: the line carries the script's mark",
    rule: { chain: "postrouting", match: [{ family: 6 }, { oif: "ens+" }, { sport: { low: 32768, high: 61000 }, proto: "tcp" }], verdict: { masquerade: { toPorts: { low: 49152, high: 61000 } } }, means, when: "docker-nat6" },
    iptables: "%NAT6%-A DOCKINIT-POSTROUTING -o ens+ -p tcp -m tcp --sport 32768:61000 -j MASQUERADE --to-ports 49152-61000",
    nft: '%NAT6%meta nfproto ipv6 oifname "ens*" tcp sport 32768-61000 masquerade to :49152-61000',
  },
  {
    name: "not an external interface: accept ends dockinit's nat base chain (Docker's still runs)",
    rule: { chain: "postrouting", match: [{ oif: "veth+" }], verdict: { pass: true }, means },
    iptables: "-A DOCKINIT-POSTROUTING -o veth+ -j RETURN",
    nft: 'oifname "veth*" accept',
  },
  {
    name: "basic options hoisted in -s -d -i -o -p order, whatever the rule's order",
    rule: { chain: "postrouting", match: [{ oif: "ens5" }, { src: v4 }, { sport: { low: 1, high: 1 }, proto: "tcp" }], verdict: { masquerade: {} }, means },
    iptables: "-A DOCKINIT-POSTROUTING -s 203.0.113.0/24 -o ens5 -p tcp -m tcp --sport 1 -j MASQUERADE",
    nft: 'oifname "ens5" ip saddr 203.0.113.0/24 tcp sport 1 masquerade',
  },
  {
    name: "IPv4-mapped IPv6 as glibc prints it, DNAT to a bracketed address",
    rule: { chain: "prerouting", match: [{ proto: "tcp" }, { localAddress: "dst" }, { dport: { low: 9000, high: 9000 }, proto: "tcp" }], verdict: { dnat: { family: 6, address: "::ffff:c000:201", port: 80 } }, means },
    iptables: "-A DOCKINIT-PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 9000 -j DNAT --to-destination [::ffff:192.0.2.1]:80",
    nft: "fib daddr type local tcp dport 9000 dnat ip6 to [::ffff:c000:201]:80",
  },
  {
    name: "negated destination, a /128",
    rule: { chain: "output", match: [{ dst: v6, not: true }], verdict: { drop: true }, means },
    iptables: "-A DOCKINIT-OUTPUT ! -d ::ffff:192.0.2.1/128 -j DROP",
    nft: "ip6 daddr != ::ffff:c000:201/128 drop",
  },
  {
    name: "conntrack options in libxt_conntrack's save order",
    rule: { chain: "forward", match: [{ proto: "tcp" }, { ct: { direction: "original", replySrcPort: 80, origDstPort: 9000, replySrc: { family: 4, address: "198.51.100.10" }, state: "dnat" } }], verdict: { accept: true }, means },
    iptables: "-A DOCKINIT-USER -p tcp -m conntrack --ctstate DNAT --ctreplsrc 198.51.100.10 --ctorigdstport 9000 --ctreplsrcport 80 --ctdir ORIGINAL -j ACCEPT",
    nft: "meta l4proto tcp ct status dnat ct reply ip saddr 198.51.100.10 ct original proto-dst 9000 ct reply proto-src 80 ct direction original accept",
  },
  {
    name: "not DNAT, jump",
    rule: { chain: "forward", match: [{ oif: "br-+" }, { ct: { state: "dnat", notState: true, direction: "original" } }], verdict: { jump: "direct" }, means },
    iptables: "-A DOCKINIT-USER -o br-+ -m conntrack ! --ctstate DNAT --ctdir ORIGINAL -j DOCKINIT-DIRECT",
    nft: 'oifname "br-*" ct status & dnat == 0 ct direction original jump direct',
  },
  {
    name: "pass: RETURN in iptables; return from a jumped-to nft chain",
    rule: { chain: "direct", match: [{ iif: "docker+" }], verdict: { pass: true }, means },
    iptables: "-A DOCKINIT-DIRECT -i docker+ -j RETURN",
    nft: 'iifname "docker*" return',
  },
  {
    name: "pass: accept in an nft base chain (ends only dockinit's chain)",
    rule: { chain: "input", match: [{ localAddress: "src" }], verdict: { pass: true }, means },
    iptables: "-A DOCKINIT-INPUT -m addrtype --src-type LOCAL -j RETURN",
    nft: "fib saddr type local accept",
  },
  {
    name: "egress set, negated",
    rule: { chain: "egress", match: [{ set: { kind: "egress", family: 6 }, not: true }], verdict: { drop: true }, means },
    iptables: "-A DOCKINIT-EGRESS -m set ! --match-set dockinit-egress6 dst -j DROP",
    nft: "ip6 daddr != @egress6 drop",
  },
  {
    name: "docker-proxy's ports",
    rule: { chain: "input", match: [{ set: { kind: "proxy", protocol: "udp" }, proto: "udp" }, { ct: { direction: "original" } }], verdict: { drop: true }, means },
    iptables: "-A DOCKINIT-INPUT -p udp -m set --match-set dockinit-proxy-udp dst -m conntrack --ctdir ORIGINAL -j DROP",
    nft: "udp dport @proxy_udp ct direction original drop",
  },
  {
    name: "a /0 network is no match at all in iptables-save",
    rule: { chain: "forward", match: [{ src: { family: 4, address: "0.0.0.0", prefix: 0, text: "0.0.0.0/0" } }, { ct: { state: "invalid" } }], verdict: { drop: true }, means },
    iptables: "-A DOCKINIT-USER -m conntrack --ctstate INVALID -j DROP",
    nft: "ip saddr 0.0.0.0/0 ct state invalid drop",
  },
  {
    name: "ICMP related",
    rule: { chain: "forward", match: [{ proto: "ipv6-icmp" }, { ct: { state: "related" } }], verdict: { pass: true }, means },
    iptables: "-A DOCKINIT-USER -p ipv6-icmp -m conntrack --ctstate RELATED -j RETURN",
    nft: "meta l4proto ipv6-icmp ct state related accept",
  },
];

describe("one rule, two printers", () => {
  it.each(rows)("$name", ({ rule, iptables, nft }) => {
    expect(iptablesLine(rule)).toBe(iptables);
    expect(nftLine(rule)).toBe(nft);
  });

  it.each([
    ["an IPv4 source", { src: v4 }, [4]],
    ["an IPv6 destination", { dst: v6 }, [6]],
    ["ICMPv4", { proto: "icmp" }, [4]],
    ["an IPv6 egress set", { set: { kind: "egress", family: 6 } }, [6]],
    ["IPv6 by name", { family: 6 }, [6]],
    ["nothing family-specific", { ct: { state: "invalid" } }, [4, 6]],
  ] as const)("%s is loaded for IPv%s", (_name, match, families) => {
    const rule = { chain: "forward", match: [match], verdict: { drop: true }, means } as Rule;
    expect(([4, 6] as const).filter((f) => inFamily(rule, f))).toEqual(families);
  });
});

describe("every rule a config produces says what it means", () => {
  const configs = [
    "firewall: { backend: iptables, published: { default: deny, rules: [{ port: 8080, allow: [203.0.113.0/24, 2001:db8:10::/48] }] }, containers: { block: [10.0.0.0/8], egress_allow: [198.51.100.0/24] } }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]\n",
    "firewall: { backend: nftables, published: { default: deny, rules: [{ port: 443, allow: [any] }] }, containers: { egress_allow: [2001:db8:20::/48] } }\n",
  ];
  it.each(configs)("%s", (yaml) => {
    const plan = planFirewall(loadConfigString(`version: 1\n${yaml}`).model!);
    expect(plan.rules.length).toBeGreaterThan(10);
    for (const r of plan.rules) expect(r.means, JSON.stringify(r)).toMatch(/^\S.{8,}/);
    // iptables: each family's lines are exactly the rules loaded for that family.
    for (const fam of plan.iptables) {
      const lines = fam.tables.flatMap((t) => t.rules);
      expect(lines).toEqual(expect.arrayContaining(plan.rules.filter((r) => inFamily(r, fam.family)).map(iptablesLine)));
      expect(lines.length).toBe(plan.rules.filter((r) => inFamily(r, fam.family)).length);
    }
    // nftables: every rule once, in the ruleset as loaded.
    for (const r of plan.nft ? plan.rules : []) expect(plan.nft).toContain(`\t\t${nftLine(r)}\n`);
  });
});
