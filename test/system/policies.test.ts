// Firewall policies Docker's published ports otherwise bypass, proven with
// real packets through the real Docker engine: for every policy one
// connection that must get through and one that must be dropped, IPv4 and
// IPv6. Clients sit upstream on two source networks; containers publish real
// ports with `docker run -p`. Runs once per engine of the Docker matrix
// (DOCKINIT_DOCKER_MATRIX, lib/engine.ts): Docker 20.10's chain layout, 26.1's,
// and 28.5's DOCKER-FORWARD/DOCKER-BRIDGE/DOCKER-CT with real packets.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { startDockerd, type Dockerd } from "./lib/docker.js";
import { dockerFirewall, dockinitBackends, engineLabel, noteMatrix, startEngine, type Engine } from "./lib/engine.js";
import { tearDown } from "./lib/exec.js";
import { BLOCKED_V4, BLOCKED_V6, DNS_V4, METADATA_V4, METADATA_V6, policyConfig, startPolicyUpstream } from "./lib/policy-config.js";
import { ADDR, connectFrom, createTopology, DROP_MS, dropped, flushConntrack, got, type EchoServer, type Topology } from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "iptables", "ip6tables", "ipset", "dockerd", "socat", "busybox", "conntrack"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const config = (backend: Backend, dockerFirewall: Backend, containerForward?: string) =>
  policyConfig({ name: "policies", backend, ephemeralPorts: "{ enabled: false }", dockerFirewall, containerForward });

type Backend = "iptables" | "nftables";


for (const suite of noteMatrix()) for (const backend of dockinitBackends(suite)) {
  describe.skipIf(skip)(`${engineLabel(suite)}: ${backend} backend: policies against real Docker (published ports, metadata, egress, port forwards; v4 and v6)`, () => {
    let engine: Engine;
    let topo: Topology;
    let dockerd: Dockerd;
    let bundle: RenderedBundle;
    let fw: FirewallRunner;
    const servers: EchoServer[] = [];
    let baseline: { v4: string; v6: string; nft: string };
    /** The address of a container whose port 7000 Docker does not publish (Docker's iptables firewall only). */
    let unpublished: string | undefined;
    /** Both families' FORWARD policy set to DROP until the test ends, as Docker's iptables firewall sets it when it turns forwarding on. */
    const forwardPolicyDrop = async () => {
      for (const ipt of ["iptables", "ip6tables"]) {
        const policy = /^-P FORWARD (\w+)$/m.exec(await engine.runOk(topo.host, ipt, ["-S", "FORWARD"]))?.[1] ?? "ACCEPT";
        await engine.runOk(topo.host, ipt, ["-P", "FORWARD", "DROP"]);
        onTestFinished(async () => void (await engine.runOk(topo.host, ipt, ["-P", "FORWARD", policy])));
      }
    };

    /** Both iptables families, and dockinit's nftables table ("" when there is none). */
    const saveAll = async () => ({
      v4: await fw.save(4),
      v6: await fw.save(6),
      nft: (await engine.run(topo.host, "nft", ["list", "table", "inet", "dockinit"])).stdout,
    });
    /** From upstream to the host's published port, with a chosen source address. */
    const fromOutside = async (port: number, sourceAddr: string, v6 = false) => {
      await flushConntrack(topo.host);
      return connectFrom(topo.upstream, { addr: v6 ? ADDR.hostV6 : ADDR.hostV4, port, sourceAddr, timeoutMs: DROP_MS });
    };
    const fromHost = (port: number, v6 = false) => connectFrom(topo.host, { addr: v6 ? ADDR.hostV6 : ADDR.hostV4, port, timeoutMs: DROP_MS });
    const fromContainer = async (addr: string, port = 8080, proto: "tcp" | "udp" = "tcp") => {
      await flushConntrack(topo.host);
      return dockerd.connectFromContainer({ addr, port, proto, timeoutMs: DROP_MS });
    };

    beforeAll(async () => {
      engine = await startEngine(suite);
      topo = await createTopology({ ipv6: true });
      dockerd = await startDockerd(topo.host, { ipv6: true, engine });
      servers.push(...(await startPolicyUpstream(topo.upstream)));
      // Published ports: one container per port, answering on IPv4 and IPv6.
      for (const port of [8080, 443, 2368, 5000]) {
        await dockerd.startContainer(["-p", `${port}:${port}`, "di-tools", "socat", `TCP6-LISTEN:${port},fork,reuseaddr,ipv6only=0`, "SYSTEM:echo published"]);
      }
      // A rule someone else put in DOCKER-USER: dockinit must leave it alone
      // (Docker's nftables firewall has no DOCKER-USER).
      if (engine.firewall === "iptables") await engine.runOk(topo.host, "iptables", ["-A", "DOCKER-USER", "-s", "192.0.2.99/32", "-j", "DROP"]);
      // A port forward to a container's own address, on a port Docker does not
      // publish: Docker's iptables firewall drops it in FORWARD (policy, and
      // Docker 28+'s DOCKER chain). Under Docker's nftables firewall such a
      // forward needs bridge-accept-fwmark, which dockinit does not set.
      if (engine.firewall === "iptables") {
        const id = await dockerd.startContainer(["di-tools", "socat", "TCP-LISTEN:7000,fork,reuseaddr", "SYSTEM:echo forwarded"]);
        unpublished = await dockerd.dockerOk(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", id]);
        expect(unpublished).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      }
      bundle = renderYaml(config(backend, engine.firewall, unpublished));
      fw = firewallRunner(topo.host, bundle.file(SCRIPT), { dockerHost: dockerd.host, engine });
      // The DNS servers come from the host's daemon.json at apply time.
      const daemonJson = join(bundle.out, "daemon.json");
      // The host's daemon.json as far as dockinit reads it: the DNS servers, and Docker's firewall backend.
      writeFileSync(daemonJson, JSON.stringify({ dns: [DNS_V4], ...(engine.firewall === "nftables" ? { "firewall-backend": "nftables" } : {}) }));
      process.env.DOCKINIT_DAEMON_JSON = daemonJson;
      baseline = await saveAll();
    });

    afterAll(async () => {
      delete process.env.DOCKINIT_DAEMON_JSON;
      await tearDown(servers, dockerd, fw, bundle, topo, engine);
    });

    it("before dockinit: every published port is open to everyone, and containers reach metadata", async () => {
      expect(await fromOutside(8080, ADDR.clientV4)).toSatisfy(got);
      expect(await fromOutside(5000, ADDR.clientV4)).toSatisfy(got);
      expect(await fromContainer(METADATA_V4, 80)).toSatisfy(got);
    });

    it("apply succeeds and status reports every policy in place", async () => {
      const r = await fw.run("apply");
      expect(r.code, r.stderr).toBe(0);
      const status = await fw.run("status");
      expect(status.code, status.stdout).toBe(0);
      expect(status.stdout).toContain("published port 8080/tcp: only from 203.0.113.0/24 and 2001:db8:20::50/128");
      // status names the engine it found (docker version/info) and has no warning for it.
      expect(status.stdout).toMatch(new RegExp(`^docker: ${engine.docker.replace(".", "\\.")}\\.\\S*, firewall backend ${engine.firewall}$`, "m"));
      expect(status.stdout.split("\n").filter((l) => l.startsWith("warning:"))).toEqual([]);
      if (engine.firewall === "nftables") {
        // dockinit's table only: nothing in iptables, Docker's own tables as Docker made them.
        expect((await fw.save(4)) + (await fw.save(6))).not.toContain("DOCKINIT");
        expect(await engine.runOk(topo.host, "nft", ["list", "tables"])).toMatch(/^table ip docker-bridges$/m);
        return;
      }
      const user = (await engine.runOk(topo.host, "iptables", ["-S", "DOCKER-USER"])).split("\n");
      if (backend === "iptables") expect(user[1]).toBe("-A DOCKER-USER -j DOCKINIT-USER");
      else expect(user.join("\n")).not.toContain("DOCKINIT");
      expect(user).toContain("-A DOCKER-USER -s 192.0.2.99/32 -j DROP");
    });

    it("published port with an allow-list: the listed network connects, another is dropped (v4)", async () => {
      expect(await fromOutside(8080, ADDR.clientV4b)).toSatisfy(got);
      expect(await fromOutside(8080, ADDR.clientV4)).toSatisfy(dropped);
    });

    it("published port with an allow-list: the listed address connects, another is dropped (v6)", async () => {
      expect(await fromOutside(8080, ADDR.clientV6, true)).toSatisfy(got);
      expect(await fromOutside(8080, ADDR.serverV6, true)).toSatisfy(dropped);
    });

    it("allow: [any] admits both networks", async () => {
      expect(await fromOutside(443, ADDR.clientV4)).toSatisfy(got);
      expect(await fromOutside(443, ADDR.clientV4b)).toSatisfy(got);
      expect(await fromOutside(443, ADDR.clientV6, true)).toSatisfy(got);
    });

    it("allow: [loopback]: the host itself connects, outside clients are dropped", async () => {
      expect(await fromHost(2368)).toSatisfy(got);
      expect(await fromOutside(2368, ADDR.clientV4b)).toSatisfy(dropped);
      expect(await fromOutside(2368, ADDR.clientV6, true)).toSatisfy(dropped);
    });

    it("default: deny: an unlisted published port is unreachable from outside, still from the host", async () => {
      expect(await fromOutside(5000, ADDR.clientV4b)).toSatisfy(dropped);
      expect(await fromOutside(5000, ADDR.clientV6, true)).toSatisfy(dropped);
      expect(await fromHost(5000)).toSatisfy(got);
    });

    it("replies to container-initiated connections get in (established first)", async () => {
      const r = await fromContainer(ADDR.serverV4);
      expect(r).toSatisfy(got);
      expect(await fromContainer(ADDR.serverV6)).toSatisfy(got);
    });

    it("containers cannot reach instance metadata, v4 or v6; the host can", async () => {
      expect(await fromContainer(METADATA_V4, 80)).toSatisfy(dropped);
      expect(await fromContainer(METADATA_V6, 80)).toSatisfy(dropped);
      expect(await connectFrom(topo.host, { addr: METADATA_V4, port: 80, timeoutMs: DROP_MS })).toSatisfy(got);
      expect(await connectFrom(topo.host, { addr: METADATA_V6, port: 80, timeoutMs: DROP_MS })).toSatisfy(got);
    });

    it("block: a blocked destination inside the allow-list is dropped, v4 and v6; its unblocked neighbours pass", async () => {
      expect(await fromContainer(BLOCKED_V4)).toSatisfy(dropped);
      expect(await fromContainer(BLOCKED_V6)).toSatisfy(dropped);
      expect(await fromContainer(ADDR.serverV4)).toSatisfy(got);
      expect(await fromContainer(ADDR.serverV6)).toSatisfy(got);
    });

    it("egress_allow: listed networks reachable, others dropped, the DNS server reachable though unlisted (v4 and v6)", async () => {
      expect(await fromContainer(ADDR.serverV4)).toSatisfy(got);
      expect(await fromContainer(ADDR.serverV4b)).toSatisfy(dropped);
      expect(await fromContainer(DNS_V4, 53, "udp")).toSatisfy(got);
      expect(await fromContainer(ADDR.serverV6)).toSatisfy(got);
      expect(await fromContainer(ADDR.upstreamV6)).toSatisfy(dropped);
      const set =
        backend === "iptables"
          ? await engine.runOk(topo.host, "ipset", ["list", "dockinit-egress4"])
          : await engine.runOk(topo.host, "nft", ["list", "set", "inet", "dockinit", "egress4"]);
      expect(set).toContain(`${DNS_V4}`);
    });

    it("port forward: with iptables' FORWARD policy DROP (Docker's), a client outside and the host itself reach the target through host port 9000 (v4 and v6)", async () => {
      // The nftables backend's accept is not final in iptables' FORWARD: its
      // own accept there goes where the policy is DROP at apply time (on a host,
      // Docker has set it before dockinit-firewall.service applies).
      await forwardPolicyDrop();
      expect((await fw.run("apply")).code).toBe(0);
      const status = await fw.run("status");
      expect(status.code, status.stdout).toBe(0);
      const outside = await fromOutside(9000, ADDR.clientV4b);
      expect(outside).toSatisfy(got);
      expect(outside.ok && outside.peerAddr).toBe(ADDR.hostV4); // masqueraded on the way out
      expect(await fromHost(9000)).toSatisfy(got);
      expect(await fromOutside(9000, ADDR.clientV6, true)).toSatisfy(got);
      expect(await fromHost(9000, true)).toSatisfy(got);
    });

    // Under Docker's nftables firewall such a forward needs bridge-accept-fwmark (not done): no row there.
    if (dockerFirewall(suite) === "iptables") it("port forward to a container's own address on a port Docker does not publish: through dockinit's accept; without it, Docker's FORWARD drops it", async () => {
      await forwardPolicyDrop();
      expect((await fw.run("apply")).code).toBe(0);
      expect(await fromOutside(9002, ADDR.clientV4b)).toSatisfy(got);
      // Without dockinit's accept in DOCKER-USER, Docker's own rules drop it.
      const accept = backend === "iptables"
        ? ["DOCKER-USER", "-j", "DOCKINIT-USER"]
        : ["DOCKER-USER", "-p", "tcp", "-m", "conntrack", "--ctstate", "DNAT", "--ctreplsrc", unpublished!, "--ctorigdstport", "9002", "--ctreplsrcport", "7000", "-m", "comment", "--comment", "dockinit-forward", "-j", "ACCEPT"];
      await engine.runOk(topo.host, "iptables", ["-D", ...accept]);
      onTestFinished(async () => void (await fw.run("apply")));
      expect(await fromOutside(9002, ADDR.clientV4b)).toSatisfy(dropped);
    });

    it("port forward: its accept is exact: someone else's DNAT from host port 9001 to the same target is dropped under default deny; let past dockinit, it connects", async () => {
      // A foreign forward to the forward's own target, with every other piece
      // in place (its own MASQUERADE, an ACCEPT at the end of FORWARD): only
      // default deny's DNAT drop can stop it, so the accept for port 9000 must
      // not cover it.
      const dnat = ["PREROUTING", "-p", "tcp", "-m", "addrtype", "--dst-type", "LOCAL", "--dport", "9001", "-j", "DNAT", "--to-destination", `${ADDR.serverV4}:8080`];
      const masq = ["POSTROUTING", "-p", "tcp", "-d", ADDR.serverV4, "--dport", "8080", "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE"];
      const accept = ["FORWARD", "-p", "tcp", "-m", "conntrack", "--ctorigdstport", "9001", "-j", "ACCEPT"];
      const policy = /^-P FORWARD (\w+)$/m.exec(await engine.runOk(topo.host, "iptables", ["-S", "FORWARD"]))?.[1] ?? "ACCEPT";
      await engine.runOk(topo.host, "iptables", ["-t", "nat", "-I", ...dnat]);
      await engine.runOk(topo.host, "iptables", ["-t", "nat", "-I", ...masq]);
      await engine.runOk(topo.host, "iptables", ["-A", ...accept]);
      await engine.runOk(topo.host, "iptables", ["-P", "FORWARD", "ACCEPT"]);
      // The control lets the foreign flow past dockinit's own verdict, in the backend's place for it.
      const letPast =
        backend === "iptables"
          ? { add: ["iptables", ["-I", "DOCKER-USER", "-p", "tcp", "-m", "conntrack", "--ctorigdstport", "9001", "-j", "ACCEPT"]], del: ["iptables", ["-D", "DOCKER-USER", "-p", "tcp", "-m", "conntrack", "--ctorigdstport", "9001", "-j", "ACCEPT"]] }
          : { add: ["nft", ["insert", "rule", "inet", "dockinit", "forward", "meta", "l4proto", "tcp", "ct", "original", "proto-dst", "9001", "accept"]], del: null };
      onTestFinished(async () => {
        await engine.run(topo.host, "iptables", ["-t", "nat", "-D", ...dnat]);
        await engine.run(topo.host, "iptables", ["-t", "nat", "-D", ...masq]);
        await engine.run(topo.host, "iptables", ["-D", ...accept]);
        await engine.run(topo.host, "iptables", ["-P", "FORWARD", policy]);
        if (letPast.del) await engine.run(topo.host, letPast.del[0] as string, letPast.del[1] as string[]);
      });
      expect(await fromOutside(9001, ADDR.clientV4b)).toSatisfy(dropped);
      expect(await fromOutside(9000, ADDR.clientV4b)).toSatisfy(got);
      await engine.runOk(topo.host, letPast.add[0] as string, letPast.add[1] as string[]);
      expect(await fromOutside(9001, ADDR.clientV4b)).toSatisfy(got);
      // The nftables control rule goes with the next apply (the table is replaced whole).
      if (backend === "nftables") expect((await fw.run("apply")).code).toBe(0);
    });

    if (backend === "nftables") {
      it("nftables backend: the forwards' accepts sit first in DOCKER-USER (in a dropping FORWARD where FORWARD does not jump there); taken away, forwards are dropped and status says so; apply puts them back and drops an old forward's", async () => {
        await forwardPolicyDrop();
        expect((await fw.run("apply")).code).toBe(0);
        const spec = ["-p", "tcp", "-m", "conntrack", "--ctstate", "DNAT", "--ctreplsrc", ADDR.serverV4, "--ctorigdstport", "9000", "--ctreplsrcport", "8080", "-m", "comment", "--comment", "dockinit-forward", "-j", "ACCEPT"];
        const chain = engine.firewall === "iptables" ? "DOCKER-USER" : "FORWARD";
        const rules = (await engine.runOk(topo.host, "iptables", ["-S", chain])).split("\n");
        // First in the chain: the forwards' accepts (this one among them) come before anyone else's rules.
        const at = rules.indexOf(`-A ${chain} ${spec.join(" ")}`);
        expect(at, rules.join("\n")).toBeGreaterThan(0);
        expect(rules.slice(1, at + 1).every((r) => r.startsWith(`-A ${chain} -p tcp -m conntrack --ctstate DNAT --ctreplsrc `) && r.endsWith(" -m comment --comment dockinit-forward -j ACCEPT")), rules.join("\n")).toBe(true);
        // Once only, however often apply ran.
        expect(rules.filter((r) => r.includes("--ctorigdstport 9000")).length).toBe(1);
        await engine.runOk(topo.host, "iptables", ["-D", chain, ...spec]);
        expect(await fromOutside(9000, ADDR.clientV4b)).toSatisfy(dropped);
        const status = await fw.run("status");
        expect(status.code).toBe(1);
        expect(status.stdout).toContain(`iptables: the port forwards' accepts are not first in ${chain} as apply left them`);
        // An accept of a forward the config no longer has (tagged as dockinit's) goes with the next apply.
        const old = ["-p", "tcp", "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdstport", "1234", "-m", "comment", "--comment", "dockinit-forward", "-j", "ACCEPT"];
        await engine.runOk(topo.host, "iptables", ["-A", chain, ...old]);
        expect((await fw.run("apply")).code).toBe(0);
        expect(await fromOutside(9000, ADDR.clientV4b)).toSatisfy(got);
        expect((await fw.run("status")).code).toBe(0);
        expect(await engine.runOk(topo.host, "iptables", ["-S"])).not.toContain("--ctorigdstport 1234");
      });
    }

    it("apply twice gives identical iptables-save and nft ruleset, v4 and v6", async () => {
      expect((await fw.run("apply")).code).toBe(0);
      const once = await saveAll();
      expect((await fw.run("apply")).code).toBe(0);
      expect(await saveAll()).toEqual(once);
    });

    it("remove restores the baseline exactly, keeps the foreign DOCKER-USER rule, and deletes the ipsets and the nft table", async () => {
      const r = await fw.run("remove");
      expect(r.code, r.stderr).toBe(0);
      expect(await saveAll()).toEqual(baseline);
      if (engine.firewall === "iptables") expect(await fw.save(4)).toContain("-A DOCKER-USER -s 192.0.2.99/32 -j DROP");
      expect((await engine.run(topo.host, "ipset", ["list", "-n"])).stdout).not.toMatch(/dockinit/);
      expect(await fromOutside(5000, ADDR.clientV4b)).toSatisfy(got);
    });
  });
}
