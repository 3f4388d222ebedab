// docker-proxy's SCTP ports under `published.default: deny`, nftables
// backend: dockinit-proxy puts the port into `proxy_sctp` before the proxy
// starts, and INPUT drops SCTP to it from outside, IPv4 and IPv6, as it
// drops docker-proxy's TCP and UDP ports. Real packets through the real
// kernel and the rendered scripts, in namespaces; no Docker is needed (the
// kernels here have no SCTP sockets, so neither Docker's SCTP proxy nor an
// SCTP client can run): a raw SCTP INIT from upstream, and the host's
// answer to it (ICMP protocol unreachable without SCTP in the kernel, an
// ABORT with it) shows it got past INPUT. Each drop beside its control: the
// same probe before the rules were loaded. The iptables backend's refusal of
// an SCTP proxy (no ipset bitmap:port matches SCTP) is script-behaviour's.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firewallRunner, type FirewallRunner } from "../support/firewall.js";
import { renderYaml, type RenderedBundle } from "../support/render.js";
import { skipUnless } from "../support/system.js";
import { run, tearDown } from "./lib/exec.js";
import { ADDR, createTopology, type ConnectResult, type Topology } from "./lib/topology.js";
import { probe, verdicts } from "./lib/verdict.js";

const skip = skipUnless(["root", "ip", "nft", "python3", "flock"]);

const SCRIPT = "/usr/local/sbin/dockinit-firewall";
const PROXY = "/usr/local/sbin/dockinit-proxy";
const SENDER = join(import.meta.dirname, "..", "support", "sctp_probe.py");

describe.skipIf(skip)("nftables backend, default deny: docker-proxy's SCTP ports are closed to outside (proxy_sctp)", () => {
  let topo: Topology;
  let bundle: RenderedBundle;
  let fw: FirewallRunner;
  let bin: string;
  const v = verdicts();
  /** A raw SCTP INIT from upstream: through when the host's stack answers, dropped when nothing comes back. */
  const sctpFromOutside = (addr: string, port: number) =>
    probe(`${addr === ADDR.hostV4 ? ADDR.upstreamV4 : ADDR.upstreamV6} (outside) → ${addr}:${port}/sctp`, async (): Promise<ConnectResult> => {
      const t0 = Date.now();
      const r = await run("/usr/bin/python3", [SENDER, addr, String(port), "2"], { netns: topo.upstream, timeoutMs: 10_000 });
      const durationMs = Date.now() - t0;
      if (r.code === 0) return { ok: true, reply: r.stdout.trim(), durationMs };
      if (r.stdout.trim() === "silence") return { ok: false, reason: "timeout", detail: "no answer from the host", durationMs };
      throw new Error(`the SCTP probe could not run: ${r.stderr}`);
    });

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    bundle = renderYaml(`version: 1
name: sctp-proxy
ephemeral_ports: { enabled: false }
firewall:
  backend: nftables
  published: { default: deny }
`);
    fw = firewallRunner(topo.host, bundle.file(SCRIPT));
    // The real docker-proxy cannot run here: a stand-in that starts and exits.
    bin = mkdtempSync(join(tmpdir(), "dockinit-sctp-"));
    writeFileSync(join(bin, "docker-proxy"), "#!/bin/sh\nexit 0\n");
    chmodSync(join(bin, "docker-proxy"), 0o755);
  });

  afterAll(async () => {
    rmSync(bin, { recursive: true, force: true });
    await tearDown(fw, bundle, topo);
  });

  it("dockinit-proxy adds an SCTP port to proxy_sctp, and INPUT then drops SCTP to it, IPv4 and IPv6 (before the rules, the host answers); another SCTP port stays open", async () => {
    const closed = [sctpFromOutside(ADDR.hostV4, 3868), sctpFromOutside(ADDR.hostV6, 3868)];
    const before = await v.observe(closed);
    const applied = await fw.run("apply-policies");
    expect(applied.code, applied.stderr).toBe(0);
    // What dockerd runs for a published SCTP port (its userland-proxy-path).
    const proxy = await run("nsenter", [`--net=/run/netns/${topo.host}`, "bash", bundle.file(PROXY), "-proto", "sctp", "-host-ip", "0.0.0.0", "-host-port", "3868", "-container-ip", "172.17.0.2", "-container-port", "3868"], {
      env: { ...(process.env as Record<string, string>), DOCKINIT_STATE_DIR: fw.stateDir, DOCKINIT_PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin` },
      timeoutMs: 30_000,
    });
    expect(proxy.code, proxy.stderr).toBe(0);
    expect((await run("nsenter", [`--net=/run/netns/${topo.host}`, "nft", "list", "set", "inet", "dockinit", "proxy_sctp"])).stdout).toMatch(/elements = \{ 3868 \}/);
    await v.expectVerdicts({ through: [sctpFromOutside(ADDR.hostV4, 3869), sctpFromOutside(ADDR.hostV6, 3869)], dropped: closed }, { control: before });
  });
});
