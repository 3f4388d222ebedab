// The rules a config produces, as data: table-driven, one row per policy,
// IPv4 and IPv6. The system tests prove what the rules do to packets; these
// pin which rules exist, so a change to either shows up in review.
import { describe, expect, it } from "vitest";
import { loadConfigString, planFirewall } from "../../src/index.js";
import { describeRule, explainFirewall } from "../../src/render/explain.js";

function rules(yaml: string, family: 4 | 6, table: "nat" | "filter"): string[] {
  const { model, diagnostics } = loadConfigString(`version: 1\ndocker: { daemon: { dns: [amazon] } }\n${yaml}`);
  if (!model) throw new Error(JSON.stringify(diagnostics));
  return planFirewall(model).iptables.find((f) => f.family === family)?.tables.find((t) => t.table === table)?.rules ?? [];
}

const U = "-A DOCKINIT-USER";
const EST = `${U} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`;

const cases: { name: string; yaml: string; family: 4 | 6; table: "nat" | "filter"; expected: string[] }[] = [
  {
    name: "ephemeral fix, any source",
    yaml: "firewall: { containers: { block_metadata: false } }",
    family: 4,
    table: "nat",
    expected: ["-A DOCKINIT-POSTROUTING -o @EXT_IF@ -p tcp -m tcp --sport 32768:61000 -j MASQUERADE --to-ports 49152-61000"],
  },
  {
    name: "ephemeral fix, IPv4 sources leave IPv6 alone",
    yaml: "ephemeral_ports: { sources: [172.17.0.0/16] }\nfirewall: { containers: { block_metadata: false } }",
    family: 6,
    table: "nat",
    expected: [],
  },
  { name: "metadata blocked by default (v4)", yaml: "", family: 4, table: "filter", expected: [EST, `${U} -d 169.254.169.254/32 -j DROP`] },
  { name: "metadata blocked by default (v6)", yaml: "", family: 6, table: "filter", expected: [EST, `${U} -d fd00:ec2::254/128 -j DROP`] },
  {
    name: "published port from an IPv4 network is closed over IPv6",
    yaml: "firewall: { containers: { block_metadata: false }, published: { rules: [{ port: 5432, allow: [198.51.100.0/24] }] } }",
    family: 6,
    table: "filter",
    expected: [EST, `${U} -i @EXT_IF@ -p tcp -m conntrack --ctstate DNAT --ctorigdstport 5432 -j DROP`],
  },
  {
    name: "published port allow-list (v4)",
    yaml: "firewall: { containers: { block_metadata: false }, published: { rules: [{ port: 5432, allow: [198.51.100.0/24] }] } }",
    family: 4,
    table: "filter",
    expected: [
      EST,
      `${U} -s 198.51.100.0/24 -i @EXT_IF@ -p tcp -m conntrack --ctstate DNAT --ctorigdstport 5432 -j RETURN`,
      `${U} -i @EXT_IF@ -p tcp -m conntrack --ctstate DNAT --ctorigdstport 5432 -j DROP`,
    ],
  },
  {
    name: "loopback only drops every forwarded connection",
    yaml: "firewall: { containers: { block_metadata: false }, published: { rules: [{ port: 2368, allow: [loopback] }] } }",
    family: 4,
    table: "filter",
    expected: [EST, `${U} -p tcp -m conntrack --ctstate DNAT --ctorigdstport 2368 -j DROP`],
  },
  {
    name: "default deny after the listed ports",
    yaml: "firewall: { containers: { block_metadata: false }, published: { default: deny, rules: [{ port: 443, allow: [any] }] } }",
    family: 4,
    table: "filter",
    expected: [EST, `${U} -i @EXT_IF@ -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 -j RETURN`, `${U} -i @EXT_IF@ -m conntrack --ctstate DNAT -j DROP`],
  },
  {
    name: "egress allow-list and block",
    yaml: "firewall: { containers: { block_metadata: false, block: [10.0.0.0/8], egress_allow: [198.51.100.0/24] } }",
    family: 4,
    table: "filter",
    expected: [EST, `${U} -d 10.0.0.0/8 ! -i @EXT_IF@ -j DROP`, `${U} ! -i @EXT_IF@ -o @EXT_IF@ -m set ! --match-set dockinit-egress4 dst -j DROP`],
  },
  {
    name: "port forward: DNAT in PREROUTING and OUTPUT, masquerade out",
    yaml: "firewall: { containers: { block_metadata: false } }\nephemeral_ports: { enabled: false }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]",
    family: 4,
    table: "nat",
    expected: [
      "-A DOCKINIT-PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 9000 -j DNAT --to-destination 198.51.100.10:80",
      "-A DOCKINIT-OUTPUT ! -d 127.0.0.0/8 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 9000 -j DNAT --to-destination 198.51.100.10:80",
      "-A DOCKINIT-POSTROUTING -d 198.51.100.10/32 -o @EXT_IF@ -p tcp -m conntrack --ctstate DNAT -m tcp --dport 80 -j MASQUERADE",
    ],
  },
];

describe("firewall rules per policy", () => {
  it.each(cases)("$name", ({ yaml, family, table, expected }) => {
    expect(rules(yaml, family, table)).toEqual(expected);
  });

});

/** The chains of dockinit's nftables table: name → rule lines (hook line first). */
function nftChains(yaml: string): Record<string, string[]> {
  const { model, diagnostics } = loadConfigString(`version: 1\ndocker: { daemon: { dns: [amazon] } }\nfirewall:\n  backend: nftables\n${yaml}`);
  if (!model) throw new Error(JSON.stringify(diagnostics));
  const out: Record<string, string[]> = {};
  let current: string[] | undefined;
  for (const line of planFirewall(model).nft.split("\n")) {
    const m = /^\t(?:chain|set) (\S+) \{$/.exec(line);
    if (m?.[1]) out[m[1]] = current = [];
    else if (line === "\t}") current = undefined;
    else if (current) current.push(line.trim());
  }
  return out;
}

describe("nftables backend: every policy in table inet dockinit, drops before Docker's chains", () => {
  it("published ports: allow-lists and default deny on the original destination port, accepts only end dockinit's chain", () => {
    const c = nftChains("  published:\n    default: deny\n    rules:\n      - { port: 8080, allow: [203.0.113.0/24, 2001:db8:20::50] }\n      - { port: 2368, allow: [loopback] }\n  containers: { block_metadata: false }");
    expect(c.forward).toEqual([
      "type filter hook forward priority filter - 10; policy accept;",
      "ct state established,related accept",
      'iifname "@EXT_IF@" meta l4proto tcp ct status dnat ct original proto-dst 8080 ip saddr 203.0.113.0/24 accept',
      'iifname "@EXT_IF@" meta l4proto tcp ct status dnat ct original proto-dst 8080 ip6 saddr 2001:db8:20::50/128 accept',
      'iifname "@EXT_IF@" meta l4proto tcp ct status dnat ct original proto-dst 8080 drop',
      "meta l4proto tcp ct status dnat ct original proto-dst 2368 drop",
      'iifname "@EXT_IF@" ct status dnat drop',
    ]);
  });

  it("egress allow-list: one interval set per family, literal DNS servers included", () => {
    const c = nftChains("  containers: { block_metadata: false, egress_allow: [198.51.100.0/24] }");
    expect(c.egress4).toEqual(["type ipv4_addr", "flags interval", "auto-merge", "elements = { 198.51.100.0/24, 169.254.169.253/32 }"]);
    expect(c.egress6).toEqual(["type ipv6_addr", "flags interval", "auto-merge"]);
    expect(c.forward?.slice(2)).toEqual(['iifname != "@EXT_IF@" oifname "@EXT_IF@" ip daddr != @egress4 drop', 'iifname != "@EXT_IF@" oifname "@EXT_IF@" ip6 daddr != @egress6 drop']);
  });

  it("port forwards: DNAT before Docker's (dstnat - 10), masquerade first in postrouting, let through before any drop", () => {
    const c = nftChains("  containers: { block_metadata: true }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]");
    expect(c.prerouting).toEqual(["type nat hook prerouting priority dstnat - 10; policy accept;", "fib daddr type local tcp dport 9000 dnat ip to 198.51.100.10:80"]);
    expect(c.output).toEqual(["type nat hook output priority -110; policy accept;", "ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 9000 dnat ip to 198.51.100.10:80"]);
    expect(c.postrouting?.[1]).toBe('oifname "@EXT_IF@" ip daddr 198.51.100.10 tcp dport 80 ct status dnat masquerade');
    expect(c.forward?.slice(1, 3)).toEqual([
      "meta l4proto tcp ct status dnat ct original proto-dst 9000 ct reply ip saddr 198.51.100.10 ct reply proto-src 80 accept",
      "ct state established,related accept",
    ]);
  });
});

describe("dockinit explain", () => {
  it("puts plain words next to every generated rule", () => {
    const { model } = loadConfigString(
      "version: 1\nfirewall:\n  external_interface: ens5\n  published: { default: deny, rules: [{ port: 8080, allow: [203.0.113.0/24, 2001:db8:10::/48] }] }\n  containers: { egress_allow: [198.51.100.0/24] }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]\n",
    );
    const text = explainFirewall(model!);
    expect(text).toContain("- published port 8080/tcp: only from 203.0.113.0/24 and 2001:db8:10::/48");
    for (const line of text.split("\n").filter((l) => l.startsWith("-A DOCKINIT"))) {
      expect(line, line).toMatch(/ {4}# \S/);
    }
    expect(text).not.toContain("@EXT_IF@");
    expect(describeRule("-A DOCKINIT-USER -s 203.0.113.0/24 -i ens5 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -j RETURN")).toBe(
      "published port 8080/tcp: allow from 203.0.113.0/24",
    );
  });
});
