// A private dockerd inside a test network namespace, plus a tiny local image.
//
// Why this shape:
// - dockerd is started with `nsenter --net` only (not `ip netns exec`, which
//   remounts /sys and hides the cgroup mounts dockerd needs). It therefore
//   shares the root mount namespace: every path it uses (data, exec root, pid
//   file, socket, trust key, config) is redirected below one short temp dir
//   (/tmp/di-XXXXXX; unix socket paths are limited to ~108 bytes), and its own
//   config file replaces /etc/docker/daemon.json so the machine's config is
//   neither read nor written.
// - Its iptables rules land in the namespace's tables, exactly as they would on
//   the instance, so tests see Docker's real rule ordering (e.g. what happens to
//   a rule of ours when Docker inserts its MASQUERADE for a new network).
// - No registry is reachable: the "di-tools" image is imported from a tarball
//   of the host's static busybox plus socat and the libraries it needs.
import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, copyFile, mkdir, mkdtemp, open, readFile, readdir, rename, rm, symlink, writeFile, chmod } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  run,
  runInOk,
  runOk,
  spawnBackground,
  waitFor,
  WaitAborted,
  tail,
  describeFailure,
  type Background,
  type ExecResult,
  type RunOptions,
} from "./exec.js";
import type { Engine } from "./engine.js";
import { unmountUnder } from "./mounts.js";
import { interpretClient, socatClientArgs, UDP_DATAGRAMS, type ConnectOptions, type ConnectResult } from "./topology.js";

/** The docker CLI matching the 20.10 daemon (/usr/local/bin/docker is a different, newer client). */
export const DOCKER_CLI = "/usr/bin/docker";
export const DOCKERD = "/usr/sbin/dockerd";
/** What a probe's container prints (first line of its stdout) before its socat starts: proof that it ran. */
const PROBE_RAN = "di-probe-ran";
/** Name of the locally built tools image (busybox + socat). */
export const TOOLS_IMAGE = "di-tools";
/** Address pool for `docker network create` without --subnet (documentation range, away from upstream's .10/.50). */
export const DEFAULT_ADDRESS_POOL = { base: "203.0.113.128/25", size: 28 } as const;
export const DEFAULT_FIXED_CIDR_V6 = "2001:db8:1234::/64";

/** Where the image tarball is cached (gitignored .cache/ at the repo root). */
const CACHE_DIR = fileURLToPath(new URL("../../../.cache/", import.meta.url));
/** PATH for dockerd: the distro's containerd/runc/docker-proxy, nothing from /usr/local. */
const DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

export interface DockerdOptions {
  /** Enable IPv6 on the default bridge (--ipv6 --fixed-cidr-v6). Default false. */
  ipv6?: boolean;
  /** v6 prefix for docker0 (default 2001:db8:1234::/64). */
  fixedCidrV6?: string;
  /** Let Docker manage iptables (default true). */
  iptables?: boolean;
  /** Let Docker manage ip6tables (NAT for v6); needs experimental in 20.10. Default = ipv6. */
  ip6tables?: boolean;
  /** docker0 address (default 172.17.0.1/16). */
  bip?: string;
  /** Extra daemon.json keys; they override the harness defaults (paths excepted). */
  daemonConfig?: Record<string, unknown>;
  /** Extra dockerd flags (must not repeat a daemon.json key, dockerd refuses that). */
  extraArgs?: string[];
  /** Import the di-tools image after start (default true). */
  image?: boolean;
  /**
   * Under Docker's nftables firewall, turn IP forwarding on in `ns` before
   * dockerd starts, as a host must (default true); false leaves it as it is.
   */
  forwarding?: boolean;
  /** Bound for dockerd to answer (default 60 s). */
  startTimeoutMs?: number;
  /**
   * The Docker engine to run (lib/engine.ts): this machine's own Docker 20.10
   * when absent, or a suite's dockerd/containerd/runc (and CLI) chrooted.
   */
  engine?: Engine;
}

export interface ContainerConnectOptions extends ConnectOptions {
  /** Docker network to run the client on (default: the default bridge). */
  network?: string;
  /** Extra `docker run` flags placed before the image. */
  runArgs?: string[];
}

export interface Dockerd {
  /** Network namespace dockerd runs in. */
  ns: string;
  /** Temp dir holding everything of this daemon. */
  dir: string;
  /** `unix:///tmp/di-XXXXXX/docker.sock` */
  host: string;
  /** dockerd's stdout+stderr (appended across restarts). */
  logFile: string;
  /** The daemon.json in effect. */
  config: Record<string, unknown>;
  /** Current dockerd pid, undefined when stopped. */
  pid(): number | undefined;
  /** Run the docker CLI against this daemon; never throws unless `check`. */
  docker(args: readonly string[], opts?: RunOptions): Promise<ExecResult>;
  /** Docker CLI that throws (with the daemon log tail) on failure; returns trimmed stdout. */
  dockerOk(args: readonly string[], opts?: RunOptions): Promise<string>;
  /** `docker run --rm ARGS` (ARGS include image and command); never throws. Default timeout 60 s. */
  runContainer(args: readonly string[], opts?: RunOptions): Promise<ExecResult>;
  /** `docker run -d ARGS`; returns the container id. */
  startContainer(args: readonly string[]): Promise<string>;
  /** `docker network create [--subnet ...] NAME`; returns the network id. */
  createNetwork(name: string, opts?: { subnet?: string; ipv6Subnet?: string; args?: string[] }): Promise<string>;
  /** One socat client run in a throw-away di-tools container; see topology.connectFrom. */
  connectFromContainer(o: ContainerConnectOptions): Promise<ConnectResult>;
  /** Import the di-tools image (idempotent; done at start unless image:false). */
  ensureImage(): Promise<void>;
  /** Last lines of the daemon log. */
  logTail(lines?: number): Promise<string>;
  /** Stop dockerd (graceful) and start it again with the same dirs and config. */
  restart(): Promise<void>;
  /** Remove all containers, stop dockerd, kill leftovers, unmount and delete the temp dir. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Tools image tarball.

async function exists(p: string): Promise<boolean> {
  try {
    await access(p, fsConstants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function firstExisting(paths: string[]): Promise<string> {
  for (const p of paths) if (await exists(p)) return p;
  throw new Error(`none of ${paths.join(", ")} exists`);
}

/** Libraries (and the loader) `ldd` lists for a binary, as absolute paths. */
async function lddPaths(binary: string): Promise<string[]> {
  const out = await runOk("ldd", [binary], { timeoutMs: 10_000 });
  const paths = new Set<string>();
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)/.exec(line);
    if (m?.[1]) paths.add(m[1]);
  }
  return [...paths].sort();
}

/**
 * Build (or reuse from .cache/) a rootfs tarball with /bin/busybox (+ applet
 * symlinks), /usr/bin/socat and every library ldd lists, keyed by the hash of
 * those files, so a distro update invalidates the cache. Returns its path.
 */
export async function buildToolsTarball(): Promise<string> {
  const busybox = await firstExisting(["/usr/bin/busybox", "/bin/busybox"]);
  const socat = "/usr/bin/socat";
  const libs = await lddPaths(socat);
  const files: Array<[src: string, dest: string]> = [
    [busybox, "/bin/busybox"],
    [socat, "/usr/bin/socat"],
    ...libs.map((l): [string, string] => [l, l]),
  ];
  const hash = createHash("sha256").update("di-tools v1\n");
  for (const [src, dest] of files) {
    hash.update(`${dest}\n`);
    hash.update(await readFile(src));
  }
  const key = hash.digest("hex").slice(0, 16);
  const tarball = path.join(CACHE_DIR, `di-tools-${key}.tar`);
  if (await exists(tarball)) return tarball;

  await mkdir(CACHE_DIR, { recursive: true });
  const stage = await mkdtemp("/tmp/di-img-");
  try {
    for (const [src, dest] of files) {
      await mkdir(path.join(stage, path.dirname(dest)), { recursive: true });
      await copyFile(src, path.join(stage, dest)); // follows symlinks: real file at the ldd path
    }
    const applets = (await runOk(busybox, ["--list"], { timeoutMs: 10_000 })).split("\n").filter((a) => /^[\w.[-]+$/.test(a));
    for (const a of applets) {
      if (a === "busybox" || (await exists(path.join(stage, "bin", a)))) continue;
      await symlink("busybox", path.join(stage, "bin", a));
    }
    await mkdir(path.join(stage, "etc"), { recursive: true });
    await writeFile(path.join(stage, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
    await writeFile(path.join(stage, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    await mkdir(path.join(stage, "root"), { recursive: true });
    await mkdir(path.join(stage, "tmp"), { recursive: true });
    await chmod(path.join(stage, "tmp"), 0o1777);
    const tmp = `${tarball}.${process.pid}.${randomBytes(3).toString("hex")}.tmp`;
    await runOk(
      "tar",
      ["-C", stage, "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-cf", tmp, "."],
      { timeoutMs: 60_000 },
    );
    await rename(tmp, tarball); // atomic: concurrent builders produce identical content
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return tarball;
}

// ---------------------------------------------------------------------------
// Cleanup helpers.

interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

async function listProcesses(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8")).replace(/\0/g, " ");
      out.push({ pid: Number(entry), ppid, cmdline });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/**
 * SIGKILL processes that belong to this daemon but outlived it: anything whose
 * command line mentions our temp dir (containerd, containerd-shim -address
 * DIR/...) and all their descendants (the containers' processes).
 */
async function killLeftovers(dir: string): Promise<number[]> {
  const procs = await listProcesses();
  const doomed = new Set(procs.filter((p) => p.pid !== process.pid && p.cmdline.includes(`${dir}/`)).map((p) => p.pid));
  for (let grew = true, n = 0; grew && n < 20; n++) {
    grew = false;
    for (const p of procs) {
      if (!doomed.has(p.pid) && doomed.has(p.ppid)) {
        doomed.add(p.pid);
        grew = true;
      }
    }
  }
  for (const pid of doomed) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  return [...doomed];
}

// ---------------------------------------------------------------------------

/**
 * Start a private dockerd in network namespace `ns` (normally topology.host).
 * Waits (bounded) until the API answers and, unless image:false, imports the
 * di-tools image. On failure everything is cleaned up and the error carries the
 * tail of dockerd's log.
 */
export async function startDockerd(ns: string, opts: DockerdOptions = {}): Promise<Dockerd> {
  const dir = await mkdtemp("/tmp/di-");
  const socket = path.join(dir, "docker.sock");
  const host = `unix://${socket}`;
  const logFile = path.join(dir, "dockerd.log");
  const configFile = path.join(dir, "daemon.json");
  const ipv6 = opts.ipv6 ?? false;
  const engine = opts.engine?.chrooted ? opts.engine : undefined;
  const nftablesFirewall = opts.engine?.firewall === "nftables";
  if (nftablesFirewall && (opts.forwarding ?? true)) {
    // Docker's nftables firewall never turns forwarding on and refuses to
    // start without it ("IPv4 forwarding is disabled"): a host sets it first.
    await runInOk(ns, "sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"], { timeoutMs: 10_000 });
  }
  const config: Record<string, unknown> = {
    "storage-driver": "vfs",
    bip: opts.bip ?? "172.17.0.1/16",
    "default-address-pools": [DEFAULT_ADDRESS_POOL],
    iptables: opts.iptables ?? true,
    // Short stop grace: containers whose PID 1 is a shell ignore SIGTERM.
    "shutdown-timeout": 3,
    ...(ipv6
      ? {
          ipv6: true,
          "fixed-cidr-v6": opts.fixedCidrV6 ?? DEFAULT_FIXED_CIDR_V6,
          ...((opts.ip6tables ?? true) ? { experimental: true, ip6tables: true } : {}),
        }
      : {}),
    ...(nftablesFirewall ? { "firewall-backend": "nftables" } : {}),
    ...opts.daemonConfig,
    // Paths last: they must stay inside `dir`.
    "data-root": path.join(dir, "data"),
    "exec-root": path.join(dir, "exec"),
    pidfile: path.join(dir, "docker.pid"),
    hosts: [host],
    // 20.10 otherwise writes /etc/docker/key.json (config-file only, no flag);
    // later engines have no key.json and refuse the option.
    ...((opts.engine?.docker ?? "20.10") === "20.10" ? { "deprecated-key-path": path.join(dir, "key.json") } : {}),
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));
  await mkdir(path.join(dir, "cli"), { recursive: true });

  const cliEnv: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: path.join(dir, "cli") };
  for (const k of ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]) delete cliEnv[k];

  let daemon: Background | undefined;
  let imageReady = false;
  let stopping: Promise<void> | undefined;

  const logTail = async (lines = 30): Promise<string> => {
    try {
      return tail(await readFile(logFile, "utf8"), lines);
    } catch {
      return "(no dockerd log)";
    }
  };

  const docker = (args: readonly string[], o: RunOptions = {}): Promise<ExecResult> =>
    engine
      ? engine.run(undefined, "docker", ["-H", host, ...args], { timeoutMs: 60_000, env: cliEnv, ...o })
      : run(DOCKER_CLI, ["-H", host, ...args], { timeoutMs: 60_000, env: cliEnv, ...o });

  const dockerOk = async (args: readonly string[], o: RunOptions = {}): Promise<string> => {
    const r = await docker(args, o);
    if (r.code !== 0 || r.timedOut) {
      throw new Error(`${describeFailure(r)}\n--- dockerd log tail ---\n${await logTail(15)}`);
    }
    return r.stdout.trim();
  };

  const launch = async (): Promise<void> => {
    const fh = await open(logFile, "a");
    try {
      const args = ["--config-file", configFile, ...(opts.extraArgs ?? [])];
      const env = { ...process.env, PATH: opts.engine?.daemonPath ?? DAEMON_PATH };
      daemon = engine
        ? await engine.spawn(ns, engine.dockerd, args, { logFd: fh.fd, env })
        : await spawnBackground(opts.engine?.dockerd ?? DOCKERD, args, { netns: ns, logFd: fh.fd, env });
    } finally {
      await fh.close(); // the child has its own copy of the fd
    }
    const d = daemon;
    try {
      await waitFor(
        `dockerd in ${ns} to answer on ${socket}`,
        async () => {
          if (!d.running()) throw new WaitAborted(`dockerd exited (code ${String(d.child.exitCode)})`);
          const r = await docker(["version", "--format", "{{.Server.Version}}"], { timeoutMs: 5_000 });
          return r.code === 0;
        },
        { timeoutMs: opts.startTimeoutMs ?? 60_000, intervalMs: 250 },
      );
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`${msg}\n--- dockerd log tail (${logFile}) ---\n${await logTail(25)}`);
    }
  };

  /** SIGTERM dockerd and wait for a clean exit (it stops containerd and unmounts its data root). */
  const stopDaemon = async (): Promise<void> => {
    const d = daemon;
    daemon = undefined;
    if (d) await d.stop(30_000);
  };

  const ensureImage = async (): Promise<void> => {
    if (imageReady) return;
    let tarball = await buildToolsTarball();
    if (engine) {
      // A chrooted CLI sees /tmp only.
      await copyFile(tarball, path.join(dir, "di-tools.tar"));
      tarball = path.join(dir, "di-tools.tar");
    }
    await dockerOk(["import", "--change", 'CMD ["/bin/sh"]', tarball, TOOLS_IMAGE], { timeoutMs: 120_000 });
    imageReady = true;
  };

  const self: Dockerd = {
    ns,
    dir,
    host,
    logFile,
    config,
    pid: () => (daemon?.running() ? daemon.pid : undefined),
    docker,
    dockerOk,
    logTail,
    ensureImage,
    runContainer: (args, o = {}) => docker(["run", "--rm", ...args], { timeoutMs: 60_000, ...o }),
    startContainer: (args) => dockerOk(["run", "-d", ...args]),
    createNetwork: (name, o = {}) => {
      const args = ["network", "create"];
      if (o.subnet) args.push("--subnet", o.subnet);
      if (o.ipv6Subnet) args.push("--ipv6", "--subnet", o.ipv6Subnet);
      args.push(...(o.args ?? []), name);
      return dockerOk(args);
    },
    connectFromContainer: async (o) => {
      const timeoutMs = o.timeoutMs ?? 3_000;
      const proto = o.proto ?? "tcp";
      const name = `di-c-${randomBytes(4).toString("hex")}`;
      // --sig-proxy=false: stopping the CLI (a UDP reply arrived) stops it at
      // once; the container (a shell as PID 1 ignores SIGTERM) is removed below.
      const args = ["run", "--rm", "--sig-proxy=false", "--name", name];
      if (o.network) args.push("--network", o.network);
      // The container says it ran before socat starts: silence from a
      // container that never ran is no drop (lib/verdict.ts). UDP has no
      // retransmission: one run sends its datagram three times
      // (UDP_DATAGRAMS), and socat waits its timeout after the last.
      const send = proto === "udp" ? `(${UDP_DATAGRAMS}) | socat "$@"` : 'exec socat "$@"';
      // (The mark goes to stdout, before anything socat prints: the CLI
      // keeps one stream's order, not the order between two.)
      args.push(...(o.runArgs ?? []), TOOLS_IMAGE, "sh", "-c", `echo ${PROBE_RAN}; ${send}`, "sh", ...socatClientArgs({ ...o, timeoutMs }));
      const r = await docker(args, {
        // container start-up is part of the bound, but not of socat's own timeouts
        timeoutMs: timeoutMs + 30_000,
        until: proto === "udp" ? (out) => out.replace(`${PROBE_RAN}\n`, "").includes("\n") : undefined,
      });
      // Killing the client does not stop the container: remove it explicitly.
      if (r.timedOut || proto === "udp") await docker(["rm", "-f", name], { timeoutMs: 30_000 });
      if (r.timedOut) {
        // socat's own timeouts bound the attempt: a docker run that outlived them hung, which is no verdict.
        throw new Error(`docker run hung past ${timeoutMs + 30_000} ms (not a drop): ${describeFailure(r)}\n--- dockerd log tail ---\n${await logTail(15)}`);
      }
      if (!r.stdout.startsWith(`${PROBE_RAN}\n`)) {
        // docker itself failed (not socat): surface it instead of calling it a network failure
        throw new Error(`the probe's container never ran (not a drop): ${describeFailure(r)}\n--- dockerd log tail ---\n${await logTail(15)}`);
      }
      const res = interpretClient({ ...r, stdout: r.stdout.slice(PROBE_RAN.length + 1) });
      if (!res.ok && proto === "udp" && r.code === 0) return { ...res, reason: "timeout" };
      return res;
    },
    restart: async () => {
      if (stopping) throw new Error("dockerd was stopped");
      await stopDaemon();
      await launch();
    },
    stop: () => {
      stopping ??= (async () => {
        const problems: string[] = [];
        if (daemon?.running()) {
          const ids = await docker(["ps", "-aq"], { timeoutMs: 30_000 });
          const list = ids.stdout.split(/\s+/).filter(Boolean);
          if (list.length > 0) {
            const r = await docker(["rm", "-f", "-v", ...list], { timeoutMs: 60_000 });
            if (r.code !== 0) problems.push(describeFailure(r));
          }
        }
        await stopDaemon();
        await killLeftovers(dir);
        // A chrooted engine's mounts live in its own mount namespace.
        await engine?.unmountUnder(dir);
        const stuck = await unmountUnder(dir);
        if (stuck.length === 0) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
        else problems.push(`still mounted, left ${dir} in place: ${stuck.join(", ")}`);
        if (problems.length > 0) console.warn(`dockerd cleanup: ${problems.join("\n")}`);
      })();
      return stopping;
    },
  };

  try {
    await launch();
    if (opts.image ?? true) await ensureImage();
  } catch (err) {
    await self.stop(); // launch() already attached the log tail
    throw err;
  }
  return self;
}
