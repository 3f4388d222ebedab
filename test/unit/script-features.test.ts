// One backend per host script, and only the features the config uses: the
// shipped dockinit-firewall carries no code for the other backend, no ipset
// code without an ipset, no DNAT code without a port forward. Read from the
// rendered file, the way an operator would grep it.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { loadConfigString, planFirewall, renderBundle } from "../../src/index.js";

const FIREWALL = "/usr/local/sbin/dockinit-firewall";
const script = (yaml: string): string => {
  const { bundle, diagnostics } = renderBundle(loadConfigString(`version: 1\ndocker: { daemon: { dns: [amazon] } }\n${yaml}`));
  if (!bundle) throw new Error(JSON.stringify(diagnostics));
  return bundle.files.find((f) => f.path === FIREWALL)!.content;
};

/** What each kind of code looks like in the script (commands it runs, chains it loads). */
const IPTABLES = [/iptables-restore/, /ip6tables-restore/, /\bipt_cmd\b/, /DOCKINIT-USER/, /DOCKINIT-POSTROUTING/, /\bapply_iptables\b/];
const NFTABLES = [/nft -f/, /nft -c/, /table inet dockinit/, /\bapply_nftables\b/];
const IPSET = [/\bipset (create|restore|destroy|list)\b/, /command -v ipset/];
/** A port forward's own DNAT (published ports are matched by Docker's DNAT state, which is not this). */
const DNAT = [/-j DNAT --to-destination/, /\bdnat (ip|ip6) to\b/];
/** The checker (both backends) hears nft monitor; Docker's events only stand in for iptables-legacy. */
const CHECKER = [/\bdo_watch\b/, /\bnft monitor\b/];
const DOCKER_EVENTS = [/docker events/];
/** The nftables backend's one piece of iptables: a port forward's ACCEPT in DOCKER-USER (or FORWARD). */
const FORWARD_ACCEPT = [/\bforward_accepts\b/, /--comment dockinit-forward -j ACCEPT/];

const FORWARD = "port_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]\n";
const EGRESS = "containers: { egress_allow: [198.51.100.0/24] }";

const rows: { name: string; yaml: string; has: RegExp[][]; lacks: RegExp[][] }[] = [
  { name: "nftables, nothing else", yaml: "firewall: { backend: nftables }\n", has: [NFTABLES, CHECKER], lacks: [IPTABLES, IPSET, DNAT, DOCKER_EVENTS] },
  { name: "nftables with egress, deny and a port forward", yaml: `firewall: { backend: nftables, published: { default: deny }, ${EGRESS} }\n${FORWARD}`, has: [NFTABLES, DNAT, FORWARD_ACCEPT, CHECKER], lacks: [IPTABLES, IPSET, DOCKER_EVENTS] },
  { name: "iptables, nothing else", yaml: "firewall: { backend: iptables }\n", has: [IPTABLES, CHECKER, DOCKER_EVENTS], lacks: [NFTABLES, IPSET, DNAT] },
  { name: "iptables with egress", yaml: `firewall: { backend: iptables, ${EGRESS} }\n`, has: [IPTABLES, IPSET], lacks: [NFTABLES, DNAT] },
  { name: "iptables with default deny", yaml: "firewall: { backend: iptables, published: { default: deny } }\n", has: [IPTABLES, IPSET], lacks: [NFTABLES, DNAT] },
  { name: "auto with a port forward (nftables, and one accept per forward for iptables' FORWARD)", yaml: FORWARD, has: [NFTABLES, DNAT, FORWARD_ACCEPT, CHECKER], lacks: [IPTABLES, IPSET, DOCKER_EVENTS] },
  { name: "nftables without a port forward ships no iptables accept", yaml: `firewall: { backend: nftables, published: { default: deny }, ${EGRESS} }\n`, has: [NFTABLES], lacks: [FORWARD_ACCEPT, IPTABLES] },
];

describe("the shipped firewall script carries one backend and the features in use", () => {
  it.each(rows)("$name", ({ yaml, has, lacks }) => {
    const text = script(yaml);
    for (const kind of has) expect(kind.some((re) => re.test(text)), `expected one of ${kind.join(" ")}`).toBe(true);
    for (const kind of lacks) for (const re of kind) expect(text, `must not contain ${re}`).not.toMatch(re);
  });
});

describe("the nftables script prints exactly the planned table (run through bash)", () => {
  const configs = [
    "firewall: { backend: nftables }\n",
    `firewall: { backend: nftables, published: { default: deny, rules: [{ port: 8080, allow: [203.0.113.0/24] }] }, ${EGRESS} }\n${FORWARD}`,
    "ephemeral_ports: { enabled: false }\nfirewall: { backend: nftables, containers: { block_metadata: false } }\n",
  ];
  it.each(configs)("%s", (yaml) => {
    const { bundle, diagnostics } = renderBundle(loadConfigString(`version: 1\ndocker: { daemon: { dns: [amazon] } }\n${yaml}`));
    if (!bundle) throw new Error(JSON.stringify(diagnostics));
    const text = bundle.files.find((f) => f.path === FIREWALL)!.content;
    expect(text).toMatch(/\nmain "\$@"\n$/);
    // The script's functions without its last line (the call to main).
    const defs = text.replace(/main "\$@"\n$/, "");
    const run = (arg: string) => execFileSync("bash", ["-c", `${defs}\nnft_ruleset ${arg}`], { encoding: "utf8" });
    const plan = planFirewall(loadConfigString(`version: 1\ndocker: { daemon: { dns: [amazon] } }\n${yaml}`).model!);
    // ... with the bundle's id as an empty chain first (the kernel's table says which bundle loaded it).
    const withId = (table: string) => table.replace(/^table inet dockinit \{\n/, (open) => `${open}\tchain bundle_${bundle.bundleId} {\n\t}\n`);
    expect(bundle.bundleId).toMatch(/^[0-9a-f]{64}$/);
    expect(run("")).toBe(withId(plan.nft));
    expect(run("filter")).toBe(withId(plan.nftPolicies));
  });
});
