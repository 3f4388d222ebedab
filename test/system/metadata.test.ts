// Containers never reach the instance metadata service when block_metadata is
// on, IPv4 (169.254.169.254) and IPv6 (fd00:ec2::254), proven with real
// packets from real Docker containers: directly, and through a port forward —
// dockinit refuses to forward to it (DI027, test/unit/security.test.ts), and a
// DNAT to it that something else put on the host is dropped too, for
// containers and for clients outside. The host itself keeps its access (it
// needs its credentials). Every drop beside its control (lib/verdict.ts): the
// same probe before apply, or with dockinit's rules removed, gets through.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigString } from "../../src/index.js";
import { firewallRunner, withoutDockinit, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { startDockerd, type Dockerd } from "./lib/docker.js";
import { runInOk, tearDown } from "./lib/exec.js";
import { ADDR, connectFrom, createTopology, DROP_MS, flushConntrack, startPortEchoServer, type EchoServer, type Topology } from "./lib/topology.js";
import { probe, verdicts } from "./lib/verdict.js";

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
  const v = verdicts({ beforeRound: () => flushConntrack(topo.host) });

  const fromContainer = (addr: string, port: number) =>
    probe(`a container → ${addr}:${port}`, () => dockerd.connectFromContainer({ addr, port, timeoutMs: DROP_MS }));
  const fromOutside = (addr: string, port: number) => {
    const sourceAddr = addr.includes(":") ? ADDR.clientV6 : ADDR.clientV4;
    return probe(`${sourceAddr} (outside) → ${addr}:${port}`, () => connectFrom(topo.upstream, { addr, port, sourceAddr, timeoutMs: DROP_MS }));
  };
  const fromHost = (addr: string, port: number) => probe(`the host → ${addr}:${port}`, () => connectFrom(topo.host, { addr, port, timeoutMs: DROP_MS }));
  const toMetadata = [fromContainer(IMDS_V4, 80), fromContainer(IMDS_V6, 80)];

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

  it("a container reaches metadata over IPv4 and IPv6 before apply (the control), and is dropped after it; the host still connects", async () => {
    const before = await v.observe(toMetadata);
    const r = await fw.run("apply");
    expect(r.code, r.stderr).toBe(0);
    await v.expectVerdicts({ through: [fromHost(IMDS_V4, 80), fromHost(IMDS_V6, 80)], dropped: toMetadata }, { control: before });
  });

  it("dockinit's own port forward works from a container and from outside (the forward path is open)", async () => {
    await v.expectThrough([fromContainer(ADDR.hostV4, 9000), fromOutside(ADDR.hostV4, 9000)]);
  });

  it("dockinit refuses a port forward to metadata (DI027), v4 and v6", () => {
    for (const to of [`${IMDS_V4}:80`, `[${IMDS_V6}]:80`]) {
      const r = loadConfigString(CONFIG.replace(`${ADDR.serverV4}:8080`, to));
      expect(r.diagnostics.map((d) => d.code)).toContain("DI027");
    }
  });

  it("a DNAT to metadata that something else put on the host is dropped for containers and for clients outside, v4 and v6; with dockinit removed the same connections reach it", async () => {
    // A working forward, as its author would have made it: the DNAT, a
    // MASQUERADE so metadata (upstream, like the clients) answers through the
    // host, and an ACCEPT in FORWARD after Docker's rules (IPv6's policy is
    // DROP). Only dockinit's metadata drop can stop it: the control shows it.
    const rules = ([4, 6] as const).map((family) => {
      const [ipt, imds, to] = family === 4 ? ["iptables", IMDS_V4, `${IMDS_V4}:80`] : ["ip6tables", IMDS_V6, `[${IMDS_V6}]:80`];
      return {
        ipt,
        nat: [
          ["PREROUTING", "-p", "tcp", "--dport", "9100", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DNAT", "--to-destination", to],
          ["POSTROUTING", "-d", imds, "-p", "tcp", "--dport", "80", "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE"],
        ],
        filter: [["FORWARD", "-p", "tcp", "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdstport", "9100", "-j", "ACCEPT"]],
      };
    });
    try {
      for (const r of rules) {
        await runInOk(topo.host, r.ipt, ["-t", "nat", "-I", ...r.nat[0]!]);
        await runInOk(topo.host, r.ipt, ["-t", "nat", "-A", ...r.nat[1]!]);
        await runInOk(topo.host, r.ipt, ["-A", ...r.filter[0]!]);
      }
      await v.expectDropped(
        [fromContainer(ADDR.hostV4, 9100), fromContainer(ADDR.hostV6, 9100), fromOutside(ADDR.hostV4, 9100), fromOutside(ADDR.hostV6, 9100)],
        { control: withoutDockinit(fw) },
      );
    } finally {
      for (const r of rules) {
        for (const rule of r.nat) await runInOk(topo.host, r.ipt, ["-t", "nat", "-D", ...rule]).catch(() => undefined);
        for (const rule of r.filter) await runInOk(topo.host, r.ipt, ["-D", ...rule]).catch(() => undefined);
      }
    }
  });

  it("remove gives containers their access back (it was dockinit that blocked it)", async () => {
    expect((await fw.run("remove")).code).toBe(0);
    await v.expectThrough(toMetadata);
  });
});
