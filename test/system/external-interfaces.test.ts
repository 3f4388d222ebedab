// The ephemeral-port fix on every external interface (issue 29), against
// real Docker: the namespace host gets a second external interface, eth1, to
// a second upstream namespace (up2), which it reaches by that interface's own
// connected routes (198.51.100.192/26, 2001:db8:2::/64), not by the default
// route through eth0. up2's echo server reports the source port each
// connection arrived with. Each backend: a container's port leaves eth1
// unchanged before apply (the control) and remapped after; a configured
// interface name keeps its old meaning (eth0 only: eth1 not remapped); with
// Docker's IPv6 NAT off, a routed container address leaves eth1 as itself.
// Runs once per engine of the Docker matrix (DOCKINIT_DOCKER_MATRIX).
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { DEFAULT_FIXED_CIDR_V6, startDockerd, type Dockerd } from "./lib/docker.js";
import { dockerFirewall, engineLabel, noteMatrix, startEngine, type Engine } from "./lib/engine.js";
import { killAllTracked, runInOk, runOk } from "./lib/exec.js";
import { ADDR, createTopology, flushConntrack, peerPort, startPortEchoServer, waitOperUp, type EchoServer, type Topology } from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "iptables", "nft", "dockerd", "socat", "busybox", "conntrack"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const PORT = 8080;
/** The second link: host eth1 ↔ up2 eth0 (documentation ranges, away from upstream's addresses and Docker's pool). */
const LINK2 = { hostV4: "198.51.100.194", up2V4: "198.51.100.193", hostV6: "2001:db8:2::2", up2V6: "2001:db8:2::1" } as const;

const remapped = (p: number) => p >= 49152 && p <= 61000;

const config = (backend: "iptables" | "nftables", extra = "") =>
  `version: 1\nname: two-enis\ndocker:\n  daemon:\n    dns: [amazon]\nephemeral_ports:\n  protocols: [tcp, udp]\nfirewall:\n  backend: ${backend}\n${extra}`;

interface Env {
  topo: Topology;
  up2: string;
  dockerd: Dockerd;
  servers: EchoServer[];
  bundles: RenderedBundle[];
  runners: FirewallRunner[];
}

/** A second upstream namespace behind a second interface of the host, eth1. */
async function addSecondUplink(topo: Topology): Promise<string> {
  const up2 = `di-${topo.id}-up2`;
  topo.adopt(up2);
  await runOk("ip", ["netns", "add", up2], { timeoutMs: 10_000 });
  await runInOk(up2, "ip", ["link", "set", "lo", "up"]);
  await runInOk(up2, "sysctl", ["-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
  await runInOk(topo.host, "ip", ["link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", up2]);
  await runInOk(topo.host, "ip", ["addr", "add", `${LINK2.hostV4}/26`, "dev", "eth1"]);
  await runInOk(topo.host, "ip", ["-6", "addr", "add", `${LINK2.hostV6}/64`, "dev", "eth1", "nodad"]);
  await runInOk(up2, "ip", ["addr", "add", `${LINK2.up2V4}/26`, "dev", "eth0"]);
  await runInOk(up2, "ip", ["-6", "addr", "add", `${LINK2.up2V6}/64`, "dev", "eth0", "nodad"]);
  await runInOk(topo.host, "ip", ["link", "set", "eth1", "up"]);
  await runInOk(up2, "ip", ["link", "set", "eth0", "up"]);
  await waitOperUp(topo.host, "eth1");
  await waitOperUp(up2, "eth0");
  return up2;
}

async function setup(engine: Engine, docker: { ip6tables: boolean }): Promise<Env> {
  const topo = await createTopology({ ipv6: true });
  try {
    const up2 = await addSecondUplink(topo);
    // The daemon.json key itself: Docker 27+ turns ip6tables on when it is absent.
    const dockerd = await startDockerd(topo.host, { ipv6: true, engine, ip6tables: docker.ip6tables, ...(docker.ip6tables ? {} : { daemonConfig: { ip6tables: false } }) });
    const servers = [
      await startPortEchoServer(up2, LINK2.up2V4, PORT, "tcp"),
      await startPortEchoServer(up2, LINK2.up2V4, PORT, "udp"),
      await startPortEchoServer(up2, LINK2.up2V6, PORT, "tcp"),
      await startPortEchoServer(topo.upstream, ADDR.serverV4, PORT, "tcp"),
      await startPortEchoServer(topo.upstream, ADDR.serverV6, PORT, "tcp"),
    ];
    process.env.DOCKINIT_DAEMON_JSON = join(dockerd.dir, "daemon.json");
    return { topo, up2, dockerd, servers, bundles: [], runners: [] };
  } catch (err) {
    await topo.destroy();
    throw err;
  }
}

function runner(env: Env, engine: Engine, yaml: string): FirewallRunner {
  const bundle = renderYaml(yaml);
  env.bundles.push(bundle);
  const fw = firewallRunner(env.topo.host, bundle.file(SCRIPT), { dockerHost: env.dockerd.host, engine });
  env.runners.push(fw);
  return fw;
}

async function teardown(env: Env | undefined): Promise<void> {
  delete process.env.DOCKINIT_DAEMON_JSON;
  if (!env) return;
  for (const s of env.servers) await s.stop();
  await env.dockerd.stop();
  for (const fw of env.runners) fw.cleanup();
  for (const b of env.bundles) b.cleanup();
  await env.topo.destroy();
}

/** What the server at `addr` saw of a container's connection from `sourcePort`: its address and port. */
async function seen(env: Env, addr: string, sourcePort: number, proto: "tcp" | "udp" = "tcp"): Promise<{ addr: string; port: number }> {
  await flushConntrack(env.topo.host);
  const r = await env.dockerd.connectFromContainer({ addr, port: PORT, proto, sourcePort, timeoutMs: 4_000 });
  const port = peerPort(r);
  return { addr: r.ok ? (r.peerAddr ?? "") : "", port };
}
const portOn = async (env: Env, addr: string, sourcePort: number, proto: "tcp" | "udp" = "tcp") => (await seen(env, addr, sourcePort, proto)).port;

for (const suite of noteMatrix()) {
  describe.skipIf(skip)(`${engineLabel(suite)}: the fix on a second external interface`, () => {
    let engine: Engine | undefined;
    beforeAll(async () => {
      engine = await startEngine(suite);
    });
    afterAll(async () => {
      await engine?.stop();
    });

    for (const backend of ["iptables", "nftables"] as const) {
      // Docker's nftables firewall refuses dockinit's iptables backend (DI058).
      describe.skipIf(backend === "iptables" && dockerFirewall(suite) === "nftables")(`${backend} backend, Docker NATs IPv4 and IPv6`, () => {
        let env: Env | undefined;
        let auto: FirewallRunner | undefined;
        beforeAll(async () => {
          env = await setup(engine!, { ip6tables: true });
          auto = runner(env, engine!, config(backend));
        });
        afterAll(async () => {
          await teardown(env);
          await killAllTracked();
        });

        it("the route to up2 leaves by eth1, not by the default route's eth0", async () => {
          expect(await runInOk(env!.topo.host, "ip", ["-o", "route", "get", LINK2.up2V4])).toMatch(/ dev eth1 /);
          expect(await runInOk(env!.topo.host, "ip", ["-o", "-6", "route", "get", LINK2.up2V6])).toMatch(/ dev eth1 /);
          expect(await runInOk(env!.topo.host, "ip", ["-o", "route", "get", ADDR.serverV4])).toMatch(/ dev eth0 /);
        });

        it("without dockinit (the control), a container's port 33000 leaves eth1 unchanged, IPv4 and IPv6", async () => {
          expect(await portOn(env!, LINK2.up2V4, 33000)).toBe(33000);
          expect(await portOn(env!, LINK2.up2V4, 33001, "udp")).toBe(33001);
          expect(await portOn(env!, LINK2.up2V6, 33002)).toBe(33002);
        });

        it("after apply (external_interface: auto), ports 33000/40000/45000 leave eth1 inside 49152-61000: TCP, UDP, IPv6; eth0 too", async () => {
          const r = await auto!.run("apply");
          expect(r.code, r.stderr).toBe(0);
          for (const p of [33000, 40000, 45000]) expect(await portOn(env!, LINK2.up2V4, p)).toSatisfy(remapped);
          expect(await portOn(env!, LINK2.up2V4, 33001, "udp")).toSatisfy(remapped);
          const v6 = await seen(env!, LINK2.up2V6, 33002);
          expect(v6.port).toSatisfy(remapped);
          // Docker's own NAT: the host's address on eth1, as without dockinit.
          expect(v6.addr).toBe(LINK2.hostV6);
          expect(await portOn(env!, ADDR.serverV4, 33003)).toSatisfy(remapped);
          expect((await auto!.run("status")).code).toBe(0);
        });

        it("remove brings the old ports back on eth1", async () => {
          expect((await auto!.run("remove")).code).toBe(0);
          expect(await portOn(env!, LINK2.up2V4, 33000)).toBe(33000);
        });

        it("external_interface: eth0 (a name, as before): eth0 is remapped, eth1 is not; status warns about a gateway route by eth1", async () => {
          const named = runner(env!, engine!, config(backend, "  external_interface: eth0\n"));
          const r = await named.run("apply");
          expect(r.code, r.stderr).toBe(0);
          expect(await portOn(env!, ADDR.serverV4, 33000)).toSatisfy(remapped);
          expect(await portOn(env!, LINK2.up2V4, 33000)).toBe(33000);
          // A network routed by a gateway on eth1: the configured list misses it.
          await runInOk(env!.topo.host, "ip", ["route", "add", "203.0.113.0/28", "via", LINK2.up2V4, "dev", "eth1"]);
          const s = await named.run("status");
          expect(s.code, s.stdout + s.stderr).toBe(0);
          expect(s.stdout).toContain("warning: routes leave by eth1, which firewall.external_interface does not name");
          expect(s.stdout).not.toContain("routes leave by eth0");
          await runInOk(env!.topo.host, "ip", ["route", "del", "203.0.113.0/28"]);
          expect((await named.run("remove")).code).toBe(0);
        });
      });
    }

    describe("Docker's IPv6 NAT off (ip6tables: false): a routed container address is not masqueraded", () => {
      let env: Env | undefined;
      beforeAll(async () => {
        env = await setup(engine!, { ip6tables: false });
        // Routed: both upstreams reach the containers' prefix through the host.
        await runInOk(env.up2, "ip", ["-6", "route", "add", DEFAULT_FIXED_CIDR_V6, "via", LINK2.hostV6]);
        await env.topo.routeFromUpstream(DEFAULT_FIXED_CIDR_V6);
      });
      afterAll(async () => {
        await teardown(env);
        await killAllTracked();
      });

      for (const backend of ["iptables", "nftables"] as const) {
        it.skipIf(backend === "iptables" && dockerFirewall(suite) === "nftables")(`${backend}: IPv4 is remapped on eth1; IPv6 leaves eth0 and eth1 with the container's own address and port, before apply and after`, async () => {
          const before = await seen(env!, LINK2.up2V6, 33002);
          expect(before.addr.startsWith("2001:db8:1234::"), before.addr).toBe(true);
          expect(before.port).toBe(33002);
          const beforeEth0 = await seen(env!, ADDR.serverV6, 33004);
          expect(beforeEth0).toEqual({ addr: before.addr, port: 33004 });
          const fw = runner(env!, engine!, config(backend));
          const r = await fw.run("apply");
          expect(r.code, r.stderr).toBe(0);
          expect(await portOn(env!, LINK2.up2V4, 33000)).toSatisfy(remapped);
          expect(await seen(env!, LINK2.up2V6, 33002)).toEqual(before);
          expect(await seen(env!, ADDR.serverV6, 33004)).toEqual(beforeEth0);
          expect((await fw.run("status")).code).toBe(0);
          expect((await fw.run("remove")).code).toBe(0);
        });
      }
    });
  });
}
