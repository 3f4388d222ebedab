// Docker 29's nftables firewall backend ("firewall-backend": "nftables"), by
// contract: no Docker 29 package is reachable here, so this test recreates
// what Docker 29 builds in the host's network namespace, as moby documents it
// (integration/network/bridge/nftablesdoc: generated/new-daemon.md and
// generated/usernet-portmap.md), for the default bridge docker0 with one
// "container" namespace publishing ports:
//
//   table ip docker-bridges / table ip6 docker-bridges
//     filter-FORWARD (filter), nat-PREROUTING / nat-OUTPUT (dstnat),
//     nat-POSTROUTING (srcnat), raw-PREROUTING (raw), the per-bridge verdict
//     maps and chains: established accept, ICC accept, one accept per
//     published port, "UNPUBLISHED PORT DROP"; DNAT per published port;
//     MASQUERADE for the bridge's subnet; "DROP DIRECT ACCESS".
//   No iptables rules at all, no DOCKER-USER chain.
//
// dockinit's nftables backend must work beside that without touching it:
// its own table inet dockinit with base chains that run first (dstnat - 10,
// filter - 10, srcnat - 10) and drops, never accepts, to enforce a policy.
// Every policy gets one connection that must get through and one that must be
// dropped, with real packets; re-creating Docker's tables (what Docker does on
// every start) must change nothing.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderFixture, renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { run, runIn, runInOk, tearDown } from "./lib/exec.js";
import { BLOCKED_V4, BLOCKED_V6, DNS_V4, METADATA_V4, METADATA_V6, policyConfig, startPolicyUpstream } from "./lib/policy-config.js";
import {
  ADDR,
  connectFrom,
  createTopology,
  DROP_MS,
  dropped,
  flushConntrack,
  got,
  startPortEchoServer,
  waitOperUp,
  type ConnectResult,
  type EchoServer,
  type Proto,
  type Topology,
} from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "nft", "socat", "conntrack"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
/** Ports the "container" publishes (Docker: -p P:P); 5000 is published but not listed in the config. */
const PUBLISHED = [8080, 443, 2368, 5000];
/** A port the container listens on but does not publish. */
const UNPUBLISHED = 7000;

interface Family {
  table: "ip" | "ip6";
  addr: "ip" | "ip6";
  subnet: string;
  container: string;
  loopback: string;
  hostPort: (a: string, p: number) => string;
}

const V4: Family = { table: "ip", addr: "ip", subnet: ADDR.bridgeSubnetV4, container: ADDR.containerV4, loopback: "127.0.0.0/8", hostPort: (a, p) => `${a}:${p}` };
const V6: Family = { table: "ip6", addr: "ip6", subnet: ADDR.bridgeSubnetV6, container: ADDR.containerV6, loopback: "::1", hostPort: (a, p) => `[${a}]:${p}` };

/**
 * One of Docker 29's `docker-bridges` tables for docker0 with a container
 * publishing `ports` (tcp, host port = container port), transcribed from
 * moby's nftablesdoc (new-daemon.md, usernet-portmap.md: same rules, docker0
 * instead of bridge1; counters and comments as Docker writes them). The one
 * change: nat-OUTPUT's "priority dstnat" is written -100 (the same value),
 * since bookworm's nft 1.0 accepts the name only for prerouting.
 */
function dockerBridgesTable(f: Family, ports: number[]): string {
  const dnat = ports.map((p) => `\t\tiifname != "docker0" tcp dport ${p} counter dnat to ${f.hostPort(f.container, p)} comment "DNAT"`);
  const open = ports.map((p) => `\t\t${f.addr} daddr ${f.container} tcp dport ${p} counter accept`);
  return `table ${f.table} docker-bridges {
	map filter-forward-in-jumps {
		type ifname : verdict
		elements = { "docker0" : jump filter-forward-in__docker0 }
	}
	map filter-forward-out-jumps {
		type ifname : verdict
		elements = { "docker0" : jump filter-forward-out__docker0 }
	}
	map nat-postrouting-in-jumps {
		type ifname : verdict
		elements = { "docker0" : jump nat-postrouting-in__docker0 }
	}
	map nat-postrouting-out-jumps {
		type ifname : verdict
		elements = { "docker0" : jump nat-postrouting-out__docker0 }
	}
	chain filter-FORWARD {
		type filter hook forward priority filter; policy accept;
		oifname vmap @filter-forward-in-jumps
		iifname vmap @filter-forward-out-jumps
	}
	chain nat-OUTPUT {
		type nat hook output priority -100; policy accept;
		${f.addr} daddr != ${f.loopback} fib daddr type local counter jump nat-prerouting-and-output
	}
	chain nat-POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		iifname vmap @nat-postrouting-out-jumps
		oifname vmap @nat-postrouting-in-jumps
	}
	chain nat-PREROUTING {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local counter jump nat-prerouting-and-output
	}
	chain nat-prerouting-and-output {
${dnat.join("\n")}
	}
	chain raw-PREROUTING {
		type filter hook prerouting priority raw; policy accept;
		${f.addr} daddr ${f.container} iifname != "docker0" counter drop comment "DROP DIRECT ACCESS"
	}
	chain filter-forward-in__docker0 {
		ct state established,related counter accept
		iifname "docker0" counter accept comment "ICC"
${open.join("\n")}
		counter drop comment "UNPUBLISHED PORT DROP"
	}
	chain filter-forward-out__docker0 {
		ct state established,related counter accept
		counter accept comment "OUTGOING"
	}
	chain nat-postrouting-in__docker0 {
	}
	chain nat-postrouting-out__docker0 {
		oifname != "docker0" ${f.addr} saddr ${f.subnet} counter masquerade comment "MASQUERADE"
	}
}
`;
}

/** What Docker 29 does to its tables on every start: delete them and create them anew. */
const loadDockerTables = (ns: string, ports: number[]) =>
  runInOk(ns, "nft", ["-f", "-"], {
    input: [V4, V6].map((f) => `table ${f.table} docker-bridges\ndelete table ${f.table} docker-bridges\n${dockerBridgesTable(f, ports)}`).join("\n"),
  });

const CONFIG = policyConfig({ name: "docker29", backend: "nftables", ephemeralPorts: "{ protocols: [tcp] }" });

const remapped = (r: ConnectResult) => r.ok && r.peerPort !== undefined && r.peerPort >= 49152 && r.peerPort <= 61000;

describe.skipIf(skip)("Docker 29 nftables backend (moby's documented ip/ip6 docker-bridges, recreated): dockinit's nftables policies with real packets", () => {
  let topo: Topology;
  let container: string;
  let bundle: RenderedBundle;
  let fw: FirewallRunner;
  const servers: EchoServer[] = [];
  let baseline: string[];

  /** `nft list ruleset`, one entry per table, sorted (re-creating a table moves it to the end), counters zeroed. */
  const ruleset = async (filter: (table: string) => boolean = () => true) =>
    (await runInOk(topo.host, "nft", ["list", "ruleset"]))
      .replace(/counter packets \d+ bytes \d+/g, "counter")
      .split(/(?=^table )/m)
      .map((t) => t.trim())
      .filter(filter)
      .sort();
  const fromOutside = async (port: number, sourceAddr: string, v6 = false) => {
    await flushConntrack(topo.host);
    return connectFrom(topo.upstream, { addr: v6 ? ADDR.hostV6 : ADDR.hostV4, port, sourceAddr, timeoutMs: DROP_MS });
  };
  const fromHost = (port: number, v6 = false) => connectFrom(topo.host, { addr: v6 ? ADDR.hostV6 : ADDR.hostV4, port, timeoutMs: DROP_MS });
  const fromContainer = async (addr: string, port = 8080, proto: Proto = "tcp", sourcePort?: number) => {
    await flushConntrack(topo.host);
    return connectFrom(container, { addr, port, proto, sourcePort, timeoutMs: DROP_MS });
  };

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    const { host } = topo;
    // docker0 and one container, as Docker 29 would wire them (no iptables).
    container = `di-${topo.id}-ctr`;
    topo.adopt(container);
    await run("ip", ["netns", "add", container], { timeoutMs: 10_000, check: true });
    await runInOk(container, "ip", ["link", "set", "lo", "up"]);
    await runInOk(container, "sysctl", ["-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    await runInOk(host, "ip", ["link", "add", "docker0", "type", "bridge"]);
    await runInOk(host, "ip", ["addr", "add", `${ADDR.bridgeV4}/16`, "dev", "docker0"]);
    await runInOk(host, "ip", ["-6", "addr", "add", `${ADDR.bridgeV6}/64`, "dev", "docker0", "nodad"]);
    const veth = `veth${topo.id.slice(-6)}`.slice(0, 15);
    await runInOk(host, "ip", ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", container]);
    await runInOk(host, "ip", ["link", "set", veth, "master", "docker0", "up"]);
    await runInOk(host, "ip", ["link", "set", "docker0", "up"]);
    await runInOk(container, "ip", ["addr", "add", `${ADDR.containerV4}/16`, "dev", "eth0"]);
    await runInOk(container, "ip", ["-6", "addr", "add", `${ADDR.containerV6}/64`, "dev", "eth0", "nodad"]);
    await runInOk(container, "ip", ["link", "set", "eth0", "up"]);
    await runInOk(container, "ip", ["route", "add", "default", "via", ADDR.bridgeV4]);
    await runInOk(container, "ip", ["-6", "route", "add", "default", "via", ADDR.bridgeV6]);
    for (const [ns, dev] of [[container, "eth0"], [host, veth], [host, "docker0"]] as const) await waitOperUp(ns, dev);
    await loadDockerTables(host, PUBLISHED);

    servers.push(...(await startPolicyUpstream(topo.upstream)));
    // The container's services, v4 and v6: the published ports and one that is not.
    for (const port of [...PUBLISHED, UNPUBLISHED]) {
      servers.push(await startPortEchoServer(container, ADDR.containerV4, port));
      servers.push(await startPortEchoServer(container, ADDR.containerV6, port));
    }
    // Docker 29 has no iptables rules; its firewall backend is in daemon.json.
    const daemonJson = join("/tmp", `dockinit-daemon-${topo.id}.json`);
    writeFileSync(daemonJson, JSON.stringify({ dns: [DNS_V4], "firewall-backend": "nftables" }));
    process.env.DOCKINIT_DAEMON_JSON = daemonJson;
    bundle = renderYaml(CONFIG);
    // No Docker API answers (DOCKER_HOST points nowhere): the script finds the backend in daemon.json.
    fw = firewallRunner(topo.host, bundle.file(SCRIPT), { dockerHost: `unix:///tmp/dockinit-nodocker-${topo.id}.sock` });
    baseline = await ruleset();
  });

  afterAll(async () => {
    const daemonJson = process.env.DOCKINIT_DAEMON_JSON;
    delete process.env.DOCKINIT_DAEMON_JSON;
    if (daemonJson) await run("rm", ["-f", daemonJson]);
    await tearDown(servers, fw, bundle, topo);
  });

  it("the recreation behaves as Docker 29 documents: published ports open to all, direct access to the container dropped, no DOCKER-USER, container ports leak", async () => {
    expect(await fromOutside(8080, ADDR.clientV4)).toSatisfy(got);
    expect(await fromOutside(5000, ADDR.clientV6, true)).toSatisfy(got);
    // Routed straight to the container (not through a published port): Docker's raw "DROP DIRECT ACCESS".
    await topo.routeFromUpstream(ADDR.bridgeSubnetV4);
    await flushConntrack(topo.host);
    expect(await connectFrom(topo.upstream, { addr: ADDR.containerV4, port: UNPUBLISHED, sourceAddr: ADDR.clientV4, timeoutMs: DROP_MS })).toSatisfy(dropped);
    expect(await fromContainer(METADATA_V4, 80)).toSatisfy(got);
    const leaked = await fromContainer(ADDR.serverV4, 8080, "tcp", 33000);
    expect(leaked.ok && leaked.peerPort).toBe(33000);
    expect((await runIn(topo.host, "iptables", ["-S", "DOCKER-USER"])).code).not.toBe(0);
  });

  it("status of an iptables-backend config names Docker's nftables backend and warns that it cannot work", async () => {
    const seed = renderFixture("seed", { backend: "iptables" });
    try {
      const r = await firewallRunner(topo.host, seed.file(SCRIPT), { dockerHost: `unix:///tmp/dockinit-nodocker-${topo.id}.sock` }).run("status");
      expect(r.code).toBe(1);
      expect(r.stdout).toContain("docker: unknown, firewall backend nftables");
      expect(r.stdout).toMatch(/warning: Docker uses its nftables firewall backend .*set firewall\.backend: nftables/);
    } finally {
      seed.cleanup();
    }
  });

  it("apply succeeds, leaves Docker's tables alone, and status names the backend with no warning", async () => {
    const docker = (t: string) => t.includes(" docker-bridges {");
    const before = await ruleset(docker);
    const r = await fw.run("apply");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
    const after = await ruleset(docker);
    expect(after).toEqual(before);
    const status = await fw.run("status");
    expect(status.code, status.stdout).toBe(0);
    expect(status.stdout).toContain("docker: unknown, firewall backend nftables");
    expect(status.stdout).not.toMatch(/warning/);
  });

  it("published port with an allow-list: the listed network connects, another is dropped (v4 and v6)", async () => {
    expect(await fromOutside(8080, ADDR.clientV4b)).toSatisfy(got);
    expect(await fromOutside(8080, ADDR.clientV4)).toSatisfy(dropped);
    expect(await fromOutside(8080, ADDR.clientV6, true)).toSatisfy(got);
    expect(await fromOutside(8080, ADDR.serverV6, true)).toSatisfy(dropped);
  });

  it("allow: [any] admits both networks; allow: [loopback] admits the host only", async () => {
    expect(await fromOutside(443, ADDR.clientV4)).toSatisfy(got);
    expect(await fromOutside(443, ADDR.clientV6, true)).toSatisfy(got);
    expect(await fromHost(2368)).toSatisfy(got);
    expect(await fromOutside(2368, ADDR.clientV4b)).toSatisfy(dropped);
  });

  it("default: deny: a published port not listed is dropped from outside (v4 and v6), still reachable from the host", async () => {
    expect(await fromOutside(5000, ADDR.clientV4b)).toSatisfy(dropped);
    expect(await fromOutside(5000, ADDR.clientV6, true)).toSatisfy(dropped);
    expect(await fromHost(5000)).toSatisfy(got);
  });

  it("containers: metadata and a blocked address dropped, v4 and v6; the host still reaches metadata; unblocked neighbours pass", async () => {
    expect(await fromContainer(METADATA_V4, 80)).toSatisfy(dropped);
    expect(await fromContainer(METADATA_V6, 80)).toSatisfy(dropped);
    expect(await connectFrom(topo.host, { addr: METADATA_V4, port: 80, timeoutMs: DROP_MS })).toSatisfy(got);
    expect(await connectFrom(topo.host, { addr: METADATA_V6, port: 80, timeoutMs: DROP_MS })).toSatisfy(got);
    expect(await fromContainer(BLOCKED_V4)).toSatisfy(dropped);
    expect(await fromContainer(BLOCKED_V6)).toSatisfy(dropped);
    expect(await fromContainer(ADDR.serverV4)).toSatisfy(got);
    expect(await fromContainer(ADDR.serverV6)).toSatisfy(got);
  });

  it("egress_allow: listed networks reachable, others dropped, the DNS server from daemon.json reachable (v4 and v6)", async () => {
    expect(await fromContainer(ADDR.serverV4)).toSatisfy(got);
    expect(await fromContainer(ADDR.serverV4b)).toSatisfy(dropped);
    expect(await fromContainer(DNS_V4, 53, "udp")).toSatisfy(got);
    expect(await fromContainer(ADDR.serverV6)).toSatisfy(got);
    expect(await fromContainer(ADDR.upstreamV6)).toSatisfy(dropped);
    expect(await runInOk(topo.host, "nft", ["list", "set", "inet", "dockinit", "egress4"])).toContain(DNS_V4);
  });

  it("port forward: outside clients and the host itself reach the target through host port 9000 (v4 and v6)", async () => {
    const outside = await fromOutside(9000, ADDR.clientV4b);
    expect(outside).toSatisfy(got);
    expect(outside.ok && outside.peerAddr).toBe(ADDR.hostV4); // masqueraded on the way out
    expect(await fromHost(9000)).toSatisfy(got);
    expect(await fromOutside(9000, ADDR.clientV6, true)).toSatisfy(got);
    expect(await fromHost(9000, true)).toSatisfy(got);
  });

  it("ephemeral ports: a container's port 33000 leaves in 49152-61000 although Docker's MASQUERADE runs in nat-POSTROUTING too", async () => {
    expect(await fromContainer(ADDR.serverV4, 8080, "tcp", 33000)).toSatisfy(remapped);
    expect(await fromContainer(ADDR.serverV6, 8080, "tcp", 33001)).toSatisfy(remapped);
  });

  it("Docker re-creating its tables (every daemon start) changes nothing: still enforced, status still ok", async () => {
    await loadDockerTables(topo.host, PUBLISHED);
    expect((await fw.run("status")).code).toBe(0);
    expect(await fromOutside(8080, ADDR.clientV4)).toSatisfy(dropped);
    expect(await fromOutside(8080, ADDR.clientV4b)).toSatisfy(got);
    expect(await fromContainer(METADATA_V4, 80)).toSatisfy(dropped);
    expect(await fromContainer(ADDR.serverV4, 8080, "tcp", 33000)).toSatisfy(remapped);
  });

  it("apply twice gives the same ruleset; remove restores the baseline exactly", async () => {
    const once = await ruleset();
    expect((await fw.run("apply")).code).toBe(0);
    expect(await ruleset()).toEqual(once);
    const r = await fw.run("remove");
    expect(r.code, r.stderr).toBe(0);
    expect(await ruleset()).toEqual(baseline);
    expect(await fromOutside(5000, ADDR.clientV4b)).toSatisfy(got);
  });
});
