// Faults on the host, with both iptables backends: a restore killed before
// and in the middle of its commits, ipset missing, a kernel without the nat
// table (v4 and v6), the other iptables backend holding Docker's rules (both
// directions), nft missing or killed. Each time: a non-zero exit, a message
// that says what happened, and the rules dockinit had loaded before — a
// different configuration, applied first — still in force, exactly (the
// saved tables) and for the traffic (a container's source port remapped into
// the earlier config's range, not the new one's).
// Not repeated here: the xtables lock held and missing iptables binaries
// (firewall-engine.test.ts), IMDS failures (vpc-dns.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner, type IptablesBackend } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { RESTORE_KILLED_AFTER_FIRST_TABLE, RESTORE_KILLED_BEFORE_COMMIT, SAVE_WITHOUT_NAT, shimPath, type ShimOptions } from "../support/shim.js";
import { skipUnless } from "../support/system.js";
import { runIn, runInOk, tearDown } from "./lib/exec.js";
import { ADDR, connectFrom, createLightBridge, createTopology, flushConntrack, peerPort, startPortEchoServer, type EchoServer, type LightBridge, type Topology } from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "iptables", "iptables-legacy", "ip6tables", "ipset", "nft", "socat", "conntrack", "nsenter"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const ECHO_PORT = 8080;

/** The rules in force before each fault: ports remapped into 49152-55000, a published-port policy, a block. */
const BEFORE = `version: 1
name: before
docker: { daemon: { dns: [amazon] } }
ephemeral_ports: { match: 32768-61000, to: 49152-55000, protocols: [tcp] }
firewall:
  published: { rules: [{ port: 8080, allow: [203.0.113.0/24] }] }
  containers: { block: [198.51.100.20/32] }
`;

/** The configuration whose apply meets the fault: another range, egress allow-list (ipset), a port forward, both tables. */
const AFTER = `version: 1
name: after
docker: { daemon: { dns: [amazon] } }
ephemeral_ports: { match: 32768-61000, to: 56000-61000, protocols: [tcp, udp] }
firewall:
  published: { default: deny, rules: [{ port: 443, allow: [any] }] }
  containers: { egress_allow: [198.51.100.0/24, 2001:db8:20::/64] }
port_forwards: [{ listen: 9000, to: '198.51.100.10:8080' }]
`;

interface Fault {
  name: string;
  shim: ShimOptions;
  stderr: RegExp;
  /** Prepare the host (e.g. Docker's chains in the other backend) and undo it. */
  setup?: (topo: Topology, backend: IptablesBackend) => Promise<() => Promise<void>>;
}

const faults: Fault[] = [
  {
    name: "iptables-restore killed after reading its input, before any commit",
    shim: { replace: { "iptables-restore": RESTORE_KILLED_BEFORE_COMMIT } },
    stderr: /iptables-restore failed \(killed by signal 9\) loading the IPv4 rules; dockinit's rules are back as they were before apply/,
  },
  {
    name: "iptables-restore killed after committing the nat table, before the filter table",
    shim: { replace: { "iptables-restore": RESTORE_KILLED_AFTER_FIRST_TABLE } },
    stderr: /iptables-restore failed \(killed by signal 9\) loading the IPv4 rules; dockinit's rules are back as they were before apply/,
  },
  {
    name: "ip6tables-restore killed after committing the nat table, once IPv4 had committed",
    shim: { replace: { "ip6tables-restore": RESTORE_KILLED_AFTER_FIRST_TABLE } },
    stderr: /ip6tables-restore failed \(killed by signal 9\) loading the IPv6 rules; dockinit's rules are back as they were before apply/,
  },
  {
    name: "ipset missing (egress_allow needs it)",
    shim: { hide: ["ipset"] },
    stderr: /ipset not found; install the ipset package/,
  },
  {
    name: "no nat table in the kernel (IPv4)",
    shim: { replace: { "iptables-save": SAVE_WITHOUT_NAT } },
    stderr: /cannot read the IPv4 nat table \(kernel modules for iptables nat missing\?\)/,
  },
  {
    name: "no nat table in the kernel for IPv6 only (IPv4 must not be applied either)",
    shim: { replace: { "ip6tables-save": SAVE_WITHOUT_NAT } },
    stderr: /cannot read the IPv6 nat table/,
  },
  {
    name: "Docker's rules in the other iptables backend",
    shim: {},
    stderr: /Docker's rules are in iptables-(legacy|nft) but iptables uses (nf_tables|legacy); pick one backend/,
    async setup(topo, backend) {
      const other = backend === "nft" ? "iptables-legacy" : "iptables-nft";
      await runInOk(topo.host, other, ["-t", "nat", "-N", "DOCKER"]);
      return async () => void (await runInOk(topo.host, other, ["-t", "nat", "-X", "DOCKER"]));
    },
  },
];

describe.skipIf(skip).each(["nft", "legacy"] as const)("faults during apply (iptables %s): non-zero, a clear message, the previous rules still in force", (backend) => {
  let topo: Topology;
  let br: LightBridge;
  let servers: EchoServer[] = [];
  let before: RenderedBundle;
  let after: RenderedBundle;
  let fw: FirewallRunner;

  const seenPort = async (sourcePort: number) => {
    await flushConntrack(topo.host);
    return peerPort(await connectFrom(br.container, { addr: ADDR.serverV4, port: ECHO_PORT, sourcePort, timeoutMs: 3_000 }));
  };
  const saves = async () => ({ v4: await fw.save(4), v6: await fw.save(6), sets: (await runIn(topo.host, "ipset", ["list", "-n"])).stdout });

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    br = await createLightBridge(topo);
    if (backend === "legacy") {
      // Docker's MASQUERADE lives where Docker's backend is: move it to legacy.
      await runInOk(topo.host, "iptables", ["-t", "nat", "-D", "POSTROUTING", "-s", ADDR.bridgeSubnetV4, "!", "-o", "docker0", "-j", "MASQUERADE"]);
      await runInOk(topo.host, "iptables-legacy", ["-t", "nat", "-A", "POSTROUTING", "-s", ADDR.bridgeSubnetV4, "!", "-o", "docker0", "-j", "MASQUERADE"]);
      await runInOk(topo.host, "ip6tables", ["-t", "nat", "-D", "POSTROUTING", "-s", ADDR.bridgeSubnetV6, "!", "-o", "docker0", "-j", "MASQUERADE"]);
      await runInOk(topo.host, "ip6tables-legacy", ["-t", "nat", "-A", "POSTROUTING", "-s", ADDR.bridgeSubnetV6, "!", "-o", "docker0", "-j", "MASQUERADE"]);
    }
    servers = [await startPortEchoServer(topo.upstream, ADDR.serverV4, ECHO_PORT, "tcp")];
    before = renderYaml(BEFORE, { backend: "iptables" });
    after = renderYaml(AFTER, { backend: "iptables" });
    fw = firewallRunner(topo.host, before.file(SCRIPT), backend);
  });
  afterAll(() => tearDown(servers, fw, before, after, topo));

  it.each(faults)("$name", async (fault) => {
    const applied = await fw.run("apply");
    expect(applied.code, applied.stderr).toBe(0);
    const inForce = await saves();
    expect(await seenPort(33000)).toSatisfy((p: number) => p >= 49152 && p <= 55000);
    const undo = fault.setup ? await fault.setup(topo, backend) : async () => undefined;
    const shim = shimPath({ ...fault.shim, legacy: backend === "legacy" });
    let r;
    try {
      r = await shim.run(topo.host, after.file(SCRIPT), ["apply"]);
    } finally {
      shim.cleanup();
      await undo();
    }
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(fault.stderr);
    expect(r.stderr).not.toMatch(/line \d+:|unbound variable|command not found|syntax error/);
    // Exactly the tables and sets of before, and they still work.
    expect(await saves()).toEqual(inForce);
    const status = await fw.run("status");
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(await seenPort(33000)).toSatisfy((p: number) => p >= 49152 && p <= 55000);
  });

  it("with no fault the same apply succeeds, and the new range is in force (the faults above were the only obstacle)", async () => {
    const next = firewallRunner(topo.host, after.file(SCRIPT), backend);
    const r = await next.run("apply").finally(() => next.cleanup());
    expect(r.code, r.stderr).toBe(0);
    expect(await seenPort(33000)).toSatisfy((p: number) => p >= 56000 && p <= 61000);
  });
});

describe.skipIf(skip)("faults during apply (nftables backend)", () => {
  let topo: Topology;
  let before: RenderedBundle;
  let after: RenderedBundle;
  let fw: FirewallRunner;
  const table = async () => (await runIn(topo.host, "nft", ["list", "table", "inet", "dockinit"])).stdout;

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    before = renderYaml(BEFORE.replace("firewall:", "firewall:\n  backend: nftables"));
    after = renderYaml(AFTER.replace("firewall:", "firewall:\n  backend: nftables"));
    fw = firewallRunner(topo.host, before.file(SCRIPT));
  });
  afterAll(() => tearDown(fw, before, after, topo));

  it.each([
    { name: "nft missing", shim: { hide: ["nft"] }, stderr: /nft not found; install the nftables package/ },
    {
      name: "nft killed while loading the ruleset",
      shim: { replace: { nft: 'for a; do [ "$a" = -c ] && exec REAL "$@"; [ "$a" = -f ] && { cat >/dev/null; kill -9 $$; }; done\nexec REAL "$@"' } },
      stderr: /nft failed to load the ruleset/,
    },
  ])("$name: non-zero, a clear message, the previous table unchanged", async ({ shim: opts, stderr }) => {
    expect((await fw.run("apply")).code).toBe(0);
    const was = await table();
    expect(was).toMatch(/49152-55000/);
    const shim = shimPath(opts);
    const r = await shim.run(topo.host, after.file(SCRIPT), ["apply"]).finally(() => shim.cleanup());
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(stderr);
    expect(await table()).toBe(was);
    expect((await fw.run("status")).code).toBe(0);
  });
});

describe.skipIf(skip)("regressions the property test found, on a real IPv6 host", () => {
  let topo: Topology;
  const bundles: RenderedBundle[] = [];
  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
  });
  afterAll(() => tearDown(bundles, topo));

  it("egress_allow with IPv4 networks only applies (the empty IPv6 list was an empty ipset line)", async () => {
    const b = renderYaml("version: 1\ndocker: { daemon: { dns: [amazon] } }\nfirewall: { containers: { egress_allow: [198.51.100.0/24] } }\n", { backend: "iptables" });
    bundles.push(b);
    const fw = firewallRunner(topo.host, b.file(SCRIPT));
    const r = await fw.run("apply");
    expect(r.code, r.stderr).toBe(0);
    expect((await runInOk(topo.host, "ipset", ["list", "dockinit-egress6"])).split("Members:")[1]?.trim()).toBe("");
    expect((await fw.run("status")).code).toBe(0);
    expect((await fw.run("remove")).code).toBe(0);
    fw.cleanup();
  });

  it("/0 networks and IPv4-mapped IPv6 networks: status is clean after apply, and a second apply changes nothing", async () => {
    const b = renderYaml(
      "version: 1\ndocker: { daemon: { dns: [amazon] } }\nephemeral_ports: { sources: [0.0.0.0/0, '::ffff:192.0.2.0/120'] }\nfirewall:\n  published: { rules: [{ port: 80, allow: [0.0.0.0/0, '::192.0.2.1'] }] }\n  containers: { block: ['::/0'] }\n",
      { backend: "iptables" },
    );
    bundles.push(b);
    const fw = firewallRunner(topo.host, b.file(SCRIPT));
    expect((await fw.run("apply")).code).toBe(0);
    const status = await fw.run("status");
    expect(status.code, status.stdout).toBe(0);
    const once = [await fw.save(4), await fw.save(6)];
    expect((await fw.run("apply")).code).toBe(0);
    expect([await fw.save(4), await fw.save(6)]).toEqual(once);
    expect((await fw.run("remove")).code).toBe(0);
    fw.cleanup();
  });
});
