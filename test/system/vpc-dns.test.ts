// dockinit-vpc-dns against a fake instance metadata service on
// 169.254.169.254 in the upstream namespace: the VPC resolver (CIDR base + 2)
// lands in daemon.json with every other key kept; every failure exits
// non-zero, says why, and leaves daemon.json byte for byte as it was.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderFixture, type RenderedBundle } from "../support/render.js";
import { REPO } from "../support/fixtures.js";
import { skipUnless } from "../support/system.js";
import { killAllTracked, runIn, runInOk, spawnBackground, waitFor } from "./lib/exec.js";
import { createTopology, type Topology } from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "curl", "python3"]);

const IMDS = "169.254.169.254";
const FAKE = join(REPO, "test", "support", "fake-imds.py");
const ORIGINAL = `{\n  "dns": [\n    "169.254.169.253"\n  ],\n  "log-driver": "json-file"\n}\n`;

interface Case {
  name: string;
  flags: string[];
  /** No server at all: metadata unreachable. */
  noServer?: boolean;
  daemonJson?: string;
  ok: boolean;
  stderr?: RegExp;
  dns?: string[];
}

const cases: Case[] = [
  { name: "IMDSv2 answers: resolver written, order kept, other keys kept", flags: [], ok: true, dns: ["198.51.100.2", "169.254.169.253"] },
  { name: "a /26 VPC: base + 2 of the network, not of the /24", flags: ["--cidr", "198.51.100.64/26"], ok: true, dns: ["198.51.100.66", "169.254.169.253"] },
  { name: "token refused (IMDSv2 blocked)", flags: ["--refuse-token"], ok: false, stderr: /no IMDSv2 token/ },
  { name: "malformed MAC", flags: ["--malformed-mac"], ok: false, stderr: /malformed MAC/ },
  { name: "malformed CIDR", flags: ["--malformed-cidr"], ok: false, stderr: /malformed VPC CIDR/ },
  { name: "no IPv4 CIDR (IPv6-only VPC)", flags: ["--no-cidr"], ok: false, stderr: /cannot read the VPC IPv4 CIDR/ },
  { name: "metadata unreachable", flags: [], noServer: true, ok: false, stderr: /no IMDSv2 token/ },
  { name: "daemon.json is not JSON", flags: [], daemonJson: "{ not json\n", ok: false, stderr: /not valid JSON.*left untouched/ },
];

describe.skipIf(skip)("dockinit-vpc-dns against a fake metadata service", () => {
  let topo: Topology;
  let bundle: RenderedBundle;
  let port = 8100;

  beforeAll(async () => {
    topo = await createTopology();
    await runInOk(topo.upstream, "ip", ["addr", "add", `${IMDS}/32`, "dev", "lo"]);
    bundle = renderFixture("build-runner"); // dns: [vpc, amazon]
  });
  afterAll(async () => {
    bundle?.cleanup();
    await topo?.destroy();
    await killAllTracked();
  });

  it.each(cases)("$name", async (c) => {
    port += 1;
    const server = c.noServer
      ? undefined
      : await spawnBackground("python3", [FAKE, "--bind", IMDS, "--port", String(port), ...c.flags], { netns: topo.upstream });
    try {
      if (server) await waitFor("fake IMDS listening", async () => server.output().includes("listening"), { timeoutMs: 10_000, intervalMs: 50 });
      const daemonJson = join(bundle.out, `daemon-${port}.json`);
      const before = c.daemonJson ?? ORIGINAL;
      writeFileSync(daemonJson, before, { mode: 0o600 });
      const r = await runIn(topo.host, "bash", [bundle.file("/usr/local/sbin/dockinit-vpc-dns")], {
        env: { ...process.env, DOCKINIT_DAEMON_JSON: daemonJson, DOCKINIT_IMDS_ENDPOINT: `http://${IMDS}:${port}` },
        timeoutMs: 60_000,
      });
      const after = readFileSync(daemonJson, "utf8");
      if (c.ok) {
        expect(r.code, r.stderr).toBe(0);
        const json = JSON.parse(after);
        expect(json.dns).toEqual(c.dns);
        expect(json["log-driver"]).toBe("json-file");
        expect(statSync(daemonJson).mode & 0o777).toBe(0o644);
      } else {
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(c.stderr!);
        expect(after).toBe(before);
      }
    } finally {
      await server?.stop();
    }
  });
});
