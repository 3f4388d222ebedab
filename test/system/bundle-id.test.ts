// The loaded rules are this bundle's, or they are replaced, with the real
// kernel (nft, iptables-nft) in a namespace host: bundle A's rules loaded,
// bundle B's status fails naming both ids (FOREIGN_BUNDLE), B's
// apply-policies puts B's policies in force (packets: A's block lifted, B's
// in force, each drop with its control observed before any rule), B's status
// then asks for apply (NAT_NOT_LOADED on nftables; A's nat chains on
// iptables) and passes after it. And apply-policies followed by an apply that
// fails (the kernel refuses the nat chains) leaves status failing
// with NAT_NOT_LOADED, where it used to say "all rules in place".
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { runIn, runInOk, tearDown } from "./lib/exec.js";
import { ADDR, connectFrom, createLightBridge, createTopology, DROP_MS, flushConntrack, startPortEchoServer, type EchoServer, type LightBridge, type Topology } from "./lib/topology.js";
import { probe, verdicts } from "./lib/verdict.js";

const skip = skipUnless(["root", "ip", "iptables", "ip6tables", "nft", "socat", "conntrack", "nsenter"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const PORT = 8080;

/** Two versions of one host's config, as an in-place update would bring: each blocks another server from containers. */
const config = (backend: string, block: string) => `version: 1
name: in-place
docker: { daemon: { dns: [amazon] } }
firewall:
  backend: ${backend}
  containers: { block: [${block}/32] }
`;

interface Json {
  ok: boolean;
  bundle: string;
  loaded_bundle: string | null;
  problems: { code: string; message: string }[];
}

describe.skipIf(skip).each(["nftables", "iptables"] as const)("%s backend: another bundle's rules fail status and are replaced by apply-policies", (backend) => {
  let topo: Topology;
  let br: LightBridge;
  const servers: EchoServer[] = [];
  let A: RenderedBundle;
  let B: RenderedBundle;
  let fwA: FirewallRunner;
  let fwB: FirewallRunner;
  const v = verdicts({ beforeRound: () => flushConntrack(topo.host) });
  const toServer = (addr: string) => probe(`a container → ${addr}:${PORT}`, () => connectFrom(br.container, { addr, port: PORT, timeoutMs: DROP_MS }));
  // A blocks serverV4, B blocks serverV4b.
  const toA = toServer(ADDR.serverV4);
  const toB = toServer(ADDR.serverV4b);
  const idOf = (b: RenderedBundle) => (JSON.parse(readFileSync(`${b.out}/manifest.json`, "utf8")) as { bundleId: string }).bundleId;
  const statusJson = async (fw: FirewallRunner) => {
    const r = await fw.run("status", "--json");
    expect(r.stdout.length).toBeLessThanOrEqual(2501);
    return { code: r.code, json: JSON.parse(r.stdout) as Json };
  };
  const kernelIds = async () =>
    backend === "nftables"
      ? [...(await runIn(topo.host, "nft", ["list", "chains", "inet"])).stdout.matchAll(/chain bundle_([0-9a-f]{64})/g)].map((m) => m[1])
      : [...(await runInOk(topo.host, "iptables-save", [])).matchAll(/--comment "?dockinit-bundle-([0-9a-f]{64})/g)].map((m) => m[1]);

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    br = await createLightBridge(topo);
    servers.push(await startPortEchoServer(topo.upstream, ADDR.serverV4, PORT, "tcp"), await startPortEchoServer(topo.upstream, ADDR.serverV4b, PORT, "tcp"));
    A = renderYaml(config(backend, ADDR.serverV4));
    B = renderYaml(config(backend, ADDR.serverV4b));
    // One state directory, as on a host: B's script finds what A's left.
    fwA = firewallRunner(topo.host, A.file(SCRIPT));
    fwB = firewallRunner(topo.host, B.file(SCRIPT), { stateDir: fwA.stateDir });
  });
  afterAll(() => tearDown(servers, fwB, fwA, A, B, topo));

  it("A's rules in force; B's status fails naming both bundles; B's apply-policies replaces them (packets); B's status asks for apply, then passes", async () => {
    const idA = idOf(A);
    const idB = idOf(B);
    expect(idA).not.toBe(idB);
    const before = await v.observe([toA, toB]);
    expect((await fwA.run("apply")).code).toBe(0);
    expect(await kernelIds()).toEqual(backend === "nftables" ? [idA] : [idA, idA]);
    await v.expectVerdicts({ through: [toB], dropped: [toA] }, { control: before });
    expect((await statusJson(fwA)).json.ok).toBe(true);

    let s = await statusJson(fwB);
    expect(s.code).toBe(1);
    expect(s.json.loaded_bundle).toBe(idA);
    const foreign = s.json.problems.filter((p) => p.code === "FOREIGN_BUNDLE");
    expect(foreign.length, JSON.stringify(s.json)).toBeGreaterThan(0);
    for (const p of foreign) expect(p.message).toContain(`${idA}, not by this one, ${idB}`);

    const r = await fwB.run("apply-policies");
    expect(r.code, r.stderr).toBe(0);
    await v.expectVerdicts({ through: [toA], dropped: [toB] }, { control: before });
    s = await statusJson(fwB);
    expect(s.code, JSON.stringify(s.json)).toBe(1);
    if (backend === "nftables") {
      expect(s.json.problems.map((p) => p.code)).toEqual(["NAT_NOT_LOADED"]);
      expect(await kernelIds()).toEqual([idB]);
    } else {
      // The filter table is B's; the nat table, which apply alone loads, still A's.
      expect(s.json.problems.map((p) => p.code)).toEqual(["FOREIGN_BUNDLE", "FOREIGN_BUNDLE"]);
      expect(s.json.problems.map((p) => p.message.slice(0, 10))).toEqual(["IPv4 nat: ", "IPv6 nat: "]);
    }
    const text = await fwB.run("status");
    expect(text.stdout).not.toContain("all rules in place");
    expect(text.stdout).toContain(`bundle: ${idB}`);

    expect((await fwB.run("apply")).code).toBe(0);
    s = await statusJson(fwB);
    expect([s.code, s.json.problems, s.json.loaded_bundle]).toEqual([0, [], idB]);
    await v.expectVerdicts({ through: [toA], dropped: [toB] }, { control: before });
    expect(new Set(await kernelIds())).toEqual(new Set([idB]));
  });

  it("apply-policies, then an apply that fails: status fails with NAT_NOT_LOADED", async () => {
    expect((await fwB.run("remove")).code).toBe(0);
    expect((await fwB.run("apply-policies")).code).toBe(0);
    // The kernel's tools refuse whatever holds the nat chains (the whole table, or the nat table):
    // stand-ins first on the script's PATH, which pass everything else to the real tool.
    const refusing = (tool: string, pattern: string) => `#!/bin/bash\nin=$(cat)\nif grep -q '${pattern}' <<<"$in"; then echo "${tool}: refused (test)" >&2; exit 1; fi\nexec /usr/sbin/${tool} "$@" <<<"$in"\n`;
    const standIns = backend === "nftables" ? { nft: refusing("nft", "hook postrouting") } : { "iptables-restore": refusing("iptables-restore", "^\\*nat"), "ip6tables-restore": refusing("ip6tables-restore", "^\\*nat") };
    for (const [tool, body] of Object.entries(standIns)) writeFileSync(join(fwB.shimDir, tool), body, { mode: 0o755 });
    try {
      const r = await fwB.run("apply");
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/refused \(test\)/);
    } finally {
      for (const tool of Object.keys(standIns)) rmSync(join(fwB.shimDir, tool), { force: true });
    }
    const s = await statusJson(fwB);
    expect(s.code).toBe(1);
    expect(s.json.problems.map((p) => p.code)).toContain("NAT_NOT_LOADED");
    expect((await fwB.run("status")).stdout).not.toContain("all rules in place");
    expect((await fwB.run("apply")).code).toBe(0);
    expect((await statusJson(fwB)).code).toBe(0);
  });
});
