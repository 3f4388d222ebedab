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
// Why not the booted guest for these tests: a guest costs 10-15 s to copy and
// boot and couples every policy check to cloud-init, systemd and the cgroup
// set-up nspawn can give it (forky's systemd 262 boots only on the unified
// hierarchy, where this cgroup v1 machine has no controllers to delegate);
// the chrooted engine starts in 1-2 s, runs the unchanged namespace tests
// with the suite's real dockerd/containerd/runc/iptables, and the boot test
// still proves each suite end to end.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { ensureRootfs, GUEST_SUITE, isSuite, SUITES, type Suite } from "../../support/guest.js";
import { netnsPath, run, spawnBackground, waitExit, waitFor, WaitAborted, type Background, type ExecResult, type RunOptions } from "./exec.js";

/** The environment engine commands get (no PATH of the test runner's). */
const ENGINE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface Engine {
  suite: Suite;
  /** Docker version the suite ships ("20.10", "26.1", "28.5"). */
  docker: string;
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
export function dockerMatrix(): Suite[] {
  const raw = process.env.DOCKINIT_DOCKER_MATRIX?.trim() || GUEST_SUITE;
  const suites = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const s of suites) if (!isSuite(s)) throw new Error(`DOCKINIT_DOCKER_MATRIX: unknown suite ${JSON.stringify(s)}; known: ${Object.keys(SUITES).join(", ")}`);
  return [...new Set(suites)] as Suite[];
}

let matrixNoted = false;
/** Say once per test file which suites run and which do not. */
export function noteMatrix(): Suite[] {
  const suites = dockerMatrix();
  if (!matrixNoted) {
    matrixNoted = true;
    const others = (Object.keys(SUITES) as Suite[]).filter((s) => !suites.includes(s));
    if (others.length > 0) {
      console.log(
        `Docker matrix: ${suites.map((s) => `${s} (Docker ${SUITES[s].docker})`).join(", ")}; not run: ` +
          `${others.map((s) => `${s} (Docker ${SUITES[s].docker})`).join(", ")} (set DOCKINIT_DOCKER_MATRIX=${Object.keys(SUITES).join(",")})`,
      );
    }
  }
  return suites;
}

/** A describe title prefix naming the engine. */
export const engineLabel = (suite: Suite): string => `Docker ${SUITES[suite].docker} (${suite})`;

function systemEngine(): Engine {
  const argv = (netns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] =>
    netns ? ["nsenter", [`--net=${netnsPath(netns)}`, "--", cmd, ...args]] : [cmd, [...args]];
  const self: Engine = {
    suite: "bookworm",
    docker: SUITES.bookworm.docker,
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
    suite,
    docker: SUITES[suite].docker,
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

/** The engine of `suite`: this machine's own Docker for bookworm, a chrooted rootfs otherwise. */
export async function startEngine(suite: Suite): Promise<Engine> {
  return suite === "bookworm" ? systemEngine() : chrootEngine(suite);
}
