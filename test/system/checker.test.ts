// The checker (`dockinit-firewall watch`, dockinit-firewall-watch.service)
// puts dockinit's rules back when something undoes them, proven with real
// packets on a namespace host: a container behind a docker0 look-alike
// connects to a network `containers.block` names (must be dropped) and to one
// it does not (must get through). With the checker running in the namespace,
// the rules are undone (nftables: `nft flush ruleset`, which takes iptables-
// nft's tables and so the look-alike's MASQUERADE too; iptables on nf_tables:
// `iptables -F DOCKINIT-USER`); the time until they are back is measured and
// printed, and the probe is dropped again. The control, in the same test: the
// same undoing without the checker leaves the rules gone and the probe gets
// through. The re-apply is recorded in $STATE_DIR/reapply (for status --json)
// and logged with status's first line.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { run, runIn, runInOk, sleep, tearDown, waitFor, type Background } from "./lib/exec.js";
import { ADDR, connectFrom, createLightBridge, createTopology, DROP_MS, flushConntrack, startPortEchoServer, type EchoServer, type LightBridge, type Topology } from "./lib/topology.js";
import { probe, verdicts } from "./lib/verdict.js";

const skip = skipUnless(["root", "ip", "iptables", "nft", "socat", "conntrack", "flock"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const PORT = 8080;
/** Generous, so a loaded CI machine does not flake; the target is 2 s, and each run prints what it measured. */
const BACK_WITHIN_MS = 5_000;

type Backend = "nftables" | "iptables";

/** Per backend: how the rules are undone, how the test sees them back, and the first line status prints. */
const CASES: { backend: Backend; undo: string[]; back: (host: string) => Promise<boolean>; reason: string }[] = [
  {
    backend: "nftables",
    undo: ["nft", "flush", "ruleset"],
    back: async (host) => (await runIn(host, "nft", ["list", "table", "inet", "dockinit"])).code === 0,
    reason: "TABLE_MISSING nftables: table inet dockinit is missing",
  },
  {
    backend: "iptables",
    undo: ["iptables", "-F", "DOCKINIT-USER"],
    back: async (host) => (await runIn(host, "iptables", ["-S", "DOCKINIT-USER"])).stdout.includes("-A DOCKINIT-USER"),
    reason: "TABLE_CHANGED IPv4 filter: dockinit's chains were changed since apply",
  },
];

/** Whether a process of the namespace runs `nft monitor` (the checker is listening). */
async function monitorRunning(ns: string): Promise<boolean> {
  const pids = (await run("ip", ["netns", "pids", ns])).stdout.split(/\s+/).filter((p) => /^\d+$/.test(p));
  return pids.some((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8") === "nft\0monitor\0";
    } catch {
      return false;
    }
  });
}

for (const c of CASES) {
  describe.skipIf(skip)(`${c.backend} backend${c.backend === "iptables" ? " (iptables-nft)" : ""}: the checker puts the rules back`, () => {
    let topo: Topology;
    let br: LightBridge;
    let bundle: RenderedBundle;
    let fw: FirewallRunner;
    let checker: Background | undefined;
    const servers: EchoServer[] = [];
    const v = verdicts({ beforeRound: () => flushConntrack(topo.host) });
    const toServer = (addr: string, what: string) => probe(`a container → ${addr}:${PORT} (${what})`, () => connectFrom(br.container, { addr, port: PORT, timeoutMs: DROP_MS }));

    beforeAll(async () => {
      topo = await createTopology();
      br = await createLightBridge(topo);
      // Without the look-alike's MASQUERADE (a flush takes it) replies still find the container.
      await topo.routeFromUpstream(ADDR.bridgeSubnetV4);
      for (const addr of [ADDR.serverV4, ADDR.serverV4b]) servers.push(await startPortEchoServer(topo.upstream, addr, PORT, "tcp"));
      bundle = renderYaml(`version: 1\nname: checker\nfirewall:\n  backend: ${c.backend}\n  containers: { block: [198.51.100.0/24] }\n`);
      fw = firewallRunner(topo.host, bundle.file(SCRIPT));
      const r = await fw.run("apply");
      expect(r.code, r.stderr).toBe(0);
    });

    afterAll(async () => {
      await tearDown(checker, servers, fw, bundle, topo);
    });

    it(`after \`${c.undo.join(" ")}\` the rules are back within ${BACK_WITHIN_MS / 1000} s (measured) and a container's connection to a blocked network is dropped again; control: without the checker they stay gone and it gets through`, async () => {
      const blocked = toServer(ADDR.serverV4, "blocked");
      const allowed = toServer(ADDR.serverV4b, "not blocked");

      // Control: undone with no checker running. Nothing puts them back.
      await runInOk(topo.host, c.undo[0]!, c.undo.slice(1));
      await sleep(3_000);
      expect(await c.back(topo.host), "without the checker the rules stay gone").toBe(false);
      const status = await fw.run("status");
      expect(status.code).toBe(1);
      // (Text status prints the words; the code leads in the journal and the record.)
      expect(status.stdout).toContain(c.reason.replace(/^[A-Z_]+ /, ""));
      const control = await v.observe([blocked]);
      expect((await fw.run("apply")).code).toBe(0);

      // The checker, listening (nft monitor) before the rules are undone again.
      checker = await fw.spawn("watch");
      await waitFor("the checker's nft monitor", () => monitorRunning(topo.host), { timeoutMs: 10_000, intervalMs: 50 });
      await sleep(500); // subscribed, and its first check (nothing to do) done
      expect(checker.output()).not.toContain("re-applying");

      const t0 = performance.now();
      await runInOk(topo.host, c.undo[0]!, c.undo.slice(1));
      await waitFor("the rules back", () => c.back(topo.host), { timeoutMs: 10_000, intervalMs: 20 });
      const ms = Math.round(performance.now() - t0);
      console.log(`checker (${c.backend}): \`${c.undo.join(" ")}\` → rules back after ${ms} ms`);
      expect(ms, `back after ${ms} ms`).toBeLessThan(BACK_WITHIN_MS);
      await waitFor("status ok", async () => (await fw.run("status")).code === 0, { timeoutMs: 5_000, intervalMs: 100 });

      await v.expectVerdicts({ through: [allowed], dropped: [blocked] }, { control });
      // Logged and recorded once: its own apply, heard too, changed nothing more.
      expect(checker.output()).toContain(`dockinit-firewall: re-applying: ${c.reason}\n`);
      expect(checker.output().match(/re-applying:/g)).toHaveLength(1);
      expect(readFileSync(join(fw.stateDir, "reapply"), "utf8")).toMatch(new RegExp(`^1 \\d+ ${c.reason.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\n$`));
      expect(checker.running()).toBe(true);
    });
  });
}
