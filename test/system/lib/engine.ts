// Which Docker engine a namespace test runs against, and how its userland is
// reached.
//
// - bookworm (Docker 20.10) is this machine's own docker.io: dockerd, the CLI,
//   iptables and nft are run directly (the "system" engine).
// - trixie (Docker 26.1) and forky (Docker 28.5) run from their cached root
//   filesystems (test/support/guest.ts builds them): one long-lived "anchor"
//   process holds a private mount namespace in which an overlay of the cached
//   rootfs (the cache itself is never written) is mounted with the machine's
//   /proc, /sys (cgroup hierarchies included), /dev and /tmp bound into it.
//   Every engine command (dockerd, docker, iptables, nft, the dockinit script)
//   is `nsenter -t ANCHOR -m [--net=NETNS] chroot MERGED CMD...`, so it runs
//   the suite's own binaries and libraries (dockerd, containerd, runc, and the
//   suite's iptables/nft, which matters: rules written by iptables 1.8.13 are
//   read back by 1.8.13, as on a real host) while sharing the test's network
//   namespaces. /tmp is the same directory inside and out, so daemon dirs,
//   sockets, rendered bundles and state directories need no copying.
//
// - docker-25.0, docker-29.7 and docker-29.7-nftables are engines Debian does
//   not package (Amazon Linux 2023's 25.0; Docker CE's 29.7, with its iptables
//   firewall or its nftables one): static dockerd/docker-proxy (and, for 29, a
//   runc 1.3.6) built from moby's tagged source, ../shared/engines/*.tar.xz,
//   unpacked once into DOCKINIT_ENGINE_CACHE and checked against their
//   SHA256SUMS. They run on this machine's userland like bookworm's engine
//   (its containerd 1.6.20, iptables 1.8.9, nft 1.0.6 and the 20.10 CLI,
//   which 29.7 still accepts: its minimum API version is 1.40), with the
//   unpacked folder first on dockerd's PATH so that it finds its own
//   docker-proxy and runc.
//
// Why not the booted guest for these tests: a guest costs 10-15 s to copy and
// boot and couples every policy check to cloud-init, systemd and the cgroup
// set-up nspawn can give it (forky's systemd 262 boots only on the unified
// hierarchy, where this cgroup v1 machine has no controllers to delegate);
// the chrooted engine starts in 1-2 s, runs the unchanged namespace tests
// with the suite's real dockerd/containerd/runc/iptables, and the boot test
// still proves each suite end to end.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { REPO } from "../../support/fixtures.js";
import { ensureRootfs, GUEST_SUITE, isSuite, SUITES, type Suite } from "../../support/guest.js";
import { netnsPath, run, spawnBackground, waitExit, waitFor, WaitAborted, type Background, type ExecResult, type RunOptions } from "./exec.js";

/** The environment engine commands get (no PATH of the test runner's). */
const ENGINE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Engines built from moby's source (../shared/engines): the Docker version,
 * the archive's version, and the firewall backend Docker itself is run with.
 */
export const MOBY_ENGINES = {
  "docker-25.0": { docker: "25.0", version: "25.0.16", firewall: "iptables" },
  "docker-29.7": { docker: "29.7", version: "29.7.2", firewall: "iptables" },
  "docker-29.7-nftables": { docker: "29.7", version: "29.7.2", firewall: "nftables" },
} as const satisfies Record<string, { docker: string; version: string; firewall: "iptables" | "nftables" }>;
export type MobyEngine = keyof typeof MOBY_ENGINES;
/** One entry of the Docker matrix: a Debian suite's own Docker, or an engine built from moby's source. */
export type MatrixEntry = Suite | MobyEngine;
const isMobyEngine = (s: string): s is MobyEngine => Object.hasOwn(MOBY_ENGINES, s);
const isBootable = (s: string): s is MatrixEntry => Object.hasOwn(BOOT_ROOT, s);
const MATRIX_NAMES: readonly MatrixEntry[] = [...(Object.keys(SUITES) as Suite[]), ...(Object.keys(MOBY_ENGINES) as MobyEngine[])];

/** The Docker version of a matrix entry ("20.10", "25.0", "29.7", ...). */
export const dockerVersion = (e: MatrixEntry | BootEntry): string => {
  const m = isCloudInitGuest(e) ? CLOUD_INIT_GUESTS[e].engine : e;
  return isMobyEngine(m) ? MOBY_ENGINES[m].docker : SUITES[m].docker;
};
/** The firewall backend Docker itself runs with in a matrix entry. */
export const dockerFirewall = (e: MatrixEntry | BootEntry): "iptables" | "nftables" => {
  const m = isCloudInitGuest(e) ? CLOUD_INIT_GUESTS[e].engine : e;
  return isMobyEngine(m) ? MOBY_ENGINES[m].firewall : "iptables";
};

/**
 * dockinit's backends to prove on an entry: both beside Docker's iptables
 * firewall; beside Docker's nftables firewall only dockinit's nftables one
 * (render refuses the iptables backend there: firewall-docker.test.ts shows why).
 */
export const dockinitBackends = (e: MatrixEntry): Array<"iptables" | "nftables"> => (dockerFirewall(e) === "nftables" ? ["nftables"] : ["iptables", "nftables"]);

/** Where the engine archives are unpacked: DOCKINIT_ENGINE_CACHE, else the gitignored .cache/engines. */
export const ENGINE_CACHE = process.env.DOCKINIT_ENGINE_CACHE || join(REPO, ".cache", "engines");
/** The archives beside the clone. */
export const ENGINE_ARCHIVES = join(REPO, "..", "shared", "engines");

export interface Engine {
  /** The matrix entry this engine is. */
  name: MatrixEntry;
  /** The Debian suite whose userland (iptables, nft, containerd, CLI) the engine runs with. */
  suite: Suite;
  /** Docker version ("20.10", "25.0", "26.1", "28.5", "29.7"). */
  docker: string;
  /** The firewall backend Docker itself uses ("firewall-backend" in daemon.json). */
  firewall: "iptables" | "nftables";
  /** The dockerd binary, as the engine's commands see it. */
  dockerd: string;
  /** PATH dockerd runs with (it finds docker-proxy, runc and containerd there). */
  daemonPath: string;
  /** True when commands run chrooted in the suite's rootfs. */
  chrooted: boolean;
  /** argv running CMD ARGS with the engine's userland, in network namespace `netns` when given. */
  argv(netns: string | undefined, cmd: string, args: readonly string[]): [string, string[]];
  /** Run a command of the engine's userland (bounded; never throws unless `check`). */
  run(netns: string | undefined, cmd: string, args: readonly string[], opts?: RunOptions): Promise<ExecResult>;
  /** run() that throws on failure; trimmed stdout. */
  runOk(netns: string | undefined, cmd: string, args: readonly string[], opts?: RunOptions): Promise<string>;
  /** Start a long-running command of the engine (dockerd); see exec.spawnBackground. */
  spawn(netns: string | undefined, cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv; logFd?: number }): Promise<Background>;
  /** Unmount (lazily) whatever the engine's mount namespace has at or below `dir`. */
  unmountUnder(dir: string): Promise<void>;
  /** Kill the anchor (its mount namespace goes with the last process in it) and remove the overlay dirs. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Suites the Docker matrix covers: DOCKINIT_DOCKER_MATRIX (comma separated,
 * e.g. "bookworm,trixie,forky"), default "bookworm". Unknown names throw, so a
 * typo in CI does not silently shrink the matrix.
 */
export function dockerMatrix(): MatrixEntry[] {
  const raw = process.env.DOCKINIT_DOCKER_MATRIX?.trim() || GUEST_SUITE;
  const entries = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const s of entries) {
    if (!isSuite(s) && !isMobyEngine(s)) throw new Error(`DOCKINIT_DOCKER_MATRIX: unknown engine ${JSON.stringify(s)}; known: ${MATRIX_NAMES.join(", ")}`);
  }
  return [...new Set(entries)] as MatrixEntry[];
}

/**
 * The entries a booted guest proves: each Debian suite with its own Docker,
 * and Docker 29.7 (both firewalls) as its dockerd, docker-proxy and runc put
 * over forky's docker.io (forky's systemd, cloud-init, containerd and CLI).
 */
export const BOOT_ROOT: Partial<Record<MatrixEntry, Suite>> = {
  bookworm: "bookworm",
  trixie: "trixie",
  forky: "forky",
  "docker-29.7": "forky",
  "docker-29.7-nftables": "forky",
};

/**
 * Guests that boot the upstream cloud-init our users boot, not Debian's
 * (test/support/cloud-init-guest.ts builds them on the bookworm root): each
 * with an engine of the Docker matrix (`engine`, whose rows their boots fill)
 * started by moby's own units. cloud-init-22.2 stands for Amazon Linux 2023.
 */
export const CLOUD_INIT_GUESTS = {
  "cloud-init-22.2": { cloudInit: "22.2.2", engine: "docker-25.0", units: "v25.0.16", firewallTools: false, os: "Amazon Linux 2023's cloud-init" },
  "cloud-init-26.2": { cloudInit: "26.2", engine: "docker-29.7", units: "docker-v29.7.2", firewallTools: true, os: "the newest cloud-init" },
} as const satisfies Record<string, { cloudInit: string; engine: MobyEngine; units: string; firewallTools: boolean; os: string }>;
export type CloudInitGuest = keyof typeof CLOUD_INIT_GUESTS;
export const isCloudInitGuest = (s: string): s is CloudInitGuest => Object.hasOwn(CLOUD_INIT_GUESTS, s);
/** One entry of the boot matrix: a bootable Docker-matrix entry or a cloud-init guest. */
export type BootEntry = MatrixEntry | CloudInitGuest;

/** The cloud-init each Debian suite's guest boots (its own package): the boot test checks the guest's `cloud-init --version` starts so. */
export const SUITE_CLOUD_INIT: Record<Suite, string> = { bookworm: "22.4.2", trixie: "25.1", forky: "25" };

/** The cloud-init version a boot entry's guest runs (a prefix for the Debian suites). */
export const bootCloudInit = (e: BootEntry): string => (isCloudInitGuest(e) ? CLOUD_INIT_GUESTS[e].cloudInit : SUITE_CLOUD_INIT[BOOT_ROOT[e] ?? "bookworm"]);
/** The Docker-matrix entry whose engine a boot entry runs. */
export const bootDockerEntry = (e: BootEntry): MatrixEntry => (isCloudInitGuest(e) ? CLOUD_INIT_GUESTS[e].engine : e);

/**
 * The boot test's entries: DOCKINIT_BOOT_MATRIX when set (it replaces the
 * Docker matrix for booting; CI boots bookworm and cloud-init-22.2), else the
 * Docker matrix's entries that boot a Debian guest of their own (the
 * cloud-init guests boot only when named here).
 */
export function bootMatrix(): BootEntry[] {
  const raw = process.env.DOCKINIT_BOOT_MATRIX?.trim();
  const entries = raw ? raw.split(",").map((s) => s.trim()).filter(Boolean) : dockerMatrix();
  const bootable = (s: string): s is BootEntry => isBootable(s) || isCloudInitGuest(s);
  for (const s of entries) {
    if (raw && !bootable(s)) throw new Error(`DOCKINIT_BOOT_MATRIX: ${JSON.stringify(s)} cannot boot; bootable: ${[...Object.keys(BOOT_ROOT), ...Object.keys(CLOUD_INIT_GUESTS)].join(", ")}`);
  }
  return [...new Set(entries)].filter(bootable);
}

/** The root filesystem a booted guest of a Debian entry starts from, and the engine files put over it. */
export async function bootEngine(entry: MatrixEntry): Promise<{ suite: Suite; replace: Array<{ from: string; to: string }> }> {
  const suite = BOOT_ROOT[entry];
  if (!suite) throw new Error(`${entry} cannot boot`);
  if (!isMobyEngine(entry)) return { suite, replace: [] };
  const dir = await ensureMobyEngine(MOBY_ENGINES[entry].version);
  // Debian's docker.io and runc packages put them here (docker.service runs /usr/sbin/dockerd).
  const replace = [
    { from: join(dir, "dockerd"), to: "/usr/sbin/dockerd" },
    { from: join(dir, "docker-proxy"), to: "/usr/sbin/docker-proxy" },
  ];
  if (mobyNeedsItsRunc(entry)) replace.push({ from: join(dir, "runc"), to: "/usr/sbin/runc" });
  return { suite, replace };
}

/** Docker 29 asks for the time namespace, which the suites' runc 1.1 does not know: its archive's runc goes with it. */
export const mobyNeedsItsRunc = (e: MobyEngine): boolean => Number(MOBY_ENGINES[e].docker.split(".")[0]) >= 29;

let matrixNoted = false;
/** Say once per test file which suites run and which do not. */
export function noteMatrix(): MatrixEntry[] {
  const entries = dockerMatrix();
  if (!matrixNoted) {
    matrixNoted = true;
    const others = MATRIX_NAMES.filter((s) => !entries.includes(s));
    if (others.length > 0) {
      console.log(
        `Docker matrix: ${entries.map(engineLabel).join(", ")}; not run: ${others.map(engineLabel).join(", ")} ` +
          `(set DOCKINIT_DOCKER_MATRIX=${MATRIX_NAMES.join(",")})`,
      );
    }
  }
  return entries;
}

/** A describe title prefix naming the engine (the compatibility table selects tests by it). */
export function engineLabel(e: BootEntry): string {
  if (isCloudInitGuest(e)) return `${engineLabel(CLOUD_INIT_GUESTS[e].engine)} on cloud-init ${CLOUD_INIT_GUESTS[e].cloudInit}`;
  if (!isMobyEngine(e)) return `Docker ${SUITES[e].docker} (${e})`;
  const m = MOBY_ENGINES[e];
  return `Docker ${m.docker} (moby v${m.version}${m.firewall === "nftables" ? ", nftables firewall" : ""})`;
}

/**
 * Unpack ../shared/engines/docker-VERSION.tar.xz into ENGINE_CACHE once per archive
 * (into a temp dir, checked against its SHA256SUMS, then renamed into place,
 * so a half-unpacked folder is never used). Returns the folder.
 */
export async function ensureMobyEngine(version: string): Promise<string> {
  const archive = join(ENGINE_ARCHIVES, `docker-${version}.tar.xz`);
  if (!existsSync(archive)) throw new Error(`${archive} is missing: the engines of ../shared/engines must lie beside the clone`);
  // Keyed by the archive's own hash: a new archive of the same version is unpacked anew.
  const key = createHash("sha256").update(await readFile(archive)).digest("hex").slice(0, 16);
  const dir = join(ENGINE_CACHE, `docker-${version}-${key}`);
  if (existsSync(join(dir, "dockerd")) && existsSync(join(dir, "SHA256SUMS"))) return dir;
  await mkdir(ENGINE_CACHE, { recursive: true });
  const stage = await mkdtemp(join(ENGINE_CACHE, ".unpack-"));
  try {
    await run("tar", ["-C", stage, "-xJf", archive], { timeoutMs: 120_000, check: true });
    const unpacked = join(stage, `docker-${version}`);
    for (const line of (await readFile(join(unpacked, "SHA256SUMS"), "utf8")).split("\n").filter(Boolean)) {
      const [sum, file] = line.split(/\s+\*?/) as [string, string];
      const actual = createHash("sha256").update(await readFile(join(unpacked, file))).digest("hex");
      if (actual !== sum) throw new Error(`${archive}: ${file} has sha256 ${actual}, SHA256SUMS says ${sum}`);
    }
    await rename(unpacked, dir).catch((e: unknown) => {
      // Another test file unpacked it meanwhile: theirs is as good.
      if (!existsSync(join(dir, "dockerd"))) throw e;
    });
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return dir;
}

/** dockerd's PATH on this machine: the distro's containerd/runc/docker-proxy, nothing from /usr/local. */
const SYSTEM_DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

function systemEngine(name: MatrixEntry = "bookworm", dockerd = "/usr/sbin/dockerd", daemonPath = SYSTEM_DAEMON_PATH): Engine {
  const argv = (netns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] =>
    netns ? ["nsenter", [`--net=${netnsPath(netns)}`, "--", cmd, ...args]] : [cmd, [...args]];
  const self: Engine = {
    name,
    suite: "bookworm",
    docker: dockerVersion(name),
    firewall: dockerFirewall(name),
    dockerd,
    daemonPath,
    chrooted: false,
    argv,
    run: (netns, cmd, args, opts = {}) => run(...argv(netns, cmd, args), opts),
    runOk: async (netns, cmd, args, opts = {}) => (await run(...argv(netns, cmd, args), { ...opts, check: true })).stdout.trim(),
    spawn: (netns, cmd, args, opts = {}) => spawnBackground(...argv(netns, cmd, args), opts),
    unmountUnder: async () => undefined,
    stop: async () => undefined,
  };
  return self;
}

/** The mount-namespace anchor: overlay the rootfs, bind the machine's API filesystems and /tmp, then wait. */
const ANCHOR_SCRIPT = String.raw`set -eu
lower=$1 upper=$2 work=$3 merged=$4
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
mount --rbind /proc "$merged/proc"
mount --rbind /sys "$merged/sys"
mount --rbind /dev "$merged/dev"
mount -t tmpfs -o mode=755 tmpfs "$merged/run"
mkdir -p "$merged/run/lock"
# /tmp itself, not its submounts: daemon dirs, sockets and bundles live there.
mount --bind /tmp "$merged/tmp"
# The machine's resolver is irrelevant (no name is looked up) but keep libc quiet.
: >"$merged/etc/resolv.conf" 2>/dev/null || true
echo ready
exec sleep infinity
`;

const anchors = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * The anchor is not one of exec.ts's tracked children: test files call
 * killAllTracked() after each group of tests, and the engine outlives those
 * groups. It dies with the test process (exit hook) or in stop().
 */
function spawnAnchor(args: string[]): { child: ChildProcess; output: () => string } {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const c of anchors) c.kill("SIGKILL");
    });
  }
  const child = spawn("unshare", args, { stdio: ["ignore", "pipe", "pipe"] });
  anchors.add(child);
  child.once("exit", () => anchors.delete(child));
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  return { child, output: () => out };
}

async function chrootEngine(suite: Suite): Promise<Engine> {
  const rootfs = await ensureRootfs({ suite, timeoutMs: 540_000 });
  // Outside /tmp: /tmp is bound into the merged tree, which must not contain itself.
  await mkdir("/run/dockinit-test", { recursive: true });
  const dir = await mkdtemp(`/run/dockinit-test/engine-${suite}-`);
  const [upper, work, merged] = ["upper", "work", "merged"].map((d) => join(dir, d)) as [string, string, string];
  for (const d of [upper, work, merged]) await mkdir(d);
  let anchor: ChildProcess | undefined;
  let stopping: Promise<void> | undefined;

  const argv = (netns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] => {
    if (anchor?.pid === undefined || anchor.exitCode !== null || anchor.signalCode !== null) throw new Error(`engine ${suite} is not running`);
    return ["nsenter", ["-t", String(anchor.pid), "-m", ...(netns ? [`--net=${netnsPath(netns)}`] : []), "--", "chroot", merged, cmd, ...args]];
  };
  const withPath = (env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv => ({ ...(env ?? process.env), PATH: ENGINE_PATH });

  const self: Engine = {
    name: suite,
    suite,
    docker: SUITES[suite].docker,
    firewall: "iptables",
    dockerd: "/usr/sbin/dockerd",
    daemonPath: SYSTEM_DAEMON_PATH,
    chrooted: true,
    argv,
    run: (netns, cmd, args, opts = {}) => run(...argv(netns, cmd, args), { ...opts, env: withPath(opts.env) }),
    runOk: async (netns, cmd, args, opts = {}) => (await run(...argv(netns, cmd, args), { ...opts, env: withPath(opts.env), check: true })).stdout.trim(),
    spawn: (netns, cmd, args, opts = {}) => spawnBackground(...argv(netns, cmd, args), { ...opts, env: withPath(opts.env) }),
    unmountUnder: async (target) => {
      if (anchor?.exitCode !== null || anchor.signalCode !== null) return;
      const script = `awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r p; do umount -l "$p" || true; done`;
      await run(...argv(undefined, "sh", ["-c", script, "sh", target]), { timeoutMs: 20_000, env: withPath(undefined) });
    },
    stop: () => {
      stopping ??= (async () => {
        if (anchor) {
          anchor.kill("SIGKILL"); // sleep(1): nothing to shut down gracefully
          await waitExit(anchor, 5_000);
        }
        // The mount namespace died with its last process; nothing is mounted here in ours.
        await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch((e: unknown) => console.warn(`engine ${suite} cleanup: ${String(e)}`));
      })();
      return stopping;
    },
  };

  try {
    const a = spawnAnchor(["--mount", "--propagation", "private", "--", "sh", "-c", ANCHOR_SCRIPT, "sh", rootfs.root, upper, work, merged]);
    anchor = a.child;
    await waitFor(
      `the ${suite} engine's mount namespace`,
      async () => {
        if (a.child.exitCode !== null || a.child.signalCode !== null) throw new WaitAborted(`anchor exited: ${a.output()}`);
        return a.output().includes("ready");
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    );
  } catch (err) {
    await self.stop();
    throw err;
  }
  return self;
}

/** The engine of a matrix entry: this machine's own Docker for bookworm, moby's binaries on this machine's userland, or a chrooted rootfs. */
export async function startEngine(entry: MatrixEntry): Promise<Engine> {
  if (isMobyEngine(entry)) {
    const dir = await ensureMobyEngine(MOBY_ENGINES[entry].version);
    return systemEngine(entry, join(dir, "dockerd"), `${dir}:${SYSTEM_DAEMON_PATH}`);
  }
  return entry === "bookworm" ? systemEngine() : chrootEngine(entry);
}
