// Closed on every path: a published-port policy gives the same verdict however
// the connection arrives, proven with real packets through the real Docker
// engine, for each engine of the matrix and both of dockinit's backends.
// Every cell of docs/firewall.md's verdict table is a test here, asserted by
// the cell's kind from one data table (lib/verdict-table.ts, which the unit
// test system-tests-lint.test.ts compares with the page):
//
//   source ↓ · path →   IPv4 DNAT   IPv6 docker-proxy   IPv6 DNAT   straight to a container
//   a listed network    pass        pass                pass        drop
//   another outside     drop        drop                drop        drop
//   another container   by its address, through docker-proxy (x3)    Docker's own rules
//   the host itself     pass        pass                pass        pass
//
// Docker runs dual-stack. Each policy sits on two host ports: one published
// by an IPv4-only container, reached over IPv4 through Docker's DNAT and over
// IPv6 through docker-proxy ([::]:PORT, delivered to a local socket: INPUT,
// never FORWARD), and one by a dual-stack container, reached over IPv6
// through Docker's DNAT; both are also routed to straight, IPv4 and IPv6. The published servers answer with
// the address they saw, so each probe also proves the path it took. TCP and
// UDP (docker-proxy's UDP set included). Every drop beside its control
// (lib/verdict.ts): the same probes with dockinit's rules removed get through.
// The policies are loaded with `apply-policies` before dockerd starts, as
// docker.service's drop-in does on a host, and stay while Docker restarts.
import { readlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, withoutDockinit, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { startDockerd, type Dockerd } from "./lib/docker.js";
import { dockinitBackends, engineLabel, noteMatrix, startEngine, type Engine } from "./lib/engine.js";
import { run, runInOk, spawnBackground, tearDown, waitFor } from "./lib/exec.js";
import { BLOCKED_V4, DNS_V4, METADATA_V4, policyConfig, PUBLISHED, startPolicyUpstream } from "./lib/policy-config.js";
import { ADDR, connectFrom, createTopology, DROP_MS, ECHO_SCRIPT, flushConntrack, UDP_ECHO_SCRIPT, type EchoServer, type Proto, type Topology } from "./lib/topology.js";
import { PATHS, SOURCES, VERDICTS, WORDS, type PathId, type SourceId } from "./lib/verdict-table.js";
import { probe, verdicts, type Probe } from "./lib/verdict.js";

const skip = skipUnless(["root", "ip", "iptables", "ip6tables", "ipset", "nft", "dockerd", "socat", "busybox", "conntrack", "flock"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const PROXY = "/usr/local/sbin/dockinit-proxy";

/** docker0, dual-stack, where the probing containers run: 172.17.0.0/24 (room for the networks beside it) and 2001:db8:1234::/64. */
const BIP = "172.17.0.1/24";
/** The host's IPv6 address on docker0 (BIP's IPv6 network is Docker's default fixed-cidr-v6 here). */
const BIP_V6_GATEWAY = "2001:db8:1234::1";
/** The published containers' networks: one IPv4-only, one dual-stack. */
const V4ONLY = { name: "v4only", subnet: "172.17.1.0/24", gateway: "172.17.1.1" };
const DUAL = { name: "dual", subnet: "172.17.2.0/24", subnetV6: "2001:db8:1235::/64", gatewayV6: "2001:db8:1235::1" };
/**
 * Docker 28 and later drop traffic routed straight to a container themselves
 * (raw PREROUTING; 29's nftables firewall too) unless its network is
 * `nat-unprotected`: so the straight-to-a-container column measures
 * dockinit's verdict on every engine (older engines ignore the option).
 */
const UNPROTECTED = ["-o", "com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected", "-o", "com.docker.network.bridge.gateway_mode_ipv6=nat-unprotected"];

const ports = (family: "v4only" | "dual", protocol: Proto) =>
  Object.values(PUBLISHED)
    .filter((p) => p.protocol === protocol)
    .map((p) => p[family]);

/** The published servers: every port of one family of the policies, each answering with the address it saw. */
const servers = (family: "v4only" | "dual"): string[] => {
  const [tcp, udp] = family === "v4only" ? ["TCP4-LISTEN:$p,fork,reuseaddr", "UDP4-RECVFROM:$p,fork,reuseaddr"] : ["TCP6-LISTEN:$p,fork,reuseaddr,ipv6only=0", "UDP6-RECVFROM:$p,fork,reuseaddr,ipv6only=0"];
  return [
    ...[...ports(family, "tcp").map((p) => `${p}:${p}`), ...ports(family, "udp").map((p) => `${p}:${p}/udp`)].flatMap((p) => ["-p", p]),
    "-e", `TCP=${ports(family, "tcp").join(" ")}`,
    "-e", `UDP=${ports(family, "udp").join(" ")}`,
    "di-tools", "sh", "-c",
    // A shell as PID 1 ignores SIGTERM unless it traps it: without the trap every stop (a dockerd restart) waits out Docker's stop timeout.
    `trap "exit 0" TERM; for p in $TCP; do socat ${tcp} "SYSTEM:$1" & done; for p in $UDP; do socat ${udp} "SYSTEM:$2" & done; wait`,
    "sh", ECHO_SCRIPT, UDP_ECHO_SCRIPT,
  ];
};

/** What each cell of the verdict table runs: probes that must get through, must be dropped, or must get Docker's verdict. */
interface CellProbes {
  through?: Probe[];
  dropped?: Probe[];
  same?: Probe[];
}

for (const suite of noteMatrix()) for (const backend of dockinitBackends(suite)) {
  describe.skipIf(skip)(`${engineLabel(suite)}: ${backend} backend: every path to a published port gets the same verdict, before and after Docker starts`, () => {
    let engine: Engine;
    let topo: Topology;
    let dockerd: Dockerd;
    let bundle: RenderedBundle;
    let fw: FirewallRunner;
    /** The targets routed to straight: the IPv4-only container's address, the dual-stack one's IPv6 address. */
    let direct = "";
    let directV6 = "";
    let directId = "";
    let dualId = "";
    const addresses = async () => {
      direct = await dockerd.dockerOk(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", directId]);
      directV6 = await dockerd.dockerOk(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", dualId]);
      expect(direct).toMatch(/^172\.17\.1\.\d+$/);
      expect(directV6).toMatch(/^2001:db8:1235:/);
    };
    const upstreamServers: EchoServer[] = [];
    /** Many probes from namespaces (cheap), a few from containers: one round costs one timeout. */
    const v = verdicts({ beforeRound: () => flushConntrack(topo.host), concurrency: 24 });

    const fromOutside = (sourceAddr: string, addr: string, port: number, proto: Proto = "tcp", peer?: string) =>
      probe(`${sourceAddr} (outside) → ${addr}:${port}/${proto}`, () => connectFrom(topo.upstream, { addr, port, proto, sourceAddr, timeoutMs: DROP_MS }), peer);
    const fromHost = (addr: string, port: number, proto: Proto = "tcp", peer?: string) =>
      probe(`the host → ${addr}:${port}/${proto}`, () => connectFrom(topo.host, { addr, port, proto, timeoutMs: DROP_MS }), peer);
    const fromContainer = (addr: string, port: number, o: { network?: string; peer?: string } = {}) =>
      probe(`a container${o.network ? ` on ${o.network}` : ""} → ${addr}:${port}/tcp`, () => dockerd.connectFromContainer({ addr, port, network: o.network, timeoutMs: DROP_MS }), o.peer);

    const P = PUBLISHED;
    const { hostV4, hostV6, clientV4, clientV4b, clientV6, serverV6 } = ADDR;
    /** Every cell's probes (built once the containers' addresses are known). */
    const cells = (): Record<SourceId, Record<PathId, CellProbes>> => ({
      listed: {
        v4dnat: { through: [fromOutside(clientV4b, hostV4, P.listed.v4only, "tcp", clientV4b), fromOutside(clientV4b, hostV4, P.listedUdp.v4only, "udp", clientV4b), fromOutside(clientV4, hostV4, P.any.v4only, "tcp", clientV4)] },
        v6proxy: { through: [fromOutside(clientV6, hostV6, P.listed.v4only, "tcp", V4ONLY.gateway), fromOutside(clientV6, hostV6, P.listedUdp.v4only, "udp", V4ONLY.gateway), fromOutside(serverV6, hostV6, P.any.v4only, "tcp", V4ONLY.gateway)] },
        v6dnat: { through: [fromOutside(clientV6, hostV6, P.listed.dual, "tcp", clientV6), fromOutside(clientV6, hostV6, P.listedUdp.dual, "udp", clientV6), fromOutside(serverV6, hostV6, P.any.dual, "tcp", serverV6)] },
        // Listed for the port, routed straight to the container that publishes it.
        direct: { dropped: [fromOutside(clientV4b, direct, P.listed.v4only), fromOutside(clientV4b, direct, P.listedUdp.v4only, "udp"), fromOutside(clientV6, directV6, P.listed.dual), fromOutside(clientV6, directV6, P.listedUdp.dual, "udp")] },
      },
      outside: {
        v4dnat: { dropped: [fromOutside(clientV4, hostV4, P.listed.v4only), fromOutside(clientV4b, hostV4, P.loopback.v4only), fromOutside(clientV4b, hostV4, P.unlisted.v4only), fromOutside(clientV4, hostV4, P.listedUdp.v4only, "udp"), fromOutside(clientV4b, hostV4, P.unlistedUdp.v4only, "udp")] },
        v6proxy: { dropped: [fromOutside(serverV6, hostV6, P.listed.v4only), fromOutside(clientV6, hostV6, P.loopback.v4only), fromOutside(clientV6, hostV6, P.unlisted.v4only), fromOutside(serverV6, hostV6, P.listedUdp.v4only, "udp"), fromOutside(clientV6, hostV6, P.unlistedUdp.v4only, "udp")] },
        v6dnat: { dropped: [fromOutside(serverV6, hostV6, P.listed.dual), fromOutside(clientV6, hostV6, P.loopback.dual), fromOutside(clientV6, hostV6, P.unlisted.dual), fromOutside(serverV6, hostV6, P.listedUdp.dual, "udp"), fromOutside(clientV6, hostV6, P.unlistedUdp.dual, "udp")] },
        direct: { dropped: [fromOutside(clientV4, direct, P.listed.v4only), fromOutside(clientV4b, direct, P.unlisted.v4only), fromOutside(serverV6, directV6, P.listed.dual), fromOutside(clientV6, directV6, P.unlisted.dual)] },
      },
      // Containers on docker0 (172.17.0.0/24, 2001:db8:1234::/64): port `listed` lists Docker's networks, `loopback` does not.
      container: {
        v4dnat: { through: [fromContainer(hostV4, P.listed.v4only, { peer: V4ONLY.gateway })], dropped: [fromContainer(hostV4, P.loopback.v4only), fromContainer(hostV4, P.unlisted.v4only)] },
        v6proxy: { through: [fromContainer(hostV6, P.listed.v4only, { peer: V4ONLY.gateway })], dropped: [fromContainer(hostV6, P.loopback.v4only)] },
        v6dnat: { through: [fromContainer(hostV6, P.listed.dual, { peer: DUAL.gatewayV6 })], dropped: [fromContainer(hostV6, P.loopback.dual)] },
        // From another bridge (Docker isolates networks), v4 and v6, and from the target's own.
        direct: { same: [fromContainer(direct, P.listed.v4only), fromContainer(directV6, P.listed.dual), fromContainer(direct, P.listed.v4only, { network: V4ONLY.name })] },
      },
      host: {
        v4dnat: { through: [fromHost(hostV4, P.listed.v4only, "tcp", hostV4), fromHost(hostV4, P.loopback.v4only, "tcp", hostV4), fromHost(hostV4, P.listedUdp.v4only, "udp", hostV4)] },
        v6proxy: { through: [fromHost(hostV6, P.listed.v4only, "tcp", V4ONLY.gateway), fromHost(hostV6, P.loopback.v4only, "tcp", V4ONLY.gateway), fromHost("::1", P.unlisted.v4only, "tcp", V4ONLY.gateway)] },
        v6dnat: { through: [fromHost(hostV6, P.listed.dual, "tcp", hostV6), fromHost(hostV6, P.loopback.dual, "tcp", hostV6)] },
        direct: { through: [fromHost(direct, P.listed.v4only, "tcp", V4ONLY.gateway), fromHost(directV6, P.listed.dual, "tcp", DUAL.gatewayV6)] },
      },
    });

    beforeAll(async () => {
      engine = await startEngine(suite);
      topo = await createTopology({ ipv6: true });
      upstreamServers.push(...(await startPolicyUpstream(topo.upstream)));
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
      dockerd = await startDockerd(topo.host, { engine, ipv6: true, bip: BIP, daemonConfig: { "userland-proxy-path": bundle.file(PROXY) } });
      await dockerd.createNetwork(V4ONLY.name, { subnet: V4ONLY.subnet, args: UNPROTECTED });
      await dockerd.createNetwork(DUAL.name, { subnet: DUAL.subnet, ipv6Subnet: DUAL.subnetV6, args: UNPROTECTED });
      directId = await dockerd.startContainer(["--restart", "always", "--network", V4ONLY.name, ...servers("v4only")]);
      dualId = await dockerd.startContainer(["--restart", "always", "--network", DUAL.name, ...servers("dual")]);
      await addresses();
      // Upstream can route to the containers' networks through the host (a neighbour on the same subnet could).
      await topo.routeFromUpstream("172.17.0.0/16");
      await topo.routeFromUpstream(DUAL.subnetV6);
      const r = await fw.run("apply");
      expect(r.code, r.stderr).toBe(0);
    });

    afterAll(async () => {
      delete process.env.DOCKINIT_DAEMON_JSON;
      delete process.env.DOCKINIT_STATE_DIR;
      await tearDown(upstreamServers, dockerd, fw, bundle, topo, engine);
    });

    it("the docker-proxy path exists: Docker listens on [::] for the published ports, TCP and UDP, through dockinit-proxy", async () => {
      const ss = await runInOk(topo.host, "ss", ["-Hlntu"]);
      for (const port of [P.listed.v4only, P.unlisted.v4only, P.listedUdp.v4only, P.unlistedUdp.v4only]) expect(ss).toMatch(new RegExp(`\\[::\\]:${port}\\b|\\*:${port}\\b`));
      // Read with the engine's own tools: an older nft cannot always read a newer one's table.
      for (const protocol of ["tcp", "udp"] as const) {
        const set = backend === "iptables"
          ? await engine.runOk(topo.host, "ipset", ["list", `dockinit-proxy-${protocol}`])
          : await engine.runOk(topo.host, "nft", ["list", "set", "inet", "dockinit", `proxy_${protocol}`]);
        for (const port of [...ports("v4only", protocol), ...ports("dual", protocol)]) expect(set).toMatch(new RegExp(`\\b${port}\\b`));
      }
      // dockinit-proxy ran the docker-proxy beside this dockerd (this machine also has Debian's 20.10 one on PATH).
      if (!engine.chrooted) {
        const pids = (await run("ip", ["netns", "pids", topo.host])).stdout.split(/\s+/).filter(Boolean);
        const proxies = pids.map((pid) => { try { return readlinkSync(`/proc/${pid}/exe`); } catch { return ""; } }).filter((exe) => exe.endsWith("/docker-proxy"));
        expect(proxies.length).toBeGreaterThan(0);
        expect([...new Set(proxies)]).toEqual([join(dirname(engine.dockerd), "docker-proxy")]);
      }
    });

    // The iptables backend's policies hang off Docker's FORWARD: after the
    // boot order (apply-policies before dockerd, apply after it) the jump must
    // come before Docker's own accepts, in both families.
    if (backend === "iptables") it("iptables backend: after apply-policies, dockerd's start and apply, FORWARD jumps to DOCKER-USER and DOCKER-USER to DOCKINIT-USER first, IPv4 and IPv6", async () => {
      for (const ipt of ["iptables", "ip6tables"]) {
        const first = async (chain: string) => (await engine.runOk(topo.host, ipt, ["-S", chain])).split("\n").find((l) => l.startsWith("-A "));
        expect(await first("FORWARD"), `${ipt} -S FORWARD:\n${await engine.runOk(topo.host, ipt, ["-S", "FORWARD"])}`).toBe("-A FORWARD -j DOCKER-USER");
        expect(await first("DOCKER-USER"), ipt).toBe("-A DOCKER-USER -j DOCKINIT-USER");
      }
    });

    it("an IPv6 datagram a container spoofs with the host's own address is judged like any other: to docker-proxy's unlisted UDP port, dropped (with dockinit's rules removed, the published server gets it)", async () => {
      // The container takes the host's IPv6 address as its own (NET_ADMIN
      // stands in for CAP_NET_RAW's raw socket: the packet is the same) and
      // sends to the host's address on docker0, where docker-proxy listens
      // on [::]: IPv6 has no martian check for a local source, so the
      // packet reaches INPUT from docker0 with the host's address as source.
      // The published server logs every datagram it gets: the proof it got through.
      const port = 5355;
      const server = await dockerd.startContainer(["--network", V4ONLY.name, "-p", `${port}:${port}/udp`, "di-tools", "socat", "-u", `UDP4-RECVFROM:${port},fork,reuseaddr`, "STDOUT"]);
      const received = async () => (await dockerd.dockerOk(["logs", server])).split("\n").filter((l) => l.startsWith("spoofed")).length;
      let n = 0;
      const spoofed = probe(`a container, as ${hostV6} → [${BIP_V6_GATEWAY}]:${port}/udp (docker-proxy)`, async () => {
        const before = await received();
        const tag = `spoofed-${++n}`;
        const t0 = Date.now();
        await dockerd.dockerOk(["run", "--rm", "--cap-add", "NET_ADMIN", "di-tools", "sh", "-c",
          // busybox's ip has no nodad: wait (bounded) until duplicate address detection is done with it.
          `ip -6 addr add ${hostV6}/128 dev eth0 && for i in $(seq 1 25); do ip -6 addr show dev eth0 | grep -q tentative || break; sleep 0.2; done && for i in 1 2 3; do echo ${tag} | socat -u - UDP6-SENDTO:[${BIP_V6_GATEWAY}]:${port},bind=[${hostV6}]; sleep 0.3; done`]);
        for (let i = 0; i < 10; i++) {
          if ((await received()) > before) return { ok: true, reply: tag, durationMs: Date.now() - t0 };
          await new Promise((r) => setTimeout(r, 200));
        }
        return { ok: false, reason: "timeout" as const, detail: "the published server logged no datagram", durationMs: Date.now() - t0 };
      });
      try {
        await v.expectDropped(spoofed, { control: withoutDockinit(fw) });
      } finally {
        // The tests below count the containers running.
        await dockerd.dockerOk(["rm", "-f", server]);
      }
    });

    // docs/firewall.md's verdict table, one row per test, each cell asserted by its kind.
    for (const source of SOURCES) {
      const row = VERDICTS[source.id];
      it(`verdict table, ${source.label}: ${PATHS.map((p) => `${p.header.replace(/ \(.*\)$/, "")} ${WORDS[row[p.id]]}`).join("; ")}`, async () => {
        const mine = cells()[source.id];
        const through: Probe[] = [];
        const dropped: Probe[] = [];
        const same: Probe[] = [];
        for (const path of PATHS) {
          const cell = mine[path.id];
          const kind = row[path.id];
          const has = { through: (cell.through ?? []).length > 0, dropped: (cell.dropped ?? []).length > 0, same: (cell.same ?? []).length > 0 };
          // A cell's probes are what its words claim, no more, no less.
          const want = { pass: { through: true, dropped: false, same: false }, drop: { through: false, dropped: true, same: false }, "by-address": { through: true, dropped: true, same: false }, docker: { through: false, dropped: false, same: true } }[kind];
          expect(has, `${source.label} × ${path.header}: "${WORDS[kind]}"`).toEqual(want);
          through.push(...(cell.through ?? []));
          dropped.push(...(cell.dropped ?? []));
          same.push(...(cell.same ?? []));
        }
        // One round with dockinit's rules, one without them (the drops' control, and Docker's own verdict on the `same` probes).
        await v.expectVerdicts({ through, dropped, same }, { control: withoutDockinit(fw) });
      });
    }

    it("a dockerd restart leaves every policy in force (nothing re-applied): metadata, the IPv6 path, default deny, and dockinit's own port forwards", async () => {
      // The port forwards (v4 and v6, to upstream: out by the interface they came in by) from outside and from a container, before the restart.
      const forwards = () => [fromOutside(clientV4b, hostV4, 9000), fromOutside(clientV6, hostV6, 9000), fromContainer(hostV4, 9000)];
      await v.expectThrough(forwards());
      await dockerd.restart();
      // The containers come back (restart: always) with their proxies, through dockinit-proxy again.
      await waitFor("the 2 containers running again", async () => (await dockerd.dockerOk(["ps", "-q"])).split("\n").filter(Boolean).length === 2, { timeoutMs: 30_000 });
      await addresses();
      // The nftables backend has nothing that must follow Docker: what apply left is still in place, the forwards' accepts included.
      // Except on Docker 20.10: its ip6tables FORWARD has no DOCKER-USER, and
      // a restart puts Docker's own IPv6 FORWARD rules back above the forwards'
      // accepts (none of them drops a forward: the forwards pass below); status
      // says so until the unit's apply after Docker's start.
      if (backend === "nftables") {
        const status = await fw.run("status");
        const problems = status.stdout.split("\n").filter((l) => l !== "" && !l.startsWith("docker: ") && !l.startsWith("bundle: "));
        if (engine.docker === "20.10") expect(problems, status.stdout).toEqual(["ip6tables: the port forwards' accepts are not first in FORWARD as apply left them"]);
        else expect(status.code, status.stdout).toBe(0);
      }
      await v.expectVerdicts(
        {
          through: [fromOutside(clientV4, hostV4, P.any.v4only), ...forwards()],
          dropped: [fromOutside(clientV4b, direct, P.listed.v4only), fromOutside(clientV6, directV6, P.listed.dual), fromContainer(METADATA_V4, 80), fromOutside(clientV6, hostV6, P.unlisted.v4only), fromOutside(clientV4b, hostV4, P.unlisted.v4only), fromOutside(clientV6, hostV6, P.unlistedUdp.v4only, "udp")],
        },
        { control: withoutDockinit(fw) },
      );
    });

    it("remove opens exactly these paths again (so the drops above were dockinit's): IPv6 through docker-proxy, IPv4 DNAT and the direct route", async () => {
      const r = await fw.run("remove");
      expect(r.code, r.stderr).toBe(0);
      await v.expectThrough([
        fromOutside(clientV6, hostV6, P.unlisted.v4only, "tcp", V4ONLY.gateway),
        fromOutside(serverV6, hostV6, P.listed.v4only, "tcp", V4ONLY.gateway),
        fromOutside(clientV4b, hostV4, P.unlisted.v4only, "tcp", clientV4b),
        fromOutside(clientV4b, direct, P.listed.v4only, "tcp", clientV4b),
        fromOutside(clientV6, directV6, P.listed.dual, "tcp", clientV6),
        fromContainer(BLOCKED_V4, 8080),
      ]);
    });

    it("(after remove) a flow opened before apply stops carrying data once apply loads the policy", async () => {
      // Upstream streams a line every 0.2 s to whoever connects; a container
      // connects to the blocked address while nothing is in force.
      const stream = await spawnBackground("socat", [`TCP-LISTEN:9100,bind=${BLOCKED_V4},fork,reuseaddr`, "SYSTEM:while true; do echo x; sleep 0.2; done"], { netns: topo.upstream });
      try {
        await new Promise((r) => setTimeout(r, 300));
        const id = await dockerd.startContainer(["di-tools", "socat", "-u", `TCP:${BLOCKED_V4}:9100`, "STDOUT"]);
        const lines = async () => (await dockerd.dockerOk(["logs", id])).split("\n").filter((l) => l === "x").length;
        // The control: before apply, the flow carries data.
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

    it("apply after a remove closes docker-proxy's ports again though no proxy restarted: it finds the ports of the proxies running (TCP and UDP)", async () => {
      // remove takes docker-proxy's sets with it; dockinit-proxy filled them as each proxy started, long before.
      expect((await fw.run("remove")).code).toBe(0);
      const closed = [fromOutside(clientV6, hostV6, P.unlisted.v4only), fromOutside(serverV6, hostV6, P.listed.v4only), fromOutside(clientV6, hostV6, P.unlistedUdp.v4only, "udp")];
      const removed = await v.observe(closed);
      const r = await fw.run("apply");
      expect(r.code, r.stderr).toBe(0);
      await v.expectVerdicts({ through: [fromOutside(clientV6, hostV6, P.listed.v4only), fromOutside(serverV6, hostV6, P.any.v4only)], dropped: closed }, { control: removed });
    });
  });
}

// `published.default: allow` with a per-port allow-list: a route straight to
// the container's address carries the container's port, not the published
// one the list names, so it is dropped as under deny (Docker 28+ drops it
// itself, hence `nat-unprotected` networks: dockinit's verdict on every
// engine). Published traffic keeps the list's verdicts and the default's.
for (const suite of noteMatrix()) for (const backend of dockinitBackends(suite)) {
  describe.skipIf(skip)(`${engineLabel(suite)}: ${backend} backend: default allow with a per-port list closes routes straight to a container`, () => {
    let engine: Engine;
    let topo: Topology;
    let dockerd: Dockerd;
    let bundle: RenderedBundle;
    let fw: FirewallRunner;
    let direct = "";
    let directV6 = "";
    const upstreamServers: EchoServer[] = [];
    const v = verdicts({ beforeRound: () => flushConntrack(topo.host), concurrency: 16 });
    const { hostV4, clientV4, clientV4b, clientV6 } = ADDR;
    const fromOutside = (sourceAddr: string, addr: string, port: number, peer?: string) =>
      probe(`${sourceAddr} (outside) → ${addr}:${port}/tcp`, () => connectFrom(topo.upstream, { addr, port, sourceAddr, timeoutMs: DROP_MS }), peer);
    const fromHost = (addr: string, port: number, peer?: string) => probe(`the host → ${addr}:${port}/tcp`, () => connectFrom(topo.host, { addr, port, timeoutMs: DROP_MS }), peer);

    beforeAll(async () => {
      engine = await startEngine(suite);
      topo = await createTopology({ ipv6: true });
      bundle = renderYaml(`version: 1
name: direct-allow
${engine.firewall === "nftables" ? "docker: { daemon: { settings: { firewall-backend: nftables } } }\n" : ""}ephemeral_ports: { enabled: false }
firewall:
  backend: ${backend}
  published:
    default: allow
    rules:
      - { port: 8080, allow: [203.0.113.0/24, ${clientV6}/128] }
      - { port: 8081, allow: [203.0.113.0/24, ${clientV6}/128] }
  containers: { block_metadata: false }
`);
      fw = firewallRunner(topo.host, bundle.file(SCRIPT), { engine });
      dockerd = await startDockerd(topo.host, { engine, ipv6: true, bip: BIP });
      await dockerd.createNetwork(V4ONLY.name, { subnet: V4ONLY.subnet, args: UNPROTECTED });
      await dockerd.createNetwork(DUAL.name, { subnet: DUAL.subnet, ipv6Subnet: DUAL.subnetV6, args: UNPROTECTED });
      const serve = (port: number, listen: string) => ["di-tools", "sh", "-c", `trap "exit 0" TERM; for p in ${port} 5000; do socat ${listen.replace("PORT", "$p")} "SYSTEM:$1" & done; wait`, "sh", ECHO_SCRIPT];
      const v4 = await dockerd.startContainer(["--network", V4ONLY.name, "-p", "8080:8080", "-p", "5000:5000", ...serve(8080, "TCP4-LISTEN:PORT,fork,reuseaddr")]);
      const v6 = await dockerd.startContainer(["--network", DUAL.name, "-p", "8081:8081", "-p", "5001:5000", ...serve(8081, "TCP6-LISTEN:PORT,fork,reuseaddr,ipv6only=0")]);
      direct = await dockerd.dockerOk(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", v4]);
      directV6 = await dockerd.dockerOk(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", v6]);
      expect(direct).toMatch(/^172\.17\.1\.\d+$/);
      expect(directV6).toMatch(/^2001:db8:1235:/);
      await topo.routeFromUpstream("172.17.0.0/16");
      await topo.routeFromUpstream(DUAL.subnetV6);
    });

    afterAll(async () => {
      await tearDown(upstreamServers, dockerd, fw, bundle, topo, engine);
    });

    it("before apply a listed client reaches the container straight (v4 and v6); after apply that is dropped, while published traffic keeps its verdicts: listed passes, unlisted is dropped, unruled ports stay open, the host reaches the container", async () => {
      const straight = [fromOutside(clientV4b, direct, 8080), fromOutside(clientV4b, direct, 5000), fromOutside(clientV6, directV6, 8081)];
      const unlisted = [fromOutside(clientV4, hostV4, 8080)];
      // The control, before the rules: straight routes and the unlisted client get through.
      const before = await v.observe([...straight, ...unlisted]);
      const r = await fw.run("apply");
      expect(r.code, r.stderr).toBe(0);
      const status = await fw.run("status");
      expect(status.code, status.stdout).toBe(0);
      expect(status.stdout).toContain("routed straight to a container from outside: dropped");
      await v.expectVerdicts(
        {
          through: [fromOutside(clientV4b, hostV4, 8080, clientV4b), fromOutside(clientV4, hostV4, 5000, clientV4), fromOutside(clientV6, ADDR.hostV6, 8081, clientV6), fromHost(direct, 8080, V4ONLY.gateway)],
          dropped: [...straight, ...unlisted],
        },
        { control: before },
      );
    });
  });
}
