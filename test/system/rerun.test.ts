// Reboot and re-run semantics, with real Docker in a namespace, running
// dockinit-firewall the way systemd does: docker.service's drop-in runs
// `apply-policies` before every start of dockerd, dockinit-firewall.service
// runs `apply` after it (PartOf/WantedBy=docker.service), and nothing is
// removed when Docker stops. cloud-init runs write_files and
// dockinit-boot once per instance; the units run on every boot and every
// Docker start. After each event the whole policy is in force: status clean,
// a container's low source port remapped, a published port open only to its
// allow-list, metadata dropped.
// (The same under systemd itself, in a booted guest, is test/system/boot.test.ts.)
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { REPO } from "../support/fixtures.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { startDockerd, type Dockerd } from "./lib/docker.js";
import { runIn, runInOk, spawnBackground, tearDown, waitFor, type Background } from "./lib/exec.js";
import { ADDR, connectFrom, createTopology, DROP_MS, dropped, flushConntrack, got, peerPort, startPortEchoServer, type EchoServer, type Topology } from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "iptables", "ip6tables", "dockerd", "socat", "busybox", "conntrack", "curl", "python3"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const IMDS = "169.254.169.254";

const CONFIG = `version: 1
name: rerun
docker: { daemon: { dns: [vpc, amazon] } }
ephemeral_ports: { protocols: [tcp, udp] }
firewall:
  published: { rules: [{ port: 8080, allow: [203.0.113.0/24] }] }
  containers: { block_metadata: true }
`;

describe.skipIf(skip)("re-runs: the unit's apply after every Docker start, every boot", () => {
  let topo: Topology;
  let dockerd: Dockerd;
  let bundle: RenderedBundle;
  let fw: FirewallRunner;
  let imds: Background | undefined;
  const servers: EchoServer[] = [];

  const remapped = async () => {
    await flushConntrack(topo.host);
    const p = peerPort(await dockerd.connectFromContainer({ addr: ADDR.serverV4, port: 9090, sourcePort: 33000, timeoutMs: 4_000 }));
    return p >= 49152 && p <= 61000;
  };
  const connect = async (ns: string, o: Parameters<typeof connectFrom>[1]) => {
    await flushConntrack(topo.host);
    return connectFrom(ns, { timeoutMs: DROP_MS, ...o });
  };

  /** The whole policy, proven with packets, and status clean. */
  const inForce = async (when: string) => {
    const status = await fw.run("status");
    expect(status.code, `${when}: ${status.stdout}${status.stderr}`).toBe(0);
    expect(await remapped(), `${when}: remap`).toBe(true);
    // The allowed client is the control: the same port, the same path, another source.
    expect(await connect(topo.upstream, { addr: ADDR.hostV4, port: 8080, sourceAddr: ADDR.clientV4b }), `${when}: allowed client`).toSatisfy(got);
    expect(await connect(topo.upstream, { addr: ADDR.hostV4, port: 8080, sourceAddr: ADDR.clientV4 }), `${when}: other client`).toSatisfy(dropped);
    await flushConntrack(topo.host);
    expect(await dockerd.connectFromContainer({ addr: IMDS, port: 80, timeoutMs: DROP_MS }), `${when}: metadata`).toSatisfy(dropped);
  };

  /** systemctl restart docker: nothing removed as Docker stops; the drop-in's apply-policies, dockerd, then the unit's apply. */
  const dockerRestart = async () => {
    const policies = await fw.save(4);
    expect(policies).toContain("-A DOCKER-USER -j DOCKINIT-USER");
    const pre = await fw.run("apply-policies");
    expect(pre.code, pre.stderr).toBe(0);
    await dockerd.restart();
    const start = await fw.run("apply");
    expect(start.code, start.stderr).toBe(0);
  };

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    dockerd = await startDockerd(topo.host, { ipv6: true });
    await runInOk(topo.upstream, "ip", ["addr", "add", `${IMDS}/32`, "dev", "lo"]);
    servers.push(await startPortEchoServer(topo.upstream, ADDR.serverV4, 9090, "tcp"), await startPortEchoServer(topo.upstream, IMDS, 80, "tcp"));
    // A published container that comes back with Docker (restart policy), as a service would.
    await dockerd.startContainer(["--restart", "always", "-p", "8080:8080", "di-tools", "socat", "TCP-LISTEN:8080,fork,reuseaddr", "SYSTEM:echo published"]);
    bundle = renderYaml(CONFIG, { backend: "iptables" });
    fw = firewallRunner(topo.host, bundle.file(SCRIPT), { dockerHost: dockerd.host });
  });
  afterAll(() => tearDown(imds, servers, dockerd, fw, bundle, topo));

  it("first boot: the unit's apply puts the whole policy in force", async () => {
    const r = await fw.run("apply");
    expect(r.code, r.stderr).toBe(0);
    await inForce("first boot");
  });

  it("the unit started again (systemctl restart dockinit-firewall, or a second apply): nothing changes", async () => {
    const before = [await fw.save(4), await fw.save(6)];
    expect((await fw.run("apply")).code).toBe(0);
    expect([await fw.save(4), await fw.save(6)]).toEqual(before);
  });

  it("systemctl restart docker: the policies stay, Docker stops and starts (re-inserting its rules), apply: in force again", async () => {
    await dockerRestart();
    await inForce("after docker restart");
  });

  it("apply-policies on a host where everything is in place changes nothing (the drop-in on every Docker start)", async () => {
    const before = [await fw.save(4), await fw.save(6)];
    expect((await fw.run("apply-policies")).code).toBe(0);
    expect([await fw.save(4), await fw.save(6)]).toEqual(before);
  });

  it("Docker restarted behind the unit's back (a crash, Restart=always): status says so, apply (the watch's re-assert) fixes it", async () => {
    await dockerd.restart();
    // Docker 20.10 re-inserts its MASQUERADE on top after a restart.
    const status = await fw.run("status");
    expect(status.code, status.stdout).toBe(1);
    expect(status.stdout).toMatch(/not first in POSTROUTING|shadowed/);
    expect((await fw.run("apply")).code).toBe(0);
    await inForce("after a restart behind the unit's back");
  });

  it("reboot: empty tables, fresh /run, Docker starts, the unit applies; daemon.json is not rewritten, so Docker is not restarted", async () => {
    // A new kernel: no rules at all, not Docker's either, and an empty /run/dockinit.
    for (const t of ["iptables-restore", "ip6tables-restore"]) {
      await runInOk(topo.host, t, [], { input: "*nat\nCOMMIT\n*filter\nCOMMIT\n" });
    }
    // dockinit-vpc-dns runs before Docker on every boot: with the resolver already in
    // daemon.json it leaves the file alone (dockinit-boot restarts Docker only for a newer file).
    imds = await spawnBackground("python3", [join(REPO, "test", "support", "fake-imds.py"), "--bind", "127.0.0.1", "--port", "8169"], { netns: topo.host });
    await runInOk(topo.host, "ip", ["link", "set", "lo", "up"]);
    await waitFor("fake IMDS", async () => imds!.output().includes("listening"), { timeoutMs: 10_000, intervalMs: 50 });
    const daemonJson = join(bundle.out, "daemon.json");
    writeFileSync(daemonJson, readFileSync(bundle.file("/etc/docker/daemon.json")));
    const env = { ...process.env, DOCKINIT_DAEMON_JSON: daemonJson, DOCKINIT_IMDS_ENDPOINT: "http://127.0.0.1:8169" };
    const first = await runIn(topo.host, "bash", [bundle.file("/usr/local/sbin/dockinit-vpc-dns")], { env });
    expect(first.code, first.stderr).toBe(0);
    const written = readFileSync(daemonJson, "utf8");
    const mtime = statSync(daemonJson).mtimeMs;
    expect(JSON.parse(written).dns).toEqual(["198.51.100.2", "169.254.169.253"]);
    const again = await runIn(topo.host, "bash", [bundle.file("/usr/local/sbin/dockinit-vpc-dns")], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(daemonJson, "utf8")).toBe(written);
    expect(statSync(daemonJson).mtimeMs).toBe(mtime);
    // With a state directory as empty as /run after boot: the drop-in's
    // apply-policies before Docker (the filter policies alone, no nat yet),
    // Docker starts (its rules come back), then the unit.
    fw.cleanup();
    fw = firewallRunner(topo.host, bundle.file(SCRIPT), { dockerHost: dockerd.host });
    const pre = await fw.run("apply-policies");
    expect(pre.code, pre.stderr).toBe(0);
    expect(await fw.save(4)).toContain("-A DOCKER-USER -j DOCKINIT-USER");
    expect(await fw.save(4)).not.toContain("DOCKINIT-POSTROUTING");
    await dockerd.restart();
    const r = await fw.run("apply");
    expect(r.code, r.stderr).toBe(0);
    await inForce("after reboot");
    // remove (by hand: no unit removes anything) leaves Docker's own rules.
    expect((await fw.run("remove")).code).toBe(0);
    expect(await fw.save(4)).toMatch(/-A POSTROUTING -s 172\.17\.0\.0\/16 ! -o docker0 -j MASQUERADE/);
  });
});
