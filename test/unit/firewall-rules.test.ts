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

  it("the nftables backend refuses policies it cannot enforce (DI032)", () => {
    const r = loadConfigString("version: 1\nfirewall:\n  backend: nftables\n  published:\n    default: deny\n");
    expect(r.model).toBeUndefined();
    expect(r.diagnostics.map((d) => [d.code, d.line])).toEqual([["DI032", 5]]);
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
