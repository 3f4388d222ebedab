// Containers never reach the instance metadata service when block_metadata is
// on, IPv4 (169.254.169.254) and IPv6 (fd00:ec2::254), proven with real
// packets from real Docker containers: directly, and through a port forward —
// dockinit refuses to forward to it (DI027, test/unit/security.test.ts), and a
// DNAT to it that something else put on the host is dropped too, for
// containers and for clients outside. The host itself keeps its access (it
// needs its credentials).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigString } from "../../src/index.js";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { startDockerd, type Dockerd } from "./lib/docker.js";
import { runInOk, tearDown } from "./lib/exec.js";
import { ADDR, connectFrom, createTopology, DROP_MS, dropped, flushConntrack, got, startPortEchoServer, type EchoServer, type Topology } from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "iptables", "ip6tables", "dockerd", "socat", "busybox", "conntrack"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const IMDS_V4 = "169.254.169.254";
const IMDS_V6 = "fd00:ec2::254";

const CONFIG = `version: 1
name: metadata
docker: { daemon: { dns: [amazon] } }
firewall: { containers: { block_metadata: true } }
port_forwards: [{ listen: 9000, to: '${ADDR.serverV4}:8080' }]
`;

describe.skipIf(skip)("instance metadata is out of containers' reach (IPv4, IPv6, and through a port forward)", () => {
  let topo: Topology;
  let dockerd: Dockerd;
  let bundle: RenderedBundle;
  let fw: FirewallRunner;
  const servers: EchoServer[] = [];

  const fromContainer = async (addr: string, port: number) => {
    await flushConntrack(topo.host);
    return dockerd.connectFromContainer({ addr, port, timeoutMs: DROP_MS });
  };
  const fromOutside = async (addr: string, port: number) => {
    await flushConntrack(topo.host);
    return connectFrom(topo.upstream, { addr, port, sourceAddr: addr.includes(":") ? ADDR.clientV6 : ADDR.clientV4, timeoutMs: DROP_MS });
  };

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    dockerd = await startDockerd(topo.host, { ipv6: true });
    await runInOk(topo.upstream, "ip", ["addr", "add", `${IMDS_V4}/32`, "dev", "lo"]);
    await runInOk(topo.upstream, "ip", ["-6", "addr", "add", `${IMDS_V6}/128`, "dev", "lo", "nodad"]);
    servers.push(
      await startPortEchoServer(topo.upstream, IMDS_V4, 80, "tcp"),
      await startPortEchoServer(topo.upstream, IMDS_V6, 80, "tcp"),
      await startPortEchoServer(topo.upstream, ADDR.serverV4, 8080, "tcp"),
    );
    bundle = renderYaml(CONFIG);
    fw = firewallRunner(topo.host, bundle.file(SCRIPT), { dockerHost: dockerd.host });
  });
  afterAll(() => tearDown(servers, dockerd, fw, bundle, topo));

  it("without dockinit a container reaches metadata over IPv4 and IPv6 (the test can see it)", async () => {
    expect(await fromContainer(IMDS_V4, 80)).toSatisfy(got);
    expect(await fromContainer(IMDS_V6, 80)).toSatisfy(got);
  });

  it("after apply: a container's connections to metadata are dropped, IPv4 and IPv6; the host still connects", async () => {
    const r = await fw.run("apply");
    expect(r.code, r.stderr).toBe(0);
    expect(await fromContainer(IMDS_V4, 80)).toSatisfy(dropped);
    expect(await fromContainer(IMDS_V6, 80)).toSatisfy(dropped);
    expect(await connectFrom(topo.host, { addr: IMDS_V4, port: 80, timeoutMs: DROP_MS })).toSatisfy(got);
    expect(await connectFrom(topo.host, { addr: IMDS_V6, port: 80, timeoutMs: DROP_MS })).toSatisfy(got);
  });

  it("dockinit's own port forward works from a container and from outside (the forward path is open)", async () => {
    expect(await fromContainer(ADDR.hostV4, 9000)).toSatisfy(got);
    expect(await fromOutside(ADDR.hostV4, 9000)).toSatisfy(got);
  });

  it("dockinit refuses a port forward to metadata (DI027), v4 and v6", () => {
    for (const to of [`${IMDS_V4}:80`, `[${IMDS_V6}]:80`]) {
      const r = loadConfigString(CONFIG.replace(`${ADDR.serverV4}:8080`, to));
      expect(r.diagnostics.map((d) => d.code)).toContain("DI027");
    }
  });

  it("a DNAT to metadata that something else put on the host is dropped for containers and for clients outside, v4 and v6", async () => {
    await runInOk(topo.host, "iptables", ["-t", "nat", "-I", "PREROUTING", "1", "-p", "tcp", "--dport", "9100", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DNAT", "--to-destination", `${IMDS_V4}:80`]);
    await runInOk(topo.host, "ip6tables", ["-t", "nat", "-I", "PREROUTING", "1", "-p", "tcp", "--dport", "9100", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DNAT", "--to-destination", `[${IMDS_V6}]:80`]);
    try {
      expect(await fromContainer(ADDR.hostV4, 9100)).toSatisfy(dropped);
      expect(await fromContainer(ADDR.hostV6, 9100)).toSatisfy(dropped);
      expect(await fromOutside(ADDR.hostV4, 9100)).toSatisfy(dropped);
      expect(await fromOutside(ADDR.hostV6, 9100)).toSatisfy(dropped);
    } finally {
      await runInOk(topo.host, "iptables", ["-t", "nat", "-D", "PREROUTING", "-p", "tcp", "--dport", "9100", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DNAT", "--to-destination", `${IMDS_V4}:80`]);
      await runInOk(topo.host, "ip6tables", ["-t", "nat", "-D", "PREROUTING", "-p", "tcp", "--dport", "9100", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DNAT", "--to-destination", `[${IMDS_V6}]:80`]);
    }
  });

  it("remove gives containers their access back (it was dockinit that blocked it)", async () => {
    expect((await fw.run("remove")).code).toBe(0);
    expect(await fromContainer(IMDS_V4, 80)).toSatisfy(got);
    expect(await fromContainer(IMDS_V6, 80)).toSatisfy(got);
  });
});
