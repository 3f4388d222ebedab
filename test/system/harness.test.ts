// Smoke tests of the system-test harness: real packets through real iptables
// and a real dockerd, inside namespaces that are created and deleted here.
// They prove the harness can tell "source port kept" from "source port
// remapped", which is what the dockinit firewall tests rely on.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipUnless } from "../support/system.js";
import { killAllTracked, run, runInOk, waitFor } from "./lib/exec.js";
import {
  ADDR,
  connectFrom,
  createLightBridge,
  createTopology,
  flushConntrack,
  listNamespaces,
  peerPort,
  startPortEchoServer,
  type EchoServer,
  type LightBridge,
  type Topology,
} from "./lib/topology.js";
import { TOOLS_IMAGE, startDockerd, type Dockerd } from "./lib/docker.js";

const skip = skipUnless(["root", "ip", "iptables", "dockerd", "socat", "busybox", "conntrack"]);

/** The dockinit ephemeral-port fix, bare (as in the brief): remap container source ports into 49152-61000. */
const EPHEMERAL_RULE = ["POSTROUTING", "-p", "tcp", "--sport", "32768:61000", "-j", "MASQUERADE", "--to-ports", "49152-61000"];

/** Everything this file created, for the final leak check. */
const createdNamespaces: string[] = [];
const createdDirs: string[] = [];

function inRemapRange(port: number): boolean {
  return port >= 49152 && port <= 61000;
}

function processesMentioning(text: string): string[] {
  const hits: string[] = [];
  for (const pid of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmd.includes(text)) hits.push(`${pid}: ${cmd}`);
    } catch {
      /* exited */
    }
  }
  return hits;
}

async function natPostrouting(ns: string, v6 = false): Promise<string[]> {
  const out = await runInOk(ns, v6 ? "ip6tables" : "iptables", ["-t", "nat", "-S", "POSTROUTING"]);
  return out.split("\n").filter((l) => l.startsWith("-A "));
}

describe.skipIf(skip)("harness: light bridge (no dockerd)", () => {
  let topo: Topology | undefined;
  let br: LightBridge;
  const servers: EchoServer[] = [];

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    br = await createLightBridge(topo);
    createdNamespaces.push(...topo.namespaces());
    servers.push(
      await startPortEchoServer(topo.upstream, ADDR.serverV4, 8080, "tcp"),
      await startPortEchoServer(topo.upstream, ADDR.serverV4b, 8080, "tcp"),
      await startPortEchoServer(topo.upstream, ADDR.serverV4, 8081, "udp"),
      await startPortEchoServer(topo.upstream, ADDR.serverV6, 8080, "tcp"),
      // on the "instance", for inbound connections from two source networks
      await startPortEchoServer(topo.host, ADDR.hostV4, 9000, "tcp"),
    );
  });

  afterAll(async () => {
    for (const s of servers) await s.stop();
    await topo?.destroy();
  });

  it("Docker-like MASQUERADE keeps the container's source port 33000", async () => {
    const r = await connectFrom(br.container, { addr: ADDR.serverV4, port: 8080, sourcePort: 33000 });
    expect(r).toMatchObject({ ok: true, peerAddr: ADDR.hostV4, peerPort: 33000 });
  });

  it("the --to-ports rule at the head of nat POSTROUTING remaps 33000 into 49152..61000", async () => {
    const host = topo!.host;
    await runInOk(host, "iptables", ["-t", "nat", "-I", ...EPHEMERAL_RULE]);
    try {
      for (const addr of [ADDR.serverV4, ADDR.serverV4b]) {
        const port = peerPort(await connectFrom(br.container, { addr, port: 8080, sourcePort: 33000 }));
        expect(inRemapRange(port), `port ${port}`).toBe(true);
      }
      // tcp-only rule: UDP keeps its port (and the harness does UDP too)
      const udp = await connectFrom(br.container, { addr: ADDR.serverV4, port: 8081, proto: "udp", sourcePort: 33001 });
      expect(udp).toMatchObject({ ok: true, peerAddr: ADDR.hostV4, peerPort: 33001 });
    } finally {
      await runInOk(host, "iptables", ["-t", "nat", "-D", ...EPHEMERAL_RULE]);
    }
    // Without this flush the next connection would still come out remapped:
    // the TIME_WAIT conntrack entries of 172.17.0.2:33000 (120 s) make the
    // kernel reuse their SNAT mapping for the same source ip:port.
    await flushConntrack(host);
    const again = await connectFrom(br.container, { addr: ADDR.serverV4, port: 8080, sourcePort: 33000 });
    expect(peerPort(again)).toBe(33000);
  });

  it("IPv6: the container reaches 2001:db8:20::10, masqueraded to the host's v6 address", async () => {
    const r = await connectFrom(br.container, { addr: ADDR.serverV6, port: 8080, sourcePort: 33000 });
    expect(r).toMatchObject({ ok: true, peerAddr: ADDR.hostV6, peerPort: 33000 });
  });

  it("upstream reaches the host from two different source networks", async () => {
    for (const sourceAddr of [ADDR.clientV4, ADDR.clientV4b]) {
      const r = await connectFrom(topo!.upstream, { addr: ADDR.hostV4, port: 9000, sourceAddr });
      expect(r).toMatchObject({ ok: true, peerAddr: sourceAddr });
    }
  });

  it("a dropped connection is a bounded timeout, a closed port is refused", async () => {
    const host = topo!.host;
    const drop = ["FORWARD", "-p", "tcp", "--dport", "8080", "-j", "DROP"];
    await runInOk(host, "iptables", ["-I", ...drop]);
    try {
      const r = await connectFrom(br.container, { addr: ADDR.serverV4, port: 8080, timeoutMs: 1_000 });
      expect(r).toMatchObject({ ok: false, reason: "timeout" });
      expect(r.durationMs).toBeLessThan(3_000);
    } finally {
      await runInOk(host, "iptables", ["-D", ...drop]);
    }
    const refused = await connectFrom(br.container, { addr: ADDR.serverV4, port: 8099 });
    expect(refused).toMatchObject({ ok: false, reason: "refused" });
    const udpRefused = await connectFrom(br.container, { addr: ADDR.serverV4, port: 8099, proto: "udp", timeoutMs: 1_000 });
    expect(udpRefused.ok).toBe(false);
  });
});

describe.skipIf(skip)("harness: real dockerd 20.10 in the host namespace", () => {
  let topo: Topology | undefined;
  let dockerd: Dockerd | undefined;
  const servers: EchoServer[] = [];
  const d = (): Dockerd => {
    if (!dockerd) throw new Error("dockerd not started");
    return dockerd;
  };

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    createdNamespaces.push(...topo.namespaces());
    // IPv6 works with 20.10: --ipv6 --fixed-cidr-v6 2001:db8:1234::/64 plus
    // --experimental --ip6tables (the harness default when ipv6 is on) gives
    // docker0 a v6 prefix and an ip6tables MASQUERADE like the v4 one.
    dockerd = await startDockerd(topo.host, { ipv6: true });
    createdDirs.push(dockerd.dir);
    servers.push(
      await startPortEchoServer(topo.upstream, ADDR.serverV4, 8080, "tcp"),
      await startPortEchoServer(topo.upstream, ADDR.serverV6, 8080, "tcp"),
    );
  });

  afterAll(async () => {
    for (const s of servers) await s.stop();
    await dockerd?.stop();
    await topo?.destroy();
    await killAllTracked();
  });

  it("a container on the default bridge keeps source port 33000", async () => {
    const r = await d().connectFromContainer({ addr: ADDR.serverV4, port: 8080, sourcePort: 33000 });
    expect(r).toMatchObject({ ok: true, peerAddr: ADDR.hostV4, peerPort: 33000 });
  });

  it("the --to-ports rule inserted at the top of nat POSTROUTING remaps it", async () => {
    await runInOk(topo!.host, "iptables", ["-t", "nat", "-I", ...EPHEMERAL_RULE]);
    const port = peerPort(await d().connectFromContainer({ addr: ADDR.serverV4, port: 8080, sourcePort: 33000 }));
    expect(inRemapRange(port), `port ${port}`).toBe(true);
  });

  it("docker network create puts Docker's MASQUERADE above ours: that network keeps 33000", async () => {
    await d().createNetwork("di-net");
    const rules = await natPostrouting(topo!.host);
    // Observed with docker.io 20.10.24 (nft backend): the new network's rule is
    // inserted at the head, above ours, e.g.
    //   -A POSTROUTING -s 203.0.113.128/28 ! -o br-xxxx -j MASQUERADE
    //   -A POSTROUTING -p tcp -m tcp --sport 32768:61000 -j MASQUERADE --to-ports 49152-61000
    //   -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
    // so containers on the new network are NOT remapped (port stays 33000),
    // while the default bridge (rule below ours) still is.
    const ours = rules.findIndex((l) => l.includes("--to-ports 49152-61000"));
    const newNet = rules.findIndex((l) => l.includes("-s 203.0.113.128/28"));
    const bridge = rules.findIndex((l) => l.includes("-s 172.17.0.0/16"));
    expect(ours, rules.join("\n")).toBeGreaterThanOrEqual(0);
    expect(newNet, rules.join("\n")).toBeGreaterThanOrEqual(0);
    expect(newNet, rules.join("\n")).toBeLessThan(ours);
    expect(ours, rules.join("\n")).toBeLessThan(bridge);

    const onNew = await d().connectFromContainer({ network: "di-net", addr: ADDR.serverV4, port: 8080, sourcePort: 33000 });
    expect(onNew).toMatchObject({ ok: true, peerAddr: ADDR.hostV4, peerPort: 33000 });
    const onDefault = peerPort(await d().connectFromContainer({ addr: ADDR.serverV4, port: 8080, sourcePort: 33000 }));
    expect(inRemapRange(onDefault), `port ${onDefault}`).toBe(true);

    await runInOk(topo!.host, "iptables", ["-t", "nat", "-D", ...EPHEMERAL_RULE]);
  });

  it("a published port is reachable from upstream at 192.0.2.2:8080", async () => {
    await d().startContainer(["-p", "8080:8080", TOOLS_IMAGE, "socat", "TCP-LISTEN:8080,fork,reuseaddr", "SYSTEM:echo hello"]);
    const r = await waitFor(
      "published port 8080",
      async () => {
        const c = await connectFrom(topo!.upstream, { addr: ADDR.hostV4, port: 8080, timeoutMs: 1_000 });
        return c.ok ? c : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(r.reply).toBe("hello");
    const fromOtherNet = await connectFrom(topo!.upstream, { addr: ADDR.hostV4, port: 8080, sourceAddr: ADDR.clientV4b });
    expect(fromOtherNet).toMatchObject({ ok: true, reply: "hello" });
  });

  it("IPv6: a container reaches 2001:db8:20::10 (ip6tables MASQUERADE to 2001:db8:1::2)", async () => {
    const r = await d().connectFromContainer({ addr: ADDR.serverV6, port: 8080, sourcePort: 33000 });
    expect(r).toMatchObject({ ok: true, peerAddr: ADDR.hostV6, peerPort: 33000 });
    const v6rules = await natPostrouting(topo!.host, true);
    expect(v6rules.join("\n")).toContain("-s 2001:db8:1234::/64 ! -o docker0 -j MASQUERADE");
  });

  it("restart(): dockerd comes back with the same state and re-creates its MASQUERADE rule", async () => {
    const host = topo!.host;
    // Delete Docker's own rule; a restarted dockerd must put it back.
    await runInOk(host, "iptables", ["-t", "nat", "-D", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j", "MASQUERADE"]);
    const pidBefore = d().pid();
    await d().restart();
    // Earlier tests left TIME_WAIT entries for 172.17.0.2:33000 whose mapping
    // (remapped) the kernel would reuse; start from a clean table.
    await flushConntrack(host);
    expect(d().pid()).not.toBe(pidBefore);
    const rules = await natPostrouting(host);
    expect(rules.join("\n")).toContain("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE");
    expect(await d().dockerOk(["image", "ls", "-q", TOOLS_IMAGE])).not.toBe("");
    const r = await d().connectFromContainer({ addr: ADDR.serverV4, port: 8080, sourcePort: 33000 });
    expect(peerPort(r)).toBe(33000);
  });
});

describe.skipIf(skip)("harness: cleanup", () => {
  it("left no namespaces, temp dirs, mounts or processes behind", async () => {
    expect(createdNamespaces.length).toBeGreaterThan(0);
    const left = await listNamespaces();
    expect(left.filter((n) => createdNamespaces.includes(n))).toEqual([]);
    const ipList = await run("ip", ["netns", "list"]);
    for (const ns of createdNamespaces) expect(ipList.stdout).not.toContain(ns);
    for (const dir of createdDirs) {
      expect(existsSync(dir), dir).toBe(false);
      expect(await processesMentioning(dir), `processes mentioning ${dir}`).toEqual([]);
      expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
    }
  });
});
