// A booted Debian guest for system tests: a debootstrapped bookworm root
// filesystem (built once, cached under .cache/rootfs/), copied per test and
// booted with systemd-nspawn inside the test topology's "host" network
// namespace, configured by nothing but a NoCloud seed holding dockinit's
// rendered user-data. See /work/shared/RECIPES.md "A booted Debian guest".
//
// What this relies on (systemd 252, cloud-init 22.4, Docker 20.10 on a cgroup
// v1 machine without a system bus):
// - `--register=no --keep-unit`: there is no machined and no system bus here,
//   so nspawn must neither register the machine nor ask for a scope unit.
// - SYSTEMD_NSPAWN_API_VFS_WRITABLE=network leaves /proc/sys/net writable, so
//   the inner Docker can turn on forwarding; SYSTEMD_SECCOMP=0 lets runc create
//   its session keyring (keyctl is filtered otherwise).
// - nspawn bind-mounts the cgroup v1 controllers read-only. runc (cgroupfs
//   driver) mkdirs /sys/fs/cgroup/<controller>/docker/<id> in every one of
//   them and fails with EROFS otherwise, so enableCgroupWrites() mounts each
//   read-only controller hierarchy again, read-write, inside the guest's mount
//   namespace (nothing propagates out: the outer mounts are private).
// - The guest's cgroups (name=systemd and unified) are kept under a cgroup of
//   their own, di-<id>, instead of nspawn's default "payload"/"supervisor" at
//   the root of the hierarchy, so two guests never share one and nothing is
//   left behind.
// - nspawn puts the guest in a new session: signalling nspawn's process group
//   does not reach the guest, so teardown powers it off and, if that hangs,
//   SIGKILLs the guest's PID 1 (which ends its whole PID namespace).
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO } from "./fixtures.js";
import {
  describeFailure,
  run,
  sleep,
  spawnBackground,
  tail,
  waitExit,
  waitFor,
  WaitAborted,
  type Background,
  type ExecResult,
  type RunOptions,
} from "../system/lib/exec.js";
import { mountsUnder, unmountUnder } from "../system/lib/mounts.js";
import { interpretClient, socatClientArgs, udpAttempts, type ConnectOptions, type ConnectResult } from "../system/lib/topology.js";

/**
 * The Debian suites a guest (and a chrooted engine, see lib/engine.ts) can be
 * built from, with the Docker each one ships. forky has no debootstrap script
 * of its own in bookworm's debootstrap: sid's works (RECIPES.md).
 */
export const SUITES = {
  bookworm: { docker: "20.10", script: undefined, extraPackages: [], unifiedCgroup: false },
  // From trixie on, the docker CLI is a package of its own.
  trixie: { docker: "26.1", script: undefined, extraPackages: ["docker-cli"], unifiedCgroup: false },
  // forky's systemd (258+) boots only on the unified cgroup hierarchy.
  forky: { docker: "28.5", script: "/usr/share/debootstrap/scripts/sid", extraPackages: ["docker-cli"], unifiedCgroup: true },
} as const satisfies Record<string, { docker: string; script: string | undefined; extraPackages: readonly string[]; unifiedCgroup: boolean }>;
export type Suite = keyof typeof SUITES;
export const isSuite = (s: string): s is Suite => Object.hasOwn(SUITES, s);

export const GUEST_SUITE: Suite = "bookworm";
export const GUEST_VARIANT = "minbase";
/** Without python3-cffi-backend cloud-init fails to configure (RECIPES.md). */
export const GUEST_PACKAGES = [
  "systemd",
  "systemd-sysv",
  "cloud-init",
  "python3-cffi-backend",
  "iptables",
  "nftables",
  "ipset",
  "iproute2",
  "socat",
  "dbus",
  "busybox-static",
  "docker.io",
  "curl",
] as const;

/** Everything debootstrap installs for `suite`. */
export const suitePackages = (suite: Suite): string[] => [...GUEST_PACKAGES, ...SUITES[suite].extraPackages];

/** What a test needs on the outer machine to boot a guest (for skipUnless). */
export const GUEST_NEEDS = ["root", "debootstrap", "systemd-nspawn", "nsenter", "mount", "umount", "ip", "cp"];

/**
 * Root of the rootfs cache: gitignored .cache/ in the repo, or
 * DOCKINIT_ROOTFS_CACHE (e.g. a directory outside a CI clone, so each suite is
 * debootstrapped once per machine, not once per run).
 */
export const ROOTFS_CACHE = process.env.DOCKINIT_ROOTFS_CACHE || join(REPO, ".cache", "rootfs");
/** Colour escapes (ESC [ ... m) on the guest's console. */
const ANSI_SGR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
const DEFAULT_MIRROR = "http://deb.debian.org/debian";
/** A clean environment for commands run in the guest (not the test runner's PATH). */
const GUEST_ENV: NodeJS.ProcessEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LC_ALL: "C.UTF-8",
  HOME: "/root",
  TERM: "dumb",
  SYSTEMD_COLORS: "0",
  SYSTEMD_PAGER: "cat",
};

// ---------------------------------------------------------------------------
// Root filesystem cache

/**
 * The Debian mirror this machine's apt uses for `suite` (deb822 .sources and
 * one-line .list files), so debootstrap fetches from the same place. Override
 * with DOCKINIT_DEBIAN_MIRROR.
 */
export function debianMirror(suite: string = GUEST_SUITE): string {
  const override = process.env.DOCKINIT_DEBIAN_MIRROR;
  if (override) return override;
  const files: string[] = [];
  if (existsSync("/etc/apt/sources.list")) files.push("/etc/apt/sources.list");
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir)) for (const f of readdirSync(dir).sort()) if (/\.(list|sources)$/.test(f)) files.push(join(dir, f));
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    if (file.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) =>
          new RegExp(`^${name}:[ \\t]*(.*)$`, "mi").exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (/^Enabled:\s*no/im.test(stanza)) continue;
        if (!field("Types").includes("deb") || !field("Suites").includes(suite)) continue;
        const uri = field("URIs").find((u) => /^https?:\/\//.test(u));
        if (uri) return uri.replace(/\/+$/, "");
      }
    } else {
      for (const line of text.split("\n")) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+)\s+(\S+)/.exec(line);
        if (m?.[1] && m[2] === suite) return m[1].replace(/\/+$/, "");
      }
    }
  }
  // A suite this machine does not use (trixie, forky on a bookworm machine)
  // comes from the same archive as the machine's own suite.
  return suite === GUEST_SUITE ? DEFAULT_MIRROR : debianMirror(GUEST_SUITE);
}

export interface Rootfs {
  suite: Suite;
  /** The cached root filesystem (read it, copy it; never boot it). */
  root: string;
  key: string;
  /** True when this call ran debootstrap. */
  built: boolean;
  durationMs: number;
}

/**
 * Cache key: the suite, variant, package list and debootstrap script (the
 * mirror does not change what is built). Without a script the key is what it
 * was before suites other than bookworm existed, so old caches stay valid.
 */
export function rootfsKey(suite: Suite = GUEST_SUITE, packages: readonly string[] = suitePackages(suite)): string {
  const script = SUITES[suite].script;
  return createHash("sha256")
    .update(`debootstrap --variant=${GUEST_VARIANT}\n${suite}\n${[...packages].sort().join(",")}\n${script ? `script ${script}\n` : ""}`)
    .digest("hex")
    .slice(0, 16);
}

/** Remove a directory tree after making sure nothing is mounted in it. Refuses (throws) otherwise. */
async function removeTree(dir: string): Promise<void> {
  const stuck = await unmountUnder(dir);
  if (stuck.length > 0) throw new Error(`still mounted, not deleting ${dir}: ${stuck.join(", ")}`);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The cached bookworm root filesystem, built on first use: debootstrap into
 * .cache/rootfs/.build-<key>-<pid>-<rand>/root, then one rename to
 * .cache/rootfs/<key>/ (so a cache directory is always complete; a concurrent
 * builder that loses the race throws its copy away). Build directories of dead
 * builders are removed on the way.
 */
export async function ensureRootfs(opts: { suite?: Suite; timeoutMs?: number } = {}): Promise<Rootfs> {
  const started = Date.now();
  const suite = opts.suite ?? GUEST_SUITE;
  const key = rootfsKey(suite);
  const final = join(ROOTFS_CACHE, key);
  const root = join(final, "root");
  if (existsSync(join(final, "info.json"))) return { suite, root, key, built: false, durationMs: Date.now() - started };

  await mkdir(ROOTFS_CACHE, { recursive: true });
  for (const entry of readdirSync(ROOTFS_CACHE)) {
    const m = /^\.build-[0-9a-f]+-(\d+)-/.exec(entry);
    if (m?.[1] && !pidAlive(Number(m[1]))) await removeTree(join(ROOTFS_CACHE, entry)).catch(() => undefined);
  }
  const build = join(ROOTFS_CACHE, `.build-${key}-${process.pid}-${randomBytes(3).toString("hex")}`);
  const mirror = debianMirror(suite);
  const script = SUITES[suite].script;
  const packages = suitePackages(suite);
  const args = [`--variant=${GUEST_VARIANT}`, `--include=${packages.join(",")}`, suite, join(build, "root"), mirror, ...(script ? [script] : [])];
  try {
    await mkdir(build);
    const r = await run("debootstrap", args, { timeoutMs: opts.timeoutMs ?? 540_000 });
    if (r.code !== 0 || r.timedOut) {
      const log = await readFile(join(build, "root", "debootstrap", "debootstrap.log"), "utf8").catch(() => "");
      throw new Error(`${describeFailure(r)}\n--- debootstrap.log tail ---\n${tail(log, 30)}`);
    }
    const info = { suite, script, variant: GUEST_VARIANT, packages, mirror, builtAt: new Date().toISOString(), buildMs: Date.now() - started };
    await writeFile(join(build, "info.json"), `${JSON.stringify(info, null, 2)}\n`);
    try {
      await rename(build, final);
    } catch (err) {
      // Someone else finished first: theirs is as good as ours.
      if (!existsSync(join(final, "info.json"))) throw err;
    }
    return { suite, root, key, built: true, durationMs: Date.now() - started };
  } finally {
    if (existsSync(build)) await removeTree(build).catch((e: unknown) => console.warn(`rootfs build cleanup: ${String(e)}`));
  }
}

// ---------------------------------------------------------------------------
// Booting

export interface GuestOptions {
  /** Network namespace (name under /run/netns) the guest uses as its own: normally topology.host. */
  netns: string;
  /** The user-data as cloud-init will read it (gzip is fine). */
  userData: Buffer;
  /** From ensureRootfs(). */
  rootfs: Rootfs;
  /** Bound for PID 1 to appear (default 30 s). */
  startTimeoutMs?: number;
  /**
   * Files put over the copied root before it boots, e.g. another Docker
   * engine's dockerd, docker-proxy and runc in place of the suite's own.
   */
  replace?: ReadonlyArray<{ from: string; to: string }>;
  /** Run on the copied root before it boots (e.g. packages put into the image, as an AMI would carry them). */
  prepare?: (root: string) => Promise<void>;
}

export interface GuestConnectOptions extends ConnectOptions {
  /** Docker network inside the guest (default: the default bridge). */
  network?: string;
}

export interface Guest {
  /** The temp dir: ROOT (`root`), the console log, nothing else. */
  dir: string;
  root: string;
  machine: string;
  /** nspawn's output (the guest's console). */
  consoleLog: string;
  /** How long copying the root filesystem and starting PID 1 took. */
  timings: { copyMs: number; startMs: number };
  /** The guest's PID 1 as seen from outside. */
  pid: number;
  running(): boolean;
  /** Run a command in all the guest's namespaces (nsenter -a); never throws unless `check`. */
  exec(cmd: string, args?: readonly string[], opts?: RunOptions): Promise<ExecResult>;
  /** exec() that throws (with the console tail) on failure; returns trimmed stdout. */
  execOk(cmd: string, args?: readonly string[], opts?: RunOptions): Promise<string>;
  /** `sh -c SCRIPT` in the guest. */
  sh(script: string, opts?: RunOptions): Promise<ExecResult>;
  /** Last lines of a unit's journal in this boot. */
  journal(unit: string, lines?: number): Promise<string>;
  consoleTail(lines?: number): Promise<string>;
  /** Wait until cloud-final.service is active or failed; returns its state and `cloud-init status --long`. */
  waitForCloudInit(timeoutMs?: number): Promise<{ state: string; status: string; waitedMs: number }>;
  /** Mount the read-only cgroup v1 controllers again read-write; returns the controllers remounted. */
  enableCgroupWrites(): Promise<string[]>;
  /** `docker import` a busybox + socat image from the guest's own files (idempotent). */
  importToolsImage(name?: string): Promise<void>;
  /** One socat client in a throw-away container in the guest; see topology.connectFrom. */
  connectFromContainer(o: GuestConnectOptions): Promise<ConnectResult>;
  /**
   * Power the guest off and boot the same ROOT again on the same network
   * namespace, as a second boot of the instance: cloud-init does not run the
   * user-data again, only what it enabled starts. The namespace's firewall is
   * emptied in between (`freshKernel`), as a reboot's new kernel would have it.
   * A unit put in place before the power-off re-mounts the cgroup v1
   * controllers read-write before Docker, so `--restart always` containers
   * come back. Returns how long the guest took to power off and to start.
   */
  reboot(freshKernel: () => Promise<void>): Promise<{ offMs: number; startMs: number }>;
  /** Power off (bounded), kill if that hangs, remove ROOT. Idempotent, never throws. */
  destroy(): Promise<void>;
}

export const TOOLS_IMAGE = "di-tools";

/**
 * busybox (with its applet links), socat and the libraries ldd lists, all
 * from the guest's own files, imported as an image: there is no registry.
 */
const TOOLS_IMAGE_SCRIPT = String.raw`set -eu
name=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/bin" "$d/usr/bin" "$d/etc" "$d/root" "$d/tmp"
chmod 1777 "$d/tmp"
cp /bin/busybox "$d/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$d/bin/$a" ] || ln -s busybox "$d/bin/$a"; done
cp /usr/bin/socat "$d/usr/bin/socat"
for lib in $(ldd /usr/bin/socat | grep -o '/[^ ]*'); do
  mkdir -p "$d$(dirname "$lib")"
  cp -L "$lib" "$d$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$d/etc/passwd"
printf 'root:x:0:\n' >"$d/etc/group"
tar -C "$d" -c . | docker import --change 'CMD ["/bin/sh"]' - "$name"
`;

/**
 * Remount every read-only cgroup v1 hierarchy under /sys/fs/cgroup read-write:
 * `umount -l` the nspawn bind mount, then mount the hierarchy again with the
 * same controller options (e.g. "cpu", or "cpu,cpuacct" where co-mounted).
 */
const CGROUP_RW_SCRIPT = String.raw`set -eu
# mountinfo: ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
list=$(awk '{
  for (i = 7; $i != "-"; i++) ;
  if ($(i + 1) != "cgroup" || $5 !~ "^/sys/fs/cgroup/" || ("," $6 ",") !~ /,ro,/) next
  n = split($(i + 3), o, ","); c = ""
  for (j = 1; j <= n; j++) if (o[j] != "rw" && o[j] != "ro") c = c (c == "" ? "" : ",") o[j]
  print $5, c
}' /proc/self/mountinfo)
printf '%s\n' "$list" | while read -r point controllers; do
  [ -n "$point" ] || continue
  umount -l "$point"
  mount -t cgroup -o "$controllers" cgroup "$point"
  echo "$controllers"
done
`;

function readPpid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** A process's start time (field 22 of /proc/PID/stat); undefined when it is gone or a zombie. */
function procStart(pid: number): string | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = fields.slice(fields.lastIndexOf(")") + 2).split(" ");
    return rest[0] === "Z" ? undefined : rest[19];
  } catch {
    return undefined;
  }
}

/** The `systemd` child of nspawn: the guest's PID 1 seen from outside. */
function findGuestInit(nspawnPid: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (readPpid(pid) !== nspawnPid) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "systemd") return pid;
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** Cgroup hierarchies systemd in the guest writes to; each gets a di-<id> child of its own. */
const OWN_CGROUPS = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"];

/** rmdir a cgroup and its (empty) descendants, deepest first. Never throws. */
function removeCgroup(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
    rmdirSync(dir);
  } catch {
    /* busy or gone */
  }
}

const liveGuests = new Set<number>();
let exitHookInstalled = false;
function trackGuest(pid: number): void {
  liveGuests.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort (afterAll never ran): exec.ts SIGKILLs nspawn, but the guest
  // lives in its own session and would outlive it; its PID 1 takes it all down.
  process.on("exit", () => {
    for (const p of liveGuests) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  });
}

/** Directories some process uses as its root (nspawn's guests, chroots). */
function rootsInUse(): Set<string> {
  const roots = new Set<string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      roots.add(readlinkSync(`/proc/${entry}/root`));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return roots;
}

/**
 * Remove what guests of dead test runs left behind: /tmp/di-guest-<pid>-*
 * directories (when no process runs inside and nothing is mounted there) and
 * their empty cgroups. Never touches a guest whose creating process lives.
 */
export async function reapStaleGuests(): Promise<string[]> {
  const reaped: string[] = [];
  const stale = (name: string): boolean => {
    const m = /^di-guest-([0-9a-z]+)-[0-9a-f]{6}/.exec(name);
    return m?.[1] !== undefined && !pidAlive(parseInt(m[1], 36));
  };
  const dirs = readdirSync("/tmp").filter(stale);
  if (dirs.length > 0) {
    const roots = [...rootsInUse()];
    for (const d of dirs) {
      const dir = join("/tmp", d);
      if (roots.some((r) => r === dir || r.startsWith(`${dir}/`)) || mountsUnder(dir).length > 0) continue;
      await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
      reaped.push(dir);
    }
  }
  for (const h of OWN_CGROUPS) {
    if (!existsSync(h)) continue;
    for (const d of readdirSync(h)) if (stale(d)) removeCgroup(join(h, d));
  }
  return reaped;
}

/**
 * Copy the cached root filesystem, seed it with `userData` (NoCloud) and boot
 * it with systemd-nspawn in `netns`. Resolves once the guest's PID 1 exists;
 * wait for cloud-init with waitForCloudInit(). On failure everything is torn
 * down before rethrowing.
 */
export async function bootGuest(opts: GuestOptions): Promise<Guest> {
  await reapStaleGuests();
  // The pid in both names lets reapStaleGuests() recognise what a dead run left.
  const machine = `di-guest-${process.pid.toString(36)}-${randomBytes(3).toString("hex")}`;
  const dir = await mkdtemp(`/tmp/${machine}-`);
  const root = join(dir, "root");
  const consoleLog = join(dir, "console.log");
  const cgroups = OWN_CGROUPS.filter((h) => existsSync(join(h, "cgroup.procs"))).map((h) => join(h, machine));
  let nspawn: Background | undefined;
  let pid = 0;
  let pidStart: string | undefined;
  let destroying: Promise<void> | undefined;
  const timings = { copyMs: 0, startMs: 0 };

  const exec = (cmd: string, args: readonly string[] = [], o: RunOptions = {}): Promise<ExecResult> =>
    run("nsenter", ["-t", String(pid), "-a", "--", cmd, ...args], { timeoutMs: 60_000, env: GUEST_ENV, ...o });

  const consoleTail = async (lines = 30): Promise<string> => {
    try {
      // The console is full of colour escapes; drop them for messages.
      return tail((await readFile(consoleLog, "utf8")).replace(ANSI_SGR, ""), lines);
    } catch {
      return "(no console log)";
    }
  };

  const execOk = async (cmd: string, args: readonly string[] = [], o: RunOptions = {}): Promise<string> => {
    const r = await exec(cmd, args, o);
    if (r.code !== 0 || r.timedOut) throw new Error(`in guest ${machine}: ${describeFailure(r)}`);
    return r.stdout.trim();
  };


  /** The guest's PID 1 still exists (not a zombie) and is the process we found (pids get reused). */
  const guestAlive = (): boolean => pidStart !== undefined && procStart(pid) === pidStart;
  const running = (): boolean => nspawn?.running() === true && guestAlive();

  const destroy = (): Promise<void> => {
    destroying ??= (async () => {
      const problems: string[] = [];
      // Decide on the guest's PID 1, not on nspawn: a guest outlives a killed nspawn.
      if (guestAlive()) await exec("systemctl", ["poweroff", "--no-block"], { timeoutMs: 10_000 }).catch(() => undefined);
      for (let i = 0; i < 300 && guestAlive(); i++) await sleep(100);
      if (guestAlive()) {
        problems.push("the guest did not power off within 30 s; killed its PID 1");
        process.kill(pid, "SIGKILL"); // ends the whole PID namespace
        for (let i = 0; i < 100 && guestAlive(); i++) await sleep(100);
      }
      if (nspawn && !(await waitExit(nspawn.child, 5_000))) await nspawn.stop(5_000);
      if (pid !== 0) liveGuests.delete(pid);
      for (const cg of cgroups) removeCgroup(cg);
      await rm(join("/run/systemd/nspawn/propagate", machine), { recursive: true, force: true }).catch(() => undefined);
      // Never delete a root a process still runs in (its mounts are not visible from here).
      const users = [...rootsInUse()].filter((r) => r === root || r.startsWith(`${root}/`));
      if (guestAlive() || users.length > 0) {
        problems.push(`processes still run in ${root}; left it in place`);
      } else {
        try {
          await removeTree(dir);
        } catch (err) {
          problems.push(String(err));
        }
      }
      if (problems.length > 0) console.warn(`guest ${machine} teardown: ${problems.join("\n")}`);
    })();
    return destroying;
  };

  /** systemd-nspawn --boot on ROOT; sets pid/pidStart once the guest's PID 1 runs; returns how long that took. */
  const startSystem = async (): Promise<void> => {
    const nspawnArgs = [
      "-D",
      root,
      `--machine=${machine}`,
      "--boot",
      `--network-namespace-path=/run/netns/${opts.netns}`,
      "--capability=all",
      "--register=no",
      "--keep-unit",
    ];
    // Join our own cgroups first, then become nspawn (same pid).
    const enter = cgroups.map((cg) => `echo $$ >'${cg}/cgroup.procs'`).join(" && ");
    const fh = await open(consoleLog, "a");
    try {
      nspawn = await spawnBackground("sh", ["-c", `${enter ? `${enter} && ` : ""}exec systemd-nspawn "$@"`, "sh", ...nspawnArgs], {
        logFd: fh.fd,
        env: {
          ...process.env,
          SYSTEMD_SECCOMP: "0",
          SYSTEMD_NSPAWN_API_VFS_WRITABLE: "network",
          SYSTEMD_COLORS: "0",
          // systemd 258+ (forky) refuses to boot on cgroup v1: give it the
          // unified hierarchy alone (see SUITES).
          ...(SUITES[opts.rootfs.suite].unifiedCgroup ? { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1" } : {}),
        },
      });
    } finally {
      await fh.close();
    }
    const ns = nspawn;
    const spawned = Date.now();
    pid = await waitFor(
      `the guest's PID 1 (systemd child of systemd-nspawn ${ns.pid})`,
      async () => {
        if (!ns.running()) throw new WaitAborted(`systemd-nspawn exited (code ${String(ns.child.exitCode)}):\n${await consoleTail(20)}`);
        return findGuestInit(ns.pid);
      },
      { timeoutMs: opts.startTimeoutMs ?? 30_000, intervalMs: 100 },
    );
    pidStart = procStart(pid);
    trackGuest(pid);
    timings.startMs = Date.now() - spawned;
  };

  try {
    const copyStarted = Date.now();
    const cp = await run("cp", ["-a", "--reflink=auto", opts.rootfs.root, root], { timeoutMs: 180_000 });
    if (cp.code !== 0 || cp.timedOut) throw new Error(describeFailure(cp));
    timings.copyMs = Date.now() - copyStarted;
    for (const r of opts.replace ?? []) {
      // Over a file the suite has: a path the suite does not use would be copied and never run.
      if (!existsSync(join(root, r.to))) throw new Error(`${r.to} does not exist in the ${opts.rootfs.suite} root: nothing to replace`);
      const cpr = await run("cp", ["--remove-destination", r.from, join(root, r.to)], { timeoutMs: 60_000 });
      if (cpr.code !== 0 || cpr.timedOut) throw new Error(describeFailure(cpr));
    }

    await opts.prepare?.(root);

    const seed = join(root, "var/lib/cloud/seed/nocloud");
    await mkdir(seed, { recursive: true });
    await writeFile(join(seed, "meta-data"), `instance-id: iid-${machine}\nlocal-hostname: ${machine}\n`);
    await writeFile(join(seed, "user-data"), opts.userData);
    await writeFile(
      join(root, "etc/cloud/cloud.cfg.d/99-dockinit-test.cfg"),
      // The minimal image has no locales and no ssh-keygen (cloud-init 23.4+
      // counts the failed host key generation as a recoverable error); the
      // network is the test topology's.
      "datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\nlocale: C.UTF-8\nssh_genkeytypes: []\n",
    );

    for (const cg of cgroups) await mkdir(cg, { recursive: true });
    await startSystem();
  } catch (err) {
    await destroy();
    throw err;
  }

  const guest: Guest = {
    dir,
    root,
    machine,
    consoleLog,
    timings,
    get pid() {
      return pid;
    },
    running,
    exec,
    execOk,
    sh: (script, o) => exec("sh", ["-c", script], o),
    consoleTail,
    journal: async (unit, lines = 40) => {
      const r = await exec("journalctl", ["-b", "--no-pager", "-o", "short-precise", "-n", String(lines), "-u", unit], { timeoutMs: 20_000 });
      return r.stdout.trim() || r.stderr.trim();
    },
    waitForCloudInit: async (timeoutMs = 180_000) => {
      const started = Date.now();
      const state = await waitFor(
        "cloud-final.service to finish in the guest",
        async () => {
          if (!running()) throw new WaitAborted(`the guest stopped:\n${await consoleTail(20)}`);
          const r = await exec("systemctl", ["is-active", "cloud-final.service"], { timeoutMs: 10_000 });
          const s = r.stdout.trim();
          return s === "active" || s === "failed" ? s : undefined;
        },
        { timeoutMs, intervalMs: 500 },
      ).catch(async (err: unknown) => {
        throw new Error(`${String(err)}\n--- guest console ---\n${await consoleTail(30)}`);
      });
      const waitedMs = Date.now() - started;
      const st = await exec("cloud-init", ["status", "--long", "--wait"], { timeoutMs: 60_000 });
      return { state, status: `${st.stdout}${st.stderr}`.trim(), waitedMs };
    },
    enableCgroupWrites: async () => {
      const out = await execOk("sh", ["-c", CGROUP_RW_SCRIPT], { timeoutMs: 20_000 });
      return out.split("\n").filter(Boolean);
    },
    importToolsImage: async (name = TOOLS_IMAGE) => {
      const have = await exec("docker", ["image", "inspect", "--format", "{{.Id}}", name], { timeoutMs: 30_000 });
      if (have.code === 0) return;
      await execOk("sh", ["-c", TOOLS_IMAGE_SCRIPT, "sh", name], { timeoutMs: 120_000 });
    },
    reboot: async (freshKernel) => {
      // Before Docker on the next boot: the cgroup controllers read-write
      // (nspawn mounts them read-only), from a unit of the guest's own.
      await mkdir(join(root, "usr/local/lib"), { recursive: true });
      await writeFile(join(root, "usr/local/lib/di-cgroup-rw.sh"), CGROUP_RW_SCRIPT);
      await writeFile(
        join(root, "etc/systemd/system/di-cgroup-rw.service"),
        "[Unit]\nDefaultDependencies=no\nAfter=local-fs.target\nBefore=containerd.service docker.service\n\n[Service]\nType=oneshot\nExecStart=/bin/sh /usr/local/lib/di-cgroup-rw.sh\n\n[Install]\nWantedBy=sysinit.target\n",
      );
      await mkdir(join(root, "etc/systemd/system/sysinit.target.wants"), { recursive: true });
      await rm(join(root, "etc/systemd/system/sysinit.target.wants/di-cgroup-rw.service"), { force: true });
      await symlink("../di-cgroup-rw.service", join(root, "etc/systemd/system/sysinit.target.wants/di-cgroup-rw.service"));
      const off = Date.now();
      await exec("systemctl", ["poweroff", "--no-block"], { timeoutMs: 10_000 }).catch(() => undefined);
      // A clean power-off waits for Docker's live-restore containers; after
      // 10 s the power is cut, which is a reboot too.
      for (let i = 0; i < 100 && guestAlive(); i++) await sleep(100);
      if (guestAlive()) process.kill(pid, "SIGKILL");
      if (nspawn && !(await waitExit(nspawn.child, 15_000))) await nspawn.stop(5_000);
      liveGuests.delete(pid);
      const offMs = Date.now() - off;
      await freshKernel();
      await startSystem();
      return { offMs, startMs: timings.startMs };
    },
    // A UDP attempt that heard nothing is tried again (udpAttempts).
    connectFromContainer: (o) => udpAttempts(o.proto, async () => {
      const timeoutMs = o.timeoutMs ?? 4_000;
      const proto = o.proto ?? "tcp";
      const name = `di-c-${randomBytes(4).toString("hex")}`;
      const args = ["run", "--rm", "--name", name];
      if (proto === "udp") args.push("-i");
      if (o.network) args.push("--network", o.network);
      args.push(TOOLS_IMAGE, "socat", ...socatClientArgs({ ...o, timeoutMs }));
      const r = await exec("docker", args, {
        // Container start-up is part of the bound, but not of socat's own timeouts.
        timeoutMs: timeoutMs + 30_000,
        input: proto === "udp" ? "ping\n" : undefined,
        until: proto === "udp" ? (out) => out.includes("\n") : undefined,
      });
      // Killing the client does not stop the container: remove it explicitly.
      if (r.timedOut || proto === "udp") await exec("docker", ["rm", "-f", name], { timeoutMs: 30_000 });
      if (!r.timedOut && r.code !== 0 && r.stdout.trim() === "" && !/socat\[\d+\]/.test(r.stderr)) {
        // docker itself failed (not socat): say so instead of calling it a network failure.
        throw new Error(`in guest ${machine}: ${describeFailure(r)}\n--- journalctl -u docker ---\n${await guest.journal("docker.service", 15)}`);
      }
      const res = interpretClient(r);
      if (!res.ok && proto === "udp" && r.code === 0) return { ...res, reason: "timeout" };
      return res;
    }),
    destroy,
  };
  return guest;
}

// ---------------------------------------------------------------------------
// Reading cloud-init's log

export interface CloudInitEvent {
  /** Event name without its stage, e.g. "config-write-files" or "consume-user-data". */
  event: string;
  /** "stage/event" as logged, when found. */
  name?: string;
  /** "SUCCESS", "FAIL", ... from the finish line; undefined when it never finished. */
  result?: string;
  /** WARNING/ERROR/CRITICAL and Traceback lines from its start up to the next event after its finish. */
  problems: string[];
}

const isProblem = (line: string): boolean => /\[(WARNING|ERROR|CRITICAL)\]|^Traceback/.test(line);

/**
 * cloud-init 22.4 logs every stage of its work as
 *   "... handlers.py[DEBUG]: start: init-network/config-write-files: running ..."
 *   "... handlers.py[DEBUG]: finish: init-network/config-write-files: SUCCESS: ..."
 * with the module's own messages in between (stages run one after another).
 * A failing module's warning and traceback follow its finish line. For each
 * wanted event: the result, and the problem lines from its start up to the
 * first event after its finish.
 */
export function cloudInitEvents(log: string, events: readonly string[]): CloudInitEvent[] {
  const lines = log.split("\n");
  return events.map((event) => {
    const startRe = new RegExp(`\\]: start: ([\\w-]+/${event}): `);
    const at = lines.findIndex((l) => startRe.test(l));
    if (at < 0) return { event, problems: [] };
    const name = startRe.exec(lines[at] ?? "")?.[1] ?? event;
    const problems: string[] = [];
    for (let i = at + 1; i < lines.length; i++) {
      const line = lines[i] ?? "";
      const fin = new RegExp(`\\]: finish: ${name.replace("/", "\\/")}: (\\w+)`).exec(line);
      if (fin) {
        // A failing module's "Running module X failed" warning and its
        // traceback come right after its finish line: read up to the next event.
        for (let j = i + 1; j < lines.length && !/\]: (start|finish): /.test(lines[j] ?? ""); j++) {
          if (isProblem(lines[j] ?? "")) problems.push(lines[j] ?? "");
        }
        return { event, name, result: fin[1], problems };
      }
      if (isProblem(line)) problems.push(line);
    }
    return { event, name, problems };
  });
}
