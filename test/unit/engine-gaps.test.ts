// The firewall script's engine_gaps: the Docker dockinit's rules cannot guard
// (rootless, snap's, an active swarm), found from /proc, the file system and
// `docker info`. Table-driven over fake /proc trees (DOCKINIT_PROC, a test
// hook); then once over the real /proc, in a PID namespace of its own so no
// other test's process is seen and none of ours leaks into theirs.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigString, renderBundle, renderFirewallScript } from "../../src/index.js";
import { HOST_PATHS } from "../../src/host-paths.js";
import { stubHost } from "../support/stub-host.js";
import { skipUnless } from "../support/system.js";

const work = mkdtempSync(join(tmpdir(), "dockinit-gaps-"));
const socket = join(work, "docker.sock");
let server: Server;
beforeAll(() => new Promise<void>((done) => (server = createServer().listen(socket, done))));
afterAll(() => {
  server?.close();
  rmSync(work, { recursive: true, force: true });
});

// Both backends carry the same function; each is run.
const functions = (backend: string) => {
  const { model } = loadConfigString(`version: 1\nname: gaps\nfirewall: { backend: ${backend} }\n`);
  const path = join(work, `functions-${backend}.sh`);
  writeFileSync(path, renderFirewallScript(model!).content.replace(/^main "\$@"$/m, ""));
  return path;
};
const SCRIPTS = { nftables: functions("nftables"), iptables: functions("iptables") };

// A docker CLI whose `info` (JSON, as `--format '{{json .}}'` prints it) has the swarm state DOCKER_SWARM_STATE holds.
const bin = join(work, "bin");
mkdirSync(bin);
writeFileSync(join(bin, "docker"), `#!/bin/sh\n[ "$1" = info ] && printf '{"ServerVersion":"25.0.16","Swarm":{"NodeID":"","LocalNodeState":"%s"}}\\n' "\${DOCKER_SWARM_STATE:-inactive}"\n`);
chmodSync(join(bin, "docker"), 0o755);

interface FakeProcess {
  comm: string;
  uid: number;
  exe: string;
  /** Another mount namespace than the script's (a container's). */
  container?: boolean;
}

let tree = 0;
/** A /proc with self and the given processes, and a root with the given paths. */
function fakeHost(processes: FakeProcess[], rootPaths: string[] = []) {
  const dir = join(work, `host-${tree++}`);
  const proc = join(dir, "proc");
  mkdirSync(join(proc, "self", "ns"), { recursive: true });
  symlinkSync("mnt:[4026531841]", join(proc, "self", "ns", "mnt"));
  processes.forEach((p, i) => {
    const pid = join(proc, String(100 + i));
    mkdirSync(join(pid, "ns"), { recursive: true });
    writeFileSync(join(pid, "comm"), `${p.comm}\n`);
    writeFileSync(join(pid, "status"), `Name:\t${p.comm}\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t${p.uid}\t${p.uid}\t${p.uid}\t${p.uid}\n`);
    symlinkSync(p.exe, join(pid, "exe"));
    symlinkSync(p.container ? "mnt:[4026532999]" : "mnt:[4026531841]", join(pid, "ns", "mnt"));
  });
  // A process that ended after the script listed /proc: its directory, no files.
  mkdirSync(join(proc, "99"));
  const root = join(dir, "root");
  for (const p of rootPaths) mkdirSync(join(root, p), { recursive: true });
  return { DOCKINIT_PROC: proc, DOCKINIT_ROOT: root };
}

function engineGaps(script: string, env: Record<string, string>, args = "swarm") {
  const r = spawnSync("bash", ["-c", `source ${script}; engine_gaps ${args}`], {
    encoding: "utf8",
    // Not a socket on stdin: bash would take itself for rshd's and read ~/.bashrc.
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: `${bin}:/usr/bin:/bin`, DOCKINIT_PATH: `${bin}:/usr/bin:/bin`, DOCKINIT_DOCKER_SOCKET: socket, ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  // Quiet, even about a process that ended between the glob and the read.
  expect(r.stderr).toBe("");
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => l.split(" ").slice(0, 2).join(" "));
}

const ROOTFUL: FakeProcess = { comm: "dockerd", uid: 0, exe: "/usr/bin/dockerd" };

describe.each(Object.entries(SCRIPTS))("engine_gaps (%s backend)", (_backend, script) => {
  it.each<[string, FakeProcess[], string[], Record<string, string>, string[]]>([
    ["a rootful system dockerd: no gap", [ROOTFUL], [], {}, []],
    ["no Docker at all: no gap", [], [], {}, []],
    ["rootlesskit run by a user", [ROOTFUL, { comm: "rootlesskit", uid: 1000, exe: "/usr/bin/rootlesskit" }], [], {}, ["ROOTLESS_DOCKER fail"]],
    ["dockerd-rootless.sh (comm is cut at 15 characters)", [{ comm: "dockerd-rootles", uid: 1000, exe: "/usr/bin/bash" }], [], {}, ["ROOTLESS_DOCKER fail"]],
    ["a dockerd running as a user", [{ comm: "dockerd", uid: 1000, exe: "/usr/bin/dockerd" }], [], {}, ["ROOTLESS_DOCKER fail"]],
    ["a container's process named rootlesskit: not the host's", [ROOTFUL, { comm: "rootlesskit", uid: 0, exe: "/usr/bin/rootlesskit", container: true }], [], {}, []],
    ["a container's dockerd (docker-in-docker): not the host's", [ROOTFUL, { comm: "dockerd", uid: 1000, exe: "/usr/local/bin/dockerd", container: true }], [], {}, []],
    ["snap's dockerd running", [{ comm: "dockerd", uid: 0, exe: "/snap/docker/3265/bin/dockerd" }], [], {}, ["SNAP_DOCKER fail"]],
    ["the docker snap installed, not running", [ROOTFUL], ["snap/bin/docker"], {}, ["SNAP_DOCKER fail"]],
    ["an active swarm", [ROOTFUL], [], { DOCKER_SWARM_STATE: "active" }, ["SWARM_ACTIVE warn"]],
    ["a swarm being joined (pending): not yet", [ROOTFUL], [], { DOCKER_SWARM_STATE: "pending" }, []],
    ["all three", [{ comm: "rootlesskit", uid: 1000, exe: "/usr/bin/rootlesskit" }, { comm: "dockerd", uid: 0, exe: "/snap/docker/1/bin/dockerd" }], [], { DOCKER_SWARM_STATE: "active" }, ["ROOTLESS_DOCKER fail", "SNAP_DOCKER fail", "SWARM_ACTIVE warn"]],
  ])("%s", (_name, processes, rootPaths, env, expected) => {
    expect(engineGaps(script, { ...fakeHost(processes, rootPaths), ...env })).toEqual(expected);
  });

  it("asks Docker about a swarm only when asked to, and only when its socket is there", () => {
    const host = fakeHost([ROOTFUL]);
    expect(engineGaps(script, { ...host, DOCKER_SWARM_STATE: "active" }, "")).toEqual([]);
    expect(engineGaps(script, { ...host, DOCKER_SWARM_STATE: "active", DOCKINIT_DOCKER_SOCKET: join(work, "none.sock") })).toEqual([]);
  });
});

describe("engine_gaps over the real /proc", () => {
  it.skipIf(skipUnless(["root", "unshare", "setpriv"]))("finds a real rootlesskit process run by nobody, and not before it starts", () => {
    const exe = join(work, "rootlesskit");
    copyFileSync("/bin/sleep", exe);
    chmodSync(exe, 0o755);
    chmodSync(work, 0o755);
    // A new PID namespace and /proc: the script sees only the processes started here.
    const script = SCRIPTS.nftables;
    const run = (body: string) =>
      spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "bash", "-c", body], {
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin`, DOCKINIT_PATH: `${bin}:/usr/bin:/bin`, DOCKINIT_DOCKER_SOCKET: join(work, "none.sock") },
        timeout: 20_000,
      });
    const control = run(`source ${script}; engine_gaps`);
    expect(control.status, control.stderr).toBe(0);
    expect(control.stdout).toBe("");
    const r = run(`setpriv --reuid=65534 --regid=65534 --clear-groups ${exe} 30 & sleep 0.3; source ${script}; engine_gaps; kill %1`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ROOTLESS_DOCKER fail rootless Docker runs here \(rootlesskit \(pid \d+, uid 65534\)\)/);
  });
});

describe("apply says what it cannot guard (the boot's journal)", () => {
  it.each(["nftables", "iptables"])("%s backend: apply succeeds and logs rootless Docker as an error", async (backend) => {
    const { bundle } = renderBundle(loadConfigString(`version: 1\nname: gaps\nfirewall: { backend: ${backend} }\n`));
    const host = stubHost();
    try {
      host.install(bundle!);
      const rootless = fakeHost([ROOTFUL, { comm: "rootlesskit", uid: 1000, exe: "/usr/bin/rootlesskit" }]);
      const r = await host.run(HOST_PATHS.firewallScript, ["apply"], { env: rootless });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain("dockinit-firewall: error: rootless Docker runs here (rootlesskit (pid 101, uid 1000))");
      // Control: the same apply on a host with only a rootful dockerd says nothing of the kind.
      const clean = await host.run(HOST_PATHS.firewallScript, ["apply"], { env: fakeHost([ROOTFUL]) });
      expect(clean.code, clean.stderr).toBe(0);
      expect(clean.stderr).not.toContain("rootless");
    } finally {
      host.cleanup();
    }
  });
});

describe("status reports what it cannot guard, and Docker's own rules gone", () => {
  // A Docker that answers: its version, its firewall, its swarm state.
  const dockerAnswers = (swarm: string, engine = '"ServerVersion":"25.0.16","Name":"h"') =>
    `if [ "$1" = info ]; then echo '{${engine},"Swarm":{"NodeID":"","LocalNodeState":"${swarm}"}}'; handled=1; rc=0; fi`;
  const docker29 = '"ServerVersion":"29.7.2","FirewallBackend":{"Driver":"nftables"}';

  // The nftables backend's script: status's part is one partial both backends share.
  it.each(["nftables"])("%s backend: rootless Docker fails status (ROOTLESS_DOCKER), a swarm is a warning, Docker's rules gone fail it (DOCKER_RULES_MISSING)", async (backend) => {
    const { bundle } = renderBundle(loadConfigString(`version: 1\nname: gaps\nfirewall: { backend: ${backend} }\n`));
    const host = stubHost();
    try {
      host.install(bundle!);
      const clean = fakeHost([ROOTFUL]);
      expect((await host.run(HOST_PATHS.firewallScript, ["apply"], { env: clean })).code).toBe(0);
      const json = async (env: Record<string, string>) => {
        const r = await host.run(HOST_PATHS.firewallScript, ["status", "--json"], { env: { ...env, DOCKINIT_DOCKER_SOCKET: socket } });
        const o = JSON.parse(r.stdout) as { ok: boolean; problems: { code: string }[]; warnings: { code: string }[] };
        return { code: r.code, ok: o.ok, problems: o.problems.map((p) => p.code), warnings: o.warnings.map((w) => w.code) };
      };
      // Docker answers with none of its rules in the stub's tables: gone.
      host.hook("docker", dockerAnswers("inactive"));
      expect(await json(clean)).toEqual({ code: 1, ok: false, problems: ["DOCKER_RULES_MISSING"], warnings: [] });
      // Docker's rules there (its nat chain; Docker 29's nftables table): a clean status.
      host.hook("docker", dockerAnswers("inactive", docker29));
      host.hook("nft", 'case " $* " in *" list table ip docker-bridges "*) handled=1; rc=0 ;; esac');
      expect(await json(clean)).toEqual({ code: 0, ok: true, problems: [], warnings: [] });
      const rootless = fakeHost([ROOTFUL, { comm: "rootlesskit", uid: 1000, exe: "/usr/bin/rootlesskit" }]);
      expect(await json(rootless)).toEqual({ code: 1, ok: false, problems: ["ROOTLESS_DOCKER"], warnings: [] });
      host.hook("docker", dockerAnswers("active", docker29));
      host.clearCalls();
      expect(await json(clean)).toEqual({ code: 0, ok: true, problems: [], warnings: ["SWARM_ACTIVE"] });
      // One docker info for the whole status: version, firewall, its rules and the swarm all come from it.
      expect(host.calls().filter((c) => c.tool === "docker").map((c) => c.args.join(" "))).toEqual(["info --format {{json .}}"]);
      const text = await host.run(HOST_PATHS.firewallScript, ["status"], { env: { ...clean, DOCKINIT_DOCKER_SOCKET: socket } });
      expect(text.stdout).toMatch(/^warning: swarm is active: /m);
    } finally {
      host.cleanup();
    }
  });
});
