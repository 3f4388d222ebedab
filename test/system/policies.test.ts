// Firewall policies Docker's published ports otherwise bypass, proven with
// real packets through the real Docker engine: for every policy one
// connection that must get through and one that must be dropped, IPv4 and
// IPv6 (TCP, and UDP for what containers send: block, egress), each drop
// beside its control in the same test (lib/verdict.ts: the same probe with
// dockinit's rules removed, or before the rule, gets through). Clients sit
// upstream on two source networks; containers publish real ports with
// `docker run -p`. Runs once per engine of the Docker matrix
// (DOCKINIT_DOCKER_MATRIX, lib/engine.ts): Docker 20.10's chain layout, 26.1's,
// and 28.5's DOCKER-FORWARD/DOCKER-BRIDGE/DOCKER-CT with real packets.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { firewallRunner, withoutDockinit, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { startDockerd, type Dockerd } from "./lib/docker.js";
import { dockerFirewall, dockinitBackends, engineLabel, noteMatrix, startEngine, type Engine } from "./lib/engine.js";
import { tearDown } from "./lib/exec.js";
import { BLOCKED_V4, BLOCKED_V6, DNS_V4, METADATA_V4, METADATA_V6, policyConfig, startPolicyUpstream } from "./lib/policy-config.js";
import { ADDR, connectFrom, createTopology, DROP_MS, flushConntrack, type EchoServer, type Proto, type Topology } from "./lib/topology.js";
import { probe, verdicts, type Without } from "./lib/verdict.js";

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
    /** Conntrack forgotten before each round of probes, never during one. */
    const v = verdicts({ beforeRound: () => flushConntrack(topo.host) });
    /** The control of most drops here: dockinit's rules removed, then applied again. */
    const withoutRules: Without = () => withoutDockinit(fw)();
    /** From upstream to the host's published port, with a chosen source address. */
    const fromOutside = (port: number, sourceAddr: string, v6 = false) => {
      const addr = v6 ? ADDR.hostV6 : ADDR.hostV4;
      return probe(`${sourceAddr} (outside) → ${addr}:${port}`, () => connectFrom(topo.upstream, { addr, port, sourceAddr, timeoutMs: DROP_MS }));
    };
    const fromHost = (port: number, v6 = false) => {
      const addr = v6 ? ADDR.hostV6 : ADDR.hostV4;
      return probe(`the host → ${addr}:${port}`, () => connectFrom(topo.host, { addr, port, timeoutMs: DROP_MS }));
    };
    const fromContainer = (addr: string, port = 8080, proto: Proto = "tcp") =>
      probe(`a container → ${addr}:${port}/${proto}`, () => dockerd.connectFromContainer({ addr, port, proto, timeoutMs: DROP_MS }));

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
      await v.expectThrough([fromOutside(8080, ADDR.clientV4), fromOutside(5000, ADDR.clientV4), fromContainer(METADATA_V4, 80)]);
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

    it("published port with an allow-list: the listed network connects, another is dropped (v4 and v6; without dockinit's rules, the same connections get through)", async () => {
      await v.expectVerdicts(
        { through: [fromOutside(8080, ADDR.clientV4b), fromOutside(8080, ADDR.clientV6, true)], dropped: [fromOutside(8080, ADDR.clientV4), fromOutside(8080, ADDR.serverV6, true)] },
        { control: withoutRules },
      );
    });

    it("allow: [any] admits both networks", async () => {
      await v.expectThrough([fromOutside(443, ADDR.clientV4), fromOutside(443, ADDR.clientV4b), fromOutside(443, ADDR.clientV6, true)]);
    });

    it("allow: [loopback] and default: deny: the host itself connects, outside clients are dropped (v4 and v6; without dockinit's rules, they get through)", async () => {
      await v.expectVerdicts(
        {
          through: [fromHost(2368), fromHost(5000)],
          dropped: [fromOutside(2368, ADDR.clientV4b), fromOutside(2368, ADDR.clientV6, true), fromOutside(5000, ADDR.clientV4b), fromOutside(5000, ADDR.clientV6, true)],
        },
        { control: withoutRules },
      );
    });

    it("replies to container-initiated connections get in (established first)", async () => {
      await v.expectThrough([fromContainer(ADDR.serverV4), fromContainer(ADDR.serverV6)]);
    });

    it("containers cannot reach instance metadata, v4 or v6 (without dockinit's rules, they do); the host can", async () => {
      await v.expectVerdicts(
        {
          through: [
            probe(`the host → ${METADATA_V4}:80`, () => connectFrom(topo.host, { addr: METADATA_V4, port: 80, timeoutMs: DROP_MS })),
            probe(`the host → ${METADATA_V6}:80`, () => connectFrom(topo.host, { addr: METADATA_V6, port: 80, timeoutMs: DROP_MS })),
          ],
          dropped: [fromContainer(METADATA_V4, 80), fromContainer(METADATA_V6, 80)],
        },
        { control: withoutRules },
      );
    });

    it("block: a blocked destination inside the allow-list is dropped, v4 and v6, TCP and UDP (without dockinit's rules, reached); its unblocked neighbours pass", async () => {
      await v.expectVerdicts(
        {
          through: [fromContainer(ADDR.serverV4), fromContainer(ADDR.serverV6), fromContainer(ADDR.serverV4, 8080, "udp"), fromContainer(ADDR.serverV6, 8080, "udp")],
          dropped: [fromContainer(BLOCKED_V4), fromContainer(BLOCKED_V6), fromContainer(BLOCKED_V4, 8080, "udp"), fromContainer(BLOCKED_V6, 8080, "udp")],
        },
        { control: withoutRules },
      );
    });

    it("egress_allow: listed networks reachable, others dropped (TCP and UDP; without dockinit's rules, reached), the DNS server reachable though unlisted (v4 and v6)", async () => {
      await v.expectVerdicts(
        {
          through: [fromContainer(ADDR.serverV4), fromContainer(DNS_V4, 53, "udp"), fromContainer(ADDR.serverV6)],
          dropped: [fromContainer(ADDR.serverV4b), fromContainer(ADDR.upstreamV6), fromContainer(ADDR.serverV4b, 8080, "udp"), fromContainer(ADDR.upstreamV6, 8080, "udp")],
        },
        { control: withoutRules },
      );
      // The DNS server from daemon.json is in the DNS set (port 53 only), not the egress allow-list.
      const set = async (name: string) =>
        backend === "iptables" ? await engine.runOk(topo.host, "ipset", ["list", `dockinit-${name}`]) : await engine.runOk(topo.host, "nft", ["list", "set", "inet", "dockinit", name]);
      expect(await set("dns4")).toContain(`${DNS_V4}`);
      expect(await set("egress4")).not.toContain(`${DNS_V4}`);
    });

    it("the DNS server is reachable as a DNS server only: port 53, UDP and TCP, passes; its port 8080 is dropped (without dockinit's rules, reached)", async () => {
      expect((await fw.run("apply")).code).toBe(0);
      await v.expectVerdicts(
        { through: [fromContainer(DNS_V4, 53, "udp"), fromContainer(DNS_V4, 53, "tcp")], dropped: [fromContainer(DNS_V4, 8080)] },
        { control: withoutRules },
      );
    });

    it("a port forward opens no path egress_allow or block closes: a container through host port 9003 (outside the allow-list) and 9004 (blocked) is dropped, through 9000 it passes; with dockinit's forward filter alone taken away (its DNAT kept), both get through", async () => {
      // The control: the same probes with the forward filter gone and the forwards' DNAT still loaded.
      expect((await fw.run("apply")).code).toBe(0);
      const withoutForwardFilter: Without = async () => {
        if (backend === "iptables") await engine.runOk(topo.host, "iptables", ["-D", "DOCKER-USER", "-j", "DOCKINIT-USER"]);
        else await engine.runOk(topo.host, "nft", ["flush", "chain", "inet", "dockinit", "forward"]);
        return async () => expect((await fw.run("apply")).code).toBe(0);
      };
      await v.expectVerdicts(
        { through: [fromContainer(ADDR.hostV4, 9000)], dropped: [fromContainer(ADDR.hostV4, 9003), fromContainer(ADDR.hostV4, 9004)] },
        { control: withoutForwardFilter },
      );
    });

    it("port forward: with iptables' FORWARD policy DROP (Docker's), a client outside and the host itself reach the target through host port 9000 (v4 and v6)", async () => {
      // The nftables backend's accept is not final in iptables' FORWARD: its
      // own accept there goes where the policy is DROP at apply time (on a host,
      // Docker has set it before dockinit-firewall.service applies).
      await forwardPolicyDrop();
      expect((await fw.run("apply")).code).toBe(0);
      const status = await fw.run("status");
      expect(status.code, status.stdout).toBe(0);
      // masqueraded on the way out: upstream's server sees the host
      await v.expectThrough([{ ...fromOutside(9000, ADDR.clientV4b), peer: ADDR.hostV4 }, fromHost(9000), fromOutside(9000, ADDR.clientV6, true), fromHost(9000, true)]);
    });

    // Under Docker's nftables firewall such a forward needs bridge-accept-fwmark (not done): no row there.
    if (dockerFirewall(suite) === "iptables") it("port forward to a container's own address on a port Docker does not publish: through dockinit's accept; without it, Docker's FORWARD drops it", async () => {
      await forwardPolicyDrop();
      expect((await fw.run("apply")).code).toBe(0);
      // The control of this drop is the same probe through dockinit's accept.
      const forwarded = fromOutside(9002, ADDR.clientV4b);
      const withAccept = await v.observe(forwarded);
      // Without dockinit's accept in DOCKER-USER, Docker's own rules drop it.
      const accept = backend === "iptables"
        ? ["DOCKER-USER", "-j", "DOCKINIT-USER"]
        : ["DOCKER-USER", "-p", "tcp", "-m", "conntrack", "--ctstate", "DNAT", "--ctreplsrc", unpublished!, "--ctorigdstport", "9002", "--ctreplsrcport", "7000", "-m", "comment", "--comment", "dockinit-forward", "-j", "ACCEPT"];
      await engine.runOk(topo.host, "iptables", ["-D", ...accept]);
      onTestFinished(async () => void (await fw.run("apply")));
      await v.expectDropped(forwarded, { control: withAccept });
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
      });
      await v.expectVerdicts({ through: [fromOutside(9000, ADDR.clientV4b)], dropped: [fromOutside(9001, ADDR.clientV4b)] }, {
        control: async () => {
          await engine.runOk(topo.host, letPast.add[0] as string, letPast.add[1] as string[]);
          // The nftables control rule goes with the next apply (the table is replaced whole).
          return async () => void (letPast.del ? await engine.runOk(topo.host, letPast.del[0] as string, letPast.del[1] as string[]) : expect((await fw.run("apply")).code).toBe(0));
        },
      });
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
        // The control of the drop below: the same probe with the accept in place.
        const forwarded = fromOutside(9000, ADDR.clientV4b);
        const withAccept = await v.observe(forwarded);
        await engine.runOk(topo.host, "iptables", ["-D", chain, ...spec]);
        await v.expectDropped(forwarded, { control: withAccept });
        const status = await fw.run("status");
        expect(status.code).toBe(1);
        expect(status.stdout).toContain(`iptables: the port forwards' accepts are not first in ${chain} as apply left them`);
        // An accept of a forward the config no longer has (tagged as dockinit's) goes with the next apply.
        const old = ["-p", "tcp", "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdstport", "1234", "-m", "comment", "--comment", "dockinit-forward", "-j", "ACCEPT"];
        await engine.runOk(topo.host, "iptables", ["-A", chain, ...old]);
        expect((await fw.run("apply")).code).toBe(0);
        await v.expectThrough(forwarded);
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
      await v.expectThrough(fromOutside(5000, ADDR.clientV4b));
    });
  });
}
