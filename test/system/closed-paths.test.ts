// Closed on every path: a published-port policy gives the same verdict however
// the connection arrives, proven with real packets through the real Docker
// engine, for each engine of the matrix and both of dockinit's backends.
//
//   source ↓ · path →     IPv4 DNAT    IPv6 via docker-proxy   straight to a container
//   a listed network      pass         pass                    (default deny: drop)
//   another outside one   drop         drop                    drop
//   another container     by address   by address              —
//   the host itself       pass         pass                    —
//
// Docker here is IPv4-only (its default): a published port is also served on
// [::] by docker-proxy, delivered to a local socket (INPUT), never FORWARD.
// The policies are loaded with `apply-policies` before dockerd starts, as
// docker.service's drop-in does on a host, and stay while Docker restarts.
import { readlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { startDockerd, type Dockerd } from "./lib/docker.js";
import { dockinitBackends, engineLabel, noteMatrix, startEngine, type Engine } from "./lib/engine.js";
import { run, runInOk, spawnBackground, tearDown, waitFor } from "./lib/exec.js";
import { BLOCKED_V4, DNS_V4, METADATA_V4, policyConfig, startPolicyUpstream } from "./lib/policy-config.js";
import { ADDR, connectFrom, createTopology, DROP_MS, dropped, flushConntrack, got, type EchoServer, type Topology } from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "iptables", "ip6tables", "ipset", "nft", "dockerd", "socat", "busybox", "conntrack", "flock"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const PROXY = "/usr/local/sbin/dockinit-proxy";


for (const suite of noteMatrix()) for (const backend of dockinitBackends(suite)) {
  describe.skipIf(skip)(`${engineLabel(suite)}: ${backend} backend: every path to a published port gets the same verdict, before and after Docker starts`, () => {
    let engine: Engine;
    let topo: Topology;
    let dockerd: Dockerd;
    let bundle: RenderedBundle;
    let fw: FirewallRunner;
    let direct = "";
    let directId = "";
    const servers: EchoServer[] = [];

    const fromOutside = async (addr: string, port: number, sourceAddr: string) => {
      await flushConntrack(topo.host);
      return connectFrom(topo.upstream, { addr, port, sourceAddr, timeoutMs: DROP_MS });
    };
    const v4 = (port: number, source: string) => fromOutside(ADDR.hostV4, port, source);
    const v6 = (port: number, source: string) => fromOutside(ADDR.hostV6, port, source);
    const fromHost = (addr: string, port: number) => connectFrom(topo.host, { addr, port, timeoutMs: DROP_MS });
    const fromContainer = async (addr: string, port: number) => {
      await flushConntrack(topo.host);
      return dockerd.connectFromContainer({ addr, port, timeoutMs: DROP_MS });
    };

    beforeAll(async () => {
      engine = await startEngine(suite);
      topo = await createTopology({ ipv6: true });
      servers.push(...(await startPolicyUpstream(topo.upstream)));
      bundle = renderYaml(policyConfig({ name: "closed-paths", backend, ephemeralPorts: "{ enabled: false }", dockerFirewall: engine.firewall }));
      fw = firewallRunner(topo.host, bundle.file(SCRIPT), { engine });
      const daemonJson = join(bundle.out, "daemon.json");
      // The host's daemon.json as far as dockinit reads it: the DNS servers, and Docker's firewall backend.
      writeFileSync(daemonJson, JSON.stringify({ dns: [DNS_V4], ...(engine.firewall === "nftables" ? { "firewall-backend": "nftables" } : {}) }));
      process.env.DOCKINIT_DAEMON_JSON = daemonJson;
      // What docker.service's ExecStartPre does: the policies, with no
      // network knowledge, before dockerd exists.
      const pre = await fw.run("apply-policies");
      expect(pre.code, pre.stderr).toBe(0);
      // dockerd runs docker-proxy through dockinit-proxy (daemon.json's
      // userland-proxy-path, as rendered), with the script's state dir.
      process.env.DOCKINIT_STATE_DIR = fw.stateDir;
      dockerd = await startDockerd(topo.host, { engine, daemonConfig: { "userland-proxy-path": bundle.file(PROXY) } });
      // IPv4-only listeners, as most images are: IPv6 clients reach them only through docker-proxy.
      for (const port of [8080, 443, 2368, 5000]) {
        await dockerd.startContainer(["--restart", "always", "-p", `${port}:${port}`, "di-tools", "socat", `TCP-LISTEN:${port},fork,reuseaddr`, "SYSTEM:echo published"]);
      }
      directId = await dockerd.startContainer(["--restart", "always", "di-tools", "socat", "TCP-LISTEN:7000,fork,reuseaddr", "SYSTEM:echo direct"]);
      direct = await dockerd.dockerOk(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", directId]);
      // Upstream can route to the containers' network through the host (a neighbour on the same subnet could).
      await runInOk(topo.upstream, "ip", ["route", "add", "172.17.0.0/16", "via", ADDR.hostV4]);
      const r = await fw.run("apply");
      expect(r.code, r.stderr).toBe(0);
    });

    afterAll(async () => {
      delete process.env.DOCKINIT_DAEMON_JSON;
      delete process.env.DOCKINIT_STATE_DIR;
      await tearDown(servers, dockerd, fw, bundle, topo, engine);
    });

    it("the docker-proxy path exists: Docker listens on [::] for the IPv4-only containers, through dockinit-proxy", async () => {
      const ss = await runInOk(topo.host, "ss", ["-Hltn"]);
      for (const port of [8080, 5000]) expect(ss).toMatch(new RegExp(`\\[::\\]:${port}\\b|\\*:${port}\\b`));
      // Read with the engine's own tools: an older nft cannot always read a newer one's table.
      const set = backend === "iptables"
        ? await engine.runOk(topo.host, "ipset", ["list", "dockinit-proxy-tcp"])
        : await engine.runOk(topo.host, "nft", ["list", "set", "inet", "dockinit", "proxy_tcp"]);
      for (const port of [8080, 443, 2368, 5000]) expect(set).toMatch(new RegExp(`\\b${port}\\b`));
      // dockinit-proxy ran the docker-proxy beside this dockerd (this machine also has Debian's 20.10 one on PATH).
      if (!engine.chrooted) {
        const pids = (await run("ip", ["netns", "pids", topo.host])).stdout.split(/\s+/).filter(Boolean);
        const proxies = pids.map((pid) => { try { return readlinkSync(`/proc/${pid}/exe`); } catch { return ""; } }).filter((exe) => exe.endsWith("/docker-proxy"));
        expect(proxies.length).toBeGreaterThan(0);
        expect([...new Set(proxies)]).toEqual([join(dirname(engine.dockerd), "docker-proxy")]);
      }
    });

    it("a listed network passes on every path: IPv4 DNAT and IPv6 through docker-proxy", async () => {
      expect(await v4(8080, ADDR.clientV4b)).toSatisfy(got);
      expect(await v6(8080, ADDR.clientV6)).toSatisfy(got);
      expect(await v4(443, ADDR.clientV4)).toSatisfy(got);
      expect(await v6(443, ADDR.serverV6)).toSatisfy(got);
    });

    it("any other outside address is dropped on every path (IPv4 DNAT, IPv6 docker-proxy)", async () => {
      expect(await v4(8080, ADDR.clientV4)).toSatisfy(dropped);
      expect(await v6(8080, ADDR.serverV6)).toSatisfy(dropped);
      expect(await v6(2368, ADDR.clientV6)).toSatisfy(dropped);
    });

    it("default deny: an unlisted port is closed over IPv4 DNAT and over IPv6 through docker-proxy", async () => {
      expect(await v4(5000, ADDR.clientV4b)).toSatisfy(dropped);
      expect(await v6(5000, ADDR.clientV6)).toSatisfy(dropped);
    });

    it("default deny: a container address routed to straight from outside is dropped; the host still reaches it", async () => {
      expect(await fromOutside(direct, 7000, ADDR.clientV4b)).toSatisfy(dropped);
      expect(await fromHost(direct, 7000)).toSatisfy(got);
    });

    it("another container is judged by its address: dropped from a listed-only port, passes an open one", async () => {
      expect(await fromContainer(ADDR.hostV4, 8080)).toSatisfy(dropped);
      expect(await fromContainer(ADDR.hostV4, 443)).toSatisfy(got);
    });

    it("the host itself passes on every path, loopback-only ports included", async () => {
      expect(await fromHost(ADDR.hostV4, 2368)).toSatisfy(got);
      expect(await fromHost(ADDR.hostV6, 2368)).toSatisfy(got);
      expect(await fromHost("::1", 5000)).toSatisfy(got);
      expect(await fromHost(ADDR.hostV6, 8080)).toSatisfy(got);
    });

    it("a dockerd restart leaves every policy in force (nothing re-applied): metadata, the IPv6 path, default deny, and dockinit's own port forwards", async () => {
      // The port forwards (v4 and v6, to upstream: out by the interface they came in by) from outside and from a container, before the restart.
      const forwards = async () => {
        expect(await v4(9000, ADDR.clientV4b)).toSatisfy(got);
        expect(await v6(9000, ADDR.clientV6)).toSatisfy(got);
        expect(await fromContainer(ADDR.hostV4, 9000)).toSatisfy(got);
      };
      await forwards();
      await dockerd.restart();
      // The containers come back (restart: always) with their proxies, through dockinit-proxy again.
      await waitFor("the 5 containers running again", async () => (await dockerd.dockerOk(["ps", "-q"])).split("\n").filter(Boolean).length === 5, { timeoutMs: 30_000 });
      direct = await dockerd.dockerOk(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", directId]);
      expect(await fromOutside(direct, 7000, ADDR.clientV4b)).toSatisfy(dropped);
      expect(await fromContainer(METADATA_V4, 80)).toSatisfy(dropped);
      expect(await v6(5000, ADDR.clientV6)).toSatisfy(dropped);
      expect(await v4(5000, ADDR.clientV4b)).toSatisfy(dropped);
      expect(await v4(443, ADDR.clientV4)).toSatisfy(got);
      await forwards();
      // The nftables backend has nothing that must follow Docker: what apply left is still in place, the forwards' accepts included.
      if (backend === "nftables") {
        const status = await fw.run("status");
        expect(status.code, status.stdout).toBe(0);
      }
    });

    it("remove opens exactly these paths again (so the drops above were dockinit's): IPv6 through docker-proxy and the direct route", async () => {
      const r = await fw.run("remove");
      expect(r.code, r.stderr).toBe(0);
      expect(await v6(5000, ADDR.clientV6)).toSatisfy(got);
      expect(await v6(8080, ADDR.serverV6)).toSatisfy(got);
      expect(await v4(5000, ADDR.clientV4b)).toSatisfy(got);
      // Docker 28 and later drop traffic routed straight to a container themselves (raw PREROUTING; 29's nftables firewall too).
      expect(await fromOutside(direct, 7000, ADDR.clientV4b)).toSatisfy(Number(engine.docker) >= 28 ? dropped : got);
      expect(await fromContainer(BLOCKED_V4, 8080)).toSatisfy(got);
    });

    it("(after remove) a flow opened before apply stops carrying data once apply loads the policy", async () => {
      // Upstream streams a line every 0.2 s to whoever connects; a container
      // connects to the blocked address while nothing is in force.
      const stream = await spawnBackground("socat", [`TCP-LISTEN:9100,bind=${BLOCKED_V4},fork,reuseaddr`, "SYSTEM:while true; do echo x; sleep 0.2; done"], { netns: topo.upstream });
      try {
        await new Promise((r) => setTimeout(r, 300));
        const id = await dockerd.startContainer(["di-tools", "socat", "-u", `TCP:${BLOCKED_V4}:9100`, "STDOUT"]);
        const lines = async () => (await dockerd.dockerOk(["logs", id])).split("\n").filter((l) => l === "x").length;
        await waitFor("the flow to carry data", async () => (await lines()) >= 3, { timeoutMs: 10_000, intervalMs: 200 });
        const r = await fw.run("apply");
        expect(r.code, r.stderr).toBe(0);
        await new Promise((res) => setTimeout(res, 1_000));
        const after = await lines();
        await new Promise((res) => setTimeout(res, 2_000));
        // At 5 lines a second, an open flow would have added about 10.
        expect(await lines()).toBe(after);
      } finally {
        await stream.stop();
      }
    });

    it("(after remove) apply closes docker-proxy's ports again though no proxy restarted: it finds the ports of the proxies running", async () => {
      // remove took docker-proxy's sets with it; dockinit-proxy filled them as each proxy started, long before.
      expect(await v6(5000, ADDR.clientV6)).toSatisfy(dropped);
      expect(await v6(8080, ADDR.serverV6)).toSatisfy(dropped);
      expect(await v6(8080, ADDR.clientV6)).toSatisfy(got);
      expect(await v6(443, ADDR.serverV6)).toSatisfy(got);
    });
  });
}
