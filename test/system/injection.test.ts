// The injection corpus, run: every config the corpus produces that dockinit
// accepts is rendered with each payload's CANARY pointing into an empty
// directory, and the rendered scripts are run on a host namespace —
// dockinit-firewall apply, status and remove (iptables and nftables
// backends, with the daemon.json the payloads went into), dockinit-vpc-dns
// against a fake metadata service and against a closed endpoint — and
// dockinit-boot, which needs systemd, through bash -n and shellcheck. No
// payload may have run: the canary directory stays empty. (Which fields
// accept which payloads, and that the rest are rejected, is
// test/unit/injection.test.ts.)
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { loadConfigString, renderBundle, writeBundle, type Bundle } from "../../src/index.js";
import { REPO } from "../support/fixtures.js";
import { CANARY, configWith, CORPUS_FILES, STRING_FIELDS, STRING_PAYLOADS, yamlString } from "../support/injection-corpus.js";
import { nonEmpty, skipUnless } from "../support/system.js";
import { bashSyntax, shellcheck } from "../support/validators.js";
import { killAllTracked, run, runIn, runInOk, spawnBackground, waitFor, type Background } from "./lib/exec.js";
import { createTopology, type Topology } from "./lib/topology.js";

const skip = skipUnless(["root", "ip", "iptables", "ip6tables", "ipset", "nft", "curl", "python3", "shellcheck", "nsenter"]);

const FIREWALL = "/usr/local/sbin/dockinit-firewall";
const VPC_DNS = "/usr/local/sbin/dockinit-vpc-dns";
const BOOT = "/usr/local/sbin/dockinit-boot";
const IMDS_PORT = 8169;

/** Every policy, so each code path of the firewall script runs with the payloads' daemon.json. */
const POLICIES = `docker: { daemon: { dns: [vpc, amazon] } }
firewall:
  published: { default: deny, rules: [{ port: 8080, allow: [203.0.113.0/24] }, { port: 2368, allow: [loopback] }] }
  containers: { block: [198.51.100.20/32], egress_allow: [198.51.100.0/24, 2001:db8:20::/64] }
port_forwards: [{ listen: 9000, to: '198.51.100.10:8080' }]
`;

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = b && v && typeof b === "object" && typeof v === "object" && !Array.isArray(b) && !Array.isArray(v) ? merge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

describe.skipIf(skip)("the injection corpus on a host: no payload ever runs", () => {
  const canaryDir = mkdtempSync(join(tmpdir(), "dockinit-canary-"));
  const work = mkdtempSync(join(tmpdir(), "dockinit-inject-sys-"));
  let topo: Topology;
  let imds: Background | undefined;
  const accepted: { what: string; bundle: Bundle }[] = [];
  const canaries = () => readdirSync(canaryDir);

  beforeAll(async () => {
    topo = await createTopology({ ipv6: true });
    await runInOk(topo.host, "ip", ["link", "set", "lo", "up"]);
    imds = await spawnBackground("python3", [join(REPO, "test", "support", "fake-imds.py"), "--bind", "127.0.0.1", "--port", String(IMDS_PORT)], { netns: topo.host });
    await waitFor("fake IMDS listening", async () => imds!.output().includes("listening"), { timeoutMs: 10_000, intervalMs: 50 });
    let n = 0;
    for (const field of STRING_FIELDS) {
      for (const p of STRING_PAYLOADS) {
        const value = p.value.split(CANARY).join(join(canaryDir, `hit-${n++}`));
        for (const backend of ["iptables", "nftables"]) {
          // The policies, with the field's value merged in (the field wins).
          const policies = parse(POLICIES.replace("firewall:", `firewall:\n  backend: ${backend}`)) as Record<string, unknown>;
          let field_: Record<string, unknown>;
          try {
            field_ = parse(configWith(field.yaml, yamlString(value))) as Record<string, unknown>;
          } catch {
            continue; // not YAML at all (a 100,000-character implicit key): the loader refuses it
          }
          const yaml = stringify(merge(policies, field_));
          const r = renderBundle(loadConfigString(yaml, { files: { read: (f) => CORPUS_FILES[f] } }));
          if (r.bundle) accepted.push({ what: `${field.field} ← ${p.name} (${backend})`, bundle: r.bundle });
        }
      }
    }
  }, 120_000);

  afterAll(async () => {
    await imds?.stop();
    await topo?.destroy();
    await killAllTracked();
    rmSync(canaryDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  const distinct = (path: string) => {
    const seen = new Map<string, { what: string; bundle: Bundle }>();
    for (const a of accepted) {
      // The bundle id (a sha256 of every file, so of every payload, in hex:
      // BUNDLE_ID, the iptables comment rule) is set apart: scripts that
      // differ only in it run the same code on the same data.
      const content = a.bundle.files.find((f) => f.path === path)?.content.replace(/\b[0-9a-f]{64}\b/g, "BUNDLE-ID");
      if (content !== undefined && !seen.has(content)) seen.set(content, a);
    }
    return [...seen.values()];
  };

  /** A daemon.json holding every settings payload at once (keys and values), plus dns as dockinit-vpc-dns writes it. */
  const allSettingsDaemonJson = () => {
    const merged: Record<string, unknown> = {};
    for (const a of nonEmpty(accepted.filter((x) => x.what.startsWith("docker.daemon.settings")), "accepted daemon settings payloads")) {
      Object.assign(merged, JSON.parse(a.bundle.files.find((f) => f.path === "/etc/docker/daemon.json")!.content));
    }
    return merged;
  };

  it("the corpus gives accepted configs with payloads in the data fields", () => {
    expect(accepted.length).toBeGreaterThan(200);
    console.log(`injection (system): ${accepted.length} accepted configs; ${distinct(FIREWALL).length} distinct firewall scripts, ${distinct(VPC_DNS).length} vpc-dns scripts, ${distinct(BOOT).length} boot scripts`);
  });

  it("the canary works: the payloads given to a shell do create it", async () => {
    const probe = join(canaryDir, "probe");
    const shellPayloads = STRING_PAYLOADS.filter((x) => ["command substitution", "backticks", "semicolon", "IFS trick"].includes(x.name));
    expect(shellPayloads.map((p) => p.name).sort()).toEqual(["IFS trick", "backticks", "command substitution", "semicolon"]);
    for (const p of shellPayloads) {
      await run("bash", ["-c", `echo ${p.value.split(CANARY).join(probe)}`]);
      expect(canaries(), p.name).toEqual(["probe"]);
      rmSync(probe);
    }
  });

  it("dockinit-firewall apply, status and remove, for every distinct script, with the payloads' daemon.json: exit 0, no canary", async () => {
    const daemonJson = join(work, "daemon.json");
    writeFileSync(daemonJson, JSON.stringify({ ...allSettingsDaemonJson(), dns: ["198.51.100.2", "169.254.169.253"] }));
    const scripts = nonEmpty(distinct(FIREWALL), "distinct firewall scripts");
    for (const [i, s] of scripts.entries()) {
      const out = join(work, `fw-${i}`);
      writeBundle(s.bundle, out);
      const env = { ...(process.env as Record<string, string>), DOCKINIT_STATE_DIR: join(out, "state"), DOCKINIT_DAEMON_JSON: daemonJson };
      for (const cmd of ["apply", "status", "apply", "remove"]) {
        const r = await runIn(topo.host, "bash", [join(out, "files", FIREWALL), cmd], { env, timeoutMs: 60_000 });
        expect(r.code, `${s.what}: ${cmd}\n${r.stdout}${r.stderr}`).toBe(0);
      }
    }
    expect(canaries()).toEqual([]);
  }, 600_000);

  it("dockinit-vpc-dns against a fake metadata service rewrites the payloads' daemon.json with every key kept, and runs none", async () => {
    const original = allSettingsDaemonJson();
    delete original.dns;
    for (const [i, s] of nonEmpty(distinct(VPC_DNS), "distinct vpc-dns scripts").entries()) {
      const out = join(work, `dns-${i}`);
      writeBundle(s.bundle, out);
      const daemonJson = join(out, "daemon.json");
      writeFileSync(daemonJson, JSON.stringify(original));
      const r = await runIn(topo.host, "bash", [join(out, "files", VPC_DNS)], {
        env: { ...process.env, DOCKINIT_DAEMON_JSON: daemonJson, DOCKINIT_IMDS_ENDPOINT: `http://127.0.0.1:${IMDS_PORT}` },
        timeoutMs: 60_000,
      });
      expect(r.code, r.stderr).toBe(0);
      const after = JSON.parse(readFileSync(daemonJson, "utf8")) as Record<string, unknown>;
      expect(after.dns).toEqual(["198.51.100.2", "169.254.169.253"]);
      delete after.dns;
      expect(after).toEqual(original);
    }
    expect(canaries()).toEqual([]);
  }, 300_000);

  it("dockinit-vpc-dns against a closed endpoint fails, says so, leaves the payloads' daemon.json byte for byte, and runs none", async () => {
    const s = distinct(VPC_DNS)[0]!;
    const out = join(work, "dns-closed");
    writeBundle(s.bundle, out);
    const daemonJson = join(out, "daemon.json");
    const text = `${JSON.stringify(allSettingsDaemonJson(), null, 2)}\n`;
    writeFileSync(daemonJson, text);
    const r = await runIn(topo.host, "bash", [join(out, "files", VPC_DNS)], {
      env: { ...process.env, DOCKINIT_DAEMON_JSON: daemonJson, DOCKINIT_IMDS_ENDPOINT: "http://127.0.0.1:1" },
      timeoutMs: 60_000,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no IMDSv2 token/);
    expect(readFileSync(daemonJson, "utf8")).toBe(text);
    expect(canaries()).toEqual([]);
  }, 120_000);

  it("dockinit-boot (systemd-bound): every distinct script passes bash -n and shellcheck", async () => {
    for (const [i, s] of nonEmpty(distinct(BOOT), "distinct boot scripts").entries()) {
      const file = join(work, `boot-${i}`);
      writeFileSync(file, s.bundle.files.find((f) => f.path === BOOT)!.content);
      for (const r of [bashSyntax(file), shellcheck(file)]) expect(r.ok, r.output).toBe(true);
    }
    // And nothing ran while we looked.
    const r = await run("ls", ["-A", canaryDir]);
    expect(r.stdout.trim()).toBe("");
  });
});
