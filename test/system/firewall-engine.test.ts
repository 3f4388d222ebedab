// The ephemeral-port fix, proven with real packets through real iptables:
// a "container" behind a docker0 look-alike connects upstream from chosen
// source ports, and the upstream echo server reports the port it saw.
// Runs for both iptables backends (nf_tables and legacy) and for nftables.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner, type IptablesBackend } from "../support/firewall.js";
import { renderFixture, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { killAllTracked, runIn, runInOk, spawnBackground } from "./lib/exec.js";
import {
  ADDR,
  connectFrom,
  createLightBridge,
  createTopology,
  flushConntrack,
  peerPort,
  startPortEchoServer,
  type EchoServer,
  type LightBridge,
  type Proto,
  type Topology,
} from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "iptables", "iptables-legacy", "nft", "socat", "conntrack", "flock"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const ECHO_PORT = 8080;

interface Env {
  topo: Topology;
  br: LightBridge;
  servers: EchoServer[];
  bundles: RenderedBundle[];
}

async function setup(backend: IptablesBackend): Promise<Env> {
  const topo = await createTopology({ ipv6: true });
  const br = await createLightBridge(topo);
  if (backend === "legacy") {
    // Docker's own MASQUERADE lives in the backend Docker uses: move it.
    for (const [nft, legacy, subnet] of [
      ["iptables", "iptables-legacy", ADDR.bridgeSubnetV4],
      ["ip6tables", "ip6tables-legacy", ADDR.bridgeSubnetV6],
    ] as const) {
      await runInOk(topo.host, nft, ["-t", "nat", "-D", "POSTROUTING", "-s", subnet, "!", "-o", "docker0", "-j", "MASQUERADE"]);
      await runInOk(topo.host, legacy, ["-t", "nat", "-A", "POSTROUTING", "-s", subnet, "!", "-o", "docker0", "-j", "MASQUERADE"]);
    }
    // And Docker's IPv6 NAT chain (createLightBridge's), which tells dockinit Docker NATs IPv6.
    await runInOk(topo.host, "ip6tables", ["-t", "nat", "-X", "DOCKER"]);
    await runInOk(topo.host, "ip6tables-legacy", ["-t", "nat", "-N", "DOCKER"]);
  }
  const servers = [
    await startPortEchoServer(topo.upstream, ADDR.serverV4, ECHO_PORT, "tcp"),
    await startPortEchoServer(topo.upstream, ADDR.serverV4, ECHO_PORT, "udp"),
    await startPortEchoServer(topo.upstream, ADDR.serverV6, ECHO_PORT, "tcp"),
  ];
  return { topo, br, servers, bundles: [] };
}

async function teardown(env: Env | undefined): Promise<void> {
  if (!env) return;
  for (const s of env.servers) await s.stop();
  for (const b of env.bundles) b.cleanup();
  await env.topo.destroy();
}

/** The source port the upstream server saw for a container connection from `sourcePort`. */
async function seenPort(env: Env, sourcePort: number, proto: Proto = "tcp", v6 = false): Promise<number> {
  await flushConntrack(env.topo.host);
  const r = await connectFrom(env.br.container, { addr: v6 ? ADDR.serverV6 : ADDR.serverV4, port: ECHO_PORT, proto, sourcePort, timeoutMs: 3_000 });
  return peerPort(r);
}

const inRange = (lo: number, hi: number) => (p: number) => p >= lo && p <= hi;

describe.skipIf(skip).each(["nft", "legacy"] as const)("iptables backend (%s): ephemeral-port fix", (backend) => {
  let env: Env | undefined;
  let fw: FirewallRunner;
  let baseline4: string;
  let baseline6: string;

  beforeAll(async () => {
    env = await setup(backend);
    const seed = renderFixture("build-runner", { backend: "iptables" }); // tcp + udp, 32768-61000 → 49152-61000, host_range
    env.bundles.push(seed);
    fw = firewallRunner(env.topo.host, seed.file(SCRIPT), backend);
    baseline4 = await fw.save(4);
    baseline6 = await fw.save(6);
  });
  afterAll(async () => {
    fw?.cleanup();
    await teardown(env);
    await killAllTracked();
  });

  it("without dockinit, low source ports leave unchanged (the bug)", async () => {
    expect(await seenPort(env!, 33000)).toBe(33000);
    expect(await seenPort(env!, 40000, "udp")).toBe(40000);
    expect(await fw.run("status").then((r) => r.code)).toBe(1);
  });

  it("apply remaps TCP and UDP ports 33000/40000/45000 into 49152-61000, IPv4 and IPv6", async () => {
    const r = await fw.run("apply");
    expect(r.code, r.stderr).toBe(0);
    const ok = inRange(49152, 61000);
    for (const p of [33000, 40000, 45000]) {
      expect(await seenPort(env!, p)).toSatisfy(ok);
      expect(await seenPort(env!, p, "udp")).toSatisfy(ok);
    }
    expect(await seenPort(env!, 34000, "tcp", true)).toSatisfy(ok);
    // A port already inside `to` still works (and stays inside it).
    expect(await seenPort(env!, 50000)).toSatisfy(ok);
  });

  it("host_range narrows the host's own ip_local_port_range", async () => {
    expect((await runInOk(env!.topo.host, "cat", ["/proc/sys/net/ipv4/ip_local_port_range"])).trim().split(/\s+/)).toEqual(["49152", "61000"]);
  });

  it("apply twice leaves iptables-save identical, with the jump once and first", async () => {
    const once4 = await fw.save(4);
    const once6 = await fw.save(6);
    expect((await fw.run("apply")).code).toBe(0);
    expect(await fw.save(4)).toBe(once4);
    expect(await fw.save(6)).toBe(once6);
    const post = (await runInOk(env!.topo.host, fw.ipt(4), ["-t", "nat", "-S", "POSTROUTING"])).split("\n").filter((l) => l.startsWith("-A"));
    expect(post[0]).toBe("-A POSTROUTING -j DOCKINIT-POSTROUTING");
    expect(post.filter((l) => l.includes("DOCKINIT"))).toHaveLength(1);
    const status = await fw.run("status");
    expect(status.code, status.stdout + status.stderr).toBe(0);
  });

  it("status judges dockinit's chains against the kernel's own save taken right after apply: a rule slipped into a chain is named; apply restores", async () => {
    await runInOk(env!.topo.host, fw.ipt(4), ["-t", "nat", "-A", "DOCKINIT-POSTROUTING", "-s", "192.0.2.99/32", "-j", "RETURN"]);
    const status = await fw.run("status");
    expect(status.code).toBe(1);
    expect(status.stdout).toContain("IPv4 nat: dockinit's chains were changed since apply");
    expect(status.stdout).not.toContain("IPv6 nat:");
    expect((await fw.run("apply")).code).toBe(0);
    expect((await runInOk(env!.topo.host, fw.ipt(4), ["-t", "nat", "-S", "DOCKINIT-POSTROUTING"]))).not.toContain("192.0.2.99");
    expect((await fw.run("status")).code).toBe(0);
  });

  it("status names a MASQUERADE inserted above the jump, the traffic proves it shadows, apply restores", async () => {
    const shadow = ["-s", "172.17.0.0/16", "!", "-o", "br-test", "-j", "MASQUERADE"];
    await runInOk(env!.topo.host, fw.ipt(4), ["-t", "nat", "-I", "POSTROUTING", "1", ...shadow]);
    const status = await fw.run("status");
    expect(status.code).toBe(1);
    expect(status.stdout).toContain("-A POSTROUTING -s 172.17.0.0/16 ! -o br-test -j MASQUERADE");
    expect(await seenPort(env!, 33000)).toBe(33000);
    expect((await fw.run("apply")).code).toBe(0);
    expect(await seenPort(env!, 33000)).toSatisfy(inRange(49152, 61000));
    expect((await fw.run("status")).code).toBe(0);
    await runInOk(env!.topo.host, fw.ipt(4), ["-t", "nat", "-D", "POSTROUTING", ...shadow]);
  });

  it("a rule the kernel rejects leaves the tables exactly as they were and exits non-zero", async () => {
    const before = await fw.save(4);
    const broken = `${fw.ipt(4)}-broken.sh`;
    const scriptPath = env!.bundles[0]!.file(SCRIPT);
    const text = readFileSync(scriptPath, "utf8").replace(
      "-j MASQUERADE --to-ports 49152-61000\n-A DOCKINIT-POSTROUTING -p udp",
      "-j MASQUERADE --to-ports 49152-61000\n-A DOCKINIT-POSTROUTING -p tcp -j NO-SUCH-TARGET\n-A DOCKINIT-POSTROUTING -p udp",
    );
    expect(text).toContain("NO-SUCH-TARGET");
    const brokenPath = scriptPath.replace(/dockinit-firewall$/, broken);
    writeFileSync(brokenPath, text, { mode: 0o755 });
    const brokenFw = firewallRunner(env!.topo.host, brokenPath, backend);
    const r = await brokenFw.run("apply");
    brokenFw.cleanup();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/NO-SUCH-TARGET|rejected/);
    expect(await fw.save(4)).toBe(before);
  });

  it("foreign rules survive; remove restores the baseline exactly", async () => {
    await runInOk(env!.topo.host, fw.ipt(4), ["-t", "nat", "-A", "POSTROUTING", "-s", "198.51.100.0/24", "-j", "RETURN"]);
    const r = await fw.run("remove");
    expect(r.code, r.stderr).toBe(0);
    // The foreign rule stays where it was put; without it, the baseline.
    expect((await fw.save(4)).replace(/\n-A POSTROUTING -s 198.51.100.0\/24 -j RETURN/, "")).toBe(baseline4);
    expect(await fw.save(4)).toContain("-A POSTROUTING -s 198.51.100.0/24 -j RETURN");
    expect(await fw.save(6)).toBe(baseline6);
    await runInOk(env!.topo.host, fw.ipt(4), ["-t", "nat", "-D", "POSTROUTING", "-s", "198.51.100.0/24", "-j", "RETURN"]);
    expect((await runInOk(env!.topo.host, "cat", ["/proc/sys/net/ipv4/ip_local_port_range"])).trim().split(/\s+/)).toEqual(["32768", "60999"]);
    expect(await seenPort(env!, 33000)).toBe(33000);
  });

  // Only legacy iptables takes the xtables lock; iptables-nft uses nf_tables
  // transactions instead, so the test is registered for legacy alone.
  if (backend === "legacy") it("waits for a held xtables lock, then applies; gives up clearly when it stays held", async () => {
    // From a clean table, so apply has something to load (an apply whose
    // rules are already in place changes nothing and needs no lock).
    expect((await fw.run("remove")).code).toBe(0);
    const before = await fw.save(4);
    // Held for longer than LOCK_WAIT (10 s): apply must fail, change nothing.
    const longHold = await spawnBackground("flock", ["-x", "/run/xtables.lock", "sleep", "14"]);
    await new Promise((r) => setTimeout(r, 300));
    const failed = await fw.run("apply");
    await longHold.stop();
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/lock|xtables|nat table/i);
    expect(await fw.save(4)).toBe(before);
    // Held briefly: apply waits for it and succeeds.
    const shortHold = await spawnBackground("flock", ["-x", "/run/xtables.lock", "sleep", "2"]);
    await new Promise((r) => setTimeout(r, 300));
    const waited = await fw.run("apply");
    await shortHold.stop();
    expect(waited.code, waited.stderr).toBe(0);
    expect((await fw.run("status")).code).toBe(0);
    expect((await fw.run("remove")).code).toBe(0);
  });
});

describe.skipIf(skip)("another match/to pair (custom-range: 32768-60999 → 40000-44999)", () => {
  let env: Env | undefined;
  let fw: FirewallRunner;
  beforeAll(async () => {
    env = await setup("nft");
    const b = renderFixture("custom-range", { backend: "iptables" });
    env.bundles.push(b);
    fw = firewallRunner(env.topo.host, b.file(SCRIPT));
  });
  afterAll(async () => {
    fw?.cleanup();
    await teardown(env);
  });

  it("remaps into 40000-44999, not 49152-61000", async () => {
    expect((await fw.run("apply")).code).toBe(0);
    for (const p of [33000, 50000, 60000]) expect(await seenPort(env!, p)).toSatisfy(inRange(40000, 44999));
    expect(await seenPort(env!, 34000, "udp")).toSatisfy(inRange(40000, 44999));
    expect((await fw.run("remove")).code).toBe(0);
    expect(await seenPort(env!, 33000)).toBe(33000);
  });
});

describe.skipIf(skip)("nftables backend: a chain at srcnat - 10 that Docker cannot shadow", () => {
  let env: Env | undefined;
  let fw: FirewallRunner;
  beforeAll(async () => {
    env = await setup("nft");
    const b = renderFixture("nftables-udp"); // 32768-60999 → 50000-60999, sources 172.17.0.0/16 + 2001:db8:1234::/64
    env.bundles.push(b);
    fw = firewallRunner(env.topo.host, b.file(SCRIPT));
  });
  afterAll(async () => {
    fw?.cleanup();
    await teardown(env);
  });

  it("apply loads table inet dockinit; traffic is remapped, v4 and v6, tcp and udp", async () => {
    const r = await fw.run("apply");
    expect(r.code, r.stderr).toBe(0);
    const table = await runInOk(env!.topo.host, "nft", ["list", "table", "inet", "dockinit"]);
    expect(table).toMatch(/type nat hook postrouting priority srcnat - 10/);
    expect(await seenPort(env!, 33000)).toSatisfy(inRange(50000, 60999));
    expect(await seenPort(env!, 33001, "udp")).toSatisfy(inRange(50000, 60999));
    expect(await seenPort(env!, 33002, "tcp", true)).toSatisfy(inRange(50000, 60999));
    expect((await fw.run("status")).code).toBe(0);
  });

  it("a Docker-style MASQUERADE inserted at the top of nat POSTROUTING does not shadow it", async () => {
    await runInOk(env!.topo.host, "iptables", ["-t", "nat", "-I", "POSTROUTING", "1", "-s", "172.17.0.0/16", "!", "-o", "br-new", "-j", "MASQUERADE"]);
    expect(await seenPort(env!, 33000)).toSatisfy(inRange(50000, 60999));
    expect((await fw.run("status")).code).toBe(0);
  });

  it("apply twice gives the same ruleset; remove deletes the table", async () => {
    const once = await runInOk(env!.topo.host, "nft", ["list", "table", "inet", "dockinit"]);
    expect((await fw.run("apply")).code).toBe(0);
    expect(await runInOk(env!.topo.host, "nft", ["list", "table", "inet", "dockinit"])).toBe(once);
    expect((await fw.run("remove")).code).toBe(0);
    expect((await runIn(env!.topo.host, "nft", ["list", "table", "inet", "dockinit"])).code).not.toBe(0);
    expect((await fw.run("status")).code).toBe(1);
    expect(await seenPort(env!, 33000)).toBe(33000);
  });
});

describe.skipIf(skip)("preflight: refuses to run, with a clear message, instead of half-applying", () => {
  let env: Env | undefined;
  let script: string;
  beforeAll(async () => {
    env = await setup("nft");
    const b = renderFixture("seed", { backend: "iptables" });
    env.bundles.push(b);
    script = b.file(SCRIPT);
  });
  afterAll(async () => {
    await teardown(env);
  });

  it("without the iptables binaries: exit 1 naming the package", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockinit-noipt-"));
    // Everything the script needs except iptables itself.
    for (const tool of ["bash", "cat", "awk", "grep", "ip", "id", "mkdir", "rm", "sort", "head", "flock", "chmod"]) {
      symlinkSync(execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(), join(dir, tool));
    }
    // iptables-save's comment lines carry the time of day: compare the rules.
    const rules = async () => (await runInOk(env!.topo.host, "iptables-save", [])).split("\n").filter((l) => !l.startsWith("#")).join("\n");
    const before = await rules();
    const r = await runIn(env!.topo.host, "bash", [script, "apply"], { env: { ...process.env, DOCKINIT_PATH: dir, DOCKINIT_STATE_DIR: join(dir, "state") } });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/iptables not found; install the iptables/);
    expect(await rules()).toBe(before);
  });

  it("with Docker's chains in iptables-legacy while iptables is nf_tables: refuses and changes nothing", async () => {
    await runInOk(env!.topo.host, "iptables-legacy", ["-t", "nat", "-N", "DOCKER"]);
    const fw = firewallRunner(env!.topo.host, script);
    const before = await fw.save(4);
    const r = await fw.run("apply");
    fw.cleanup();
    await runInOk(env!.topo.host, "iptables-legacy", ["-t", "nat", "-X", "DOCKER"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Docker's rules are in iptables-legacy but iptables uses nf_tables/);
    expect(await fw.save(4)).toBe(before);
  });

  it("not as root: refuses", async () => {
    // The script is fed on stdin: the rendered file sits in a root-only temp dir.
    const r = await runIn(env!.topo.host, "setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-s", "status"], { input: readFileSync(script, "utf8") });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/must run as root/);
  });
});
