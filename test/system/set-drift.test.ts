// The contents of dockinit's sets are part of what status checks (issue 29,
// a review's finding): a widened egress allow-list is a hole status must
// name (SET_CHANGED) and apply must close, on both backends, with packets.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { runInOk, tearDown } from "./lib/exec.js";
import { ADDR, connectFrom, createLightBridge, createTopology, DROP_MS, flushConntrack, startPortEchoServer, type EchoServer, type LightBridge, type Topology } from "./lib/topology.js";
import { probe, verdicts } from "./lib/verdict.js";

const skip = skipUnless(["root", "ip", "iptables", "ip6tables", "nft", "ipset", "socat", "conntrack", "nsenter"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const PORT = 8080;

// Containers may reach serverV4 only; serverV4b is outside the allow-list.
const config = (backend: string) => `version: 1
name: set-drift
docker: { daemon: { dns: [amazon] } }
firewall:
  backend: ${backend}
  containers: { egress_allow: [${ADDR.serverV4}/32] }
`;

describe.skipIf(skip).each(["nftables", "iptables"] as const)("%s backend: a widened egress allow-list fails status, and apply closes it", (backend) => {
  let topo: Topology;
  let br: LightBridge;
  const servers: EchoServer[] = [];
  let bundle: RenderedBundle;
  let fw: FirewallRunner;
  const v = verdicts({ beforeRound: () => flushConntrack(topo.host) });
  const toServer = (addr: string) => probe(`a container → ${addr}:${PORT}`, () => connectFrom(br.container, { addr, port: PORT, timeoutMs: DROP_MS }));
  const allowed = toServer(ADDR.serverV4);
  const outside = toServer(ADDR.serverV4b);
  const codes = async () => {
    const r = await fw.run("status", "--json");
    return { code: r.code, problems: (JSON.parse(r.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code) };
  };

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    br = await createLightBridge(topo);
    servers.push(await startPortEchoServer(topo.upstream, ADDR.serverV4, PORT, "tcp"), await startPortEchoServer(topo.upstream, ADDR.serverV4b, PORT, "tcp"));
    bundle = renderYaml(config(backend));
    fw = firewallRunner(topo.host, bundle.file(SCRIPT));
  });
  afterAll(() => tearDown(servers, fw, bundle, topo));

  it("SET_CHANGED after someone adds to the allow-list (the hole is real: the probe gets through); apply takes it out again", async () => {
    const control = await v.observe([allowed, outside]);
    expect((await fw.run("apply")).code).toBe(0);
    expect(await codes()).toEqual({ code: 0, problems: [] });
    await v.expectVerdicts({ through: [allowed], dropped: [outside] }, { control });

    // Widened by hand: the set now lets containers reach serverV4b.
    if (backend === "nftables") await runInOk(topo.host, "nft", ["add", "element", "inet", "dockinit", "egress4", `{ ${ADDR.serverV4b} }`]);
    else await runInOk(topo.host, "ipset", ["add", "dockinit-egress4", ADDR.serverV4b]);
    await v.expectVerdicts({ through: [allowed, outside] });
    expect(await codes()).toEqual({ code: 1, problems: ["SET_CHANGED"] });

    expect((await fw.run("apply")).code).toBe(0);
    expect(await codes()).toEqual({ code: 0, problems: [] });
    await v.expectVerdicts({ through: [allowed], dropped: [outside] }, { control });
  });
});
